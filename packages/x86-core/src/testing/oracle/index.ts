/**
 * The host-CPU oracle: runs short x86 instruction sequences natively (64-bit
 * and 32-bit user mode) so the interpreter's results can be compared with the
 * real CPU. See README.md in this folder for the case format, the register
 * conventions and what cannot be tested this way.
 *
 * @example
 * const oracle = await HostOracle.create();
 * if ('unavailable' in oracle) return ctx.skip(oracle.unavailable);
 * const registers = new Array<bigint>(16).fill(0n);
 * registers[Reg.rax] = 0x7fffffffn;
 * registers[Reg.rbx] = 1n;
 * const [result] = await oracle.run([{ bits: 64, code: Uint8Array.of(0x01, 0xd8), registers }]); // add eax, ebx
 * // result.registers[Reg.rax] === 0x80000000n; result.rflags & ARITHMETIC_FLAGS === Flag.OF | Flag.SF
 */
export { HostOracle, type HostOracleOptions, type OracleUnavailable } from './host-oracle.js';
export { oracleForTests, type OracleForTests, type OracleForTestsOptions } from './oracle-for-tests.js';
export {
  ARITHMETIC_FLAGS,
  Flag,
  ORACLE_CODE_ADDRESS,
  ORACLE_MAX_CODE_LENGTH,
  ORACLE_MEMORY_BASE,
  ORACLE_MEMORY_SIZE,
  ORACLE_XMM_SIZE,
  REGISTER_NAMES_32,
  REGISTER_NAMES_64,
  Reg,
  SETTABLE_FLAGS,
  fromHalves,
  isSseCase,
  registerCount,
  toHalves,
  type OracleBits,
  type OracleCase,
  type OracleFault,
  type OracleFaultKind,
  type OracleResult,
} from './types.js';
export { vectorName } from './protocol.js';
export {
  edgeValues,
  oracleFlags,
  memoryImage,
  oracleCase,
  pointerIntoMemory,
  registerValue,
  registerValue32,
  registerValue64,
  type OracleCaseOptions,
} from './arbitraries.js';
