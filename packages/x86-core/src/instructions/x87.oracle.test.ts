import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { TSVIRT_MAX } from '../cpuid/models.js';
import { anyExtended, type ExtendedPattern, x87Control } from '../fpu/softfloat/testing-arbitraries.js';
import { assemble, nasmAvailable } from '../testing/assemble.js';
import { InterpreterCaseRunner } from '../testing/interpreter-case.js';
import { ARITHMETIC_FLAGS, ORACLE_MEMORY_BASE, type OracleCase, Reg } from '../testing/oracle/index.js';
import { oracleForTests } from '../testing/oracle/oracle-for-tests.js';

/*
 * x87 against the host CPU. The oracle sets no x87 state, so every case does
 * it itself: FNINIT, FLDCW from the memory page, load two 80-bit operands,
 * run one instruction, then FNSTSW and FSTP everything back to memory. The
 * memory comparison then covers results, condition codes, TOP and the
 * exception flags bit for bit. Unmasked exceptions make the next waiting
 * instruction raise #MF on both sides (the runner sets CR0.NE as Linux does).
 */

const host = await oracleForTests({ suite: 'the x87 host-oracle tests' });
// FXSAVE needs FXSR, which no model advertises until the SSE state exists: a test model adds it.
const runner = new InterpreterCaseRunner({ ...TSVIRT_MAX, features: new Set([...TSVIRT_MAX.features, 'fxsr' as const]) });

const CONTROL = 0x00;
const FIRST = 0x10;
const SECOND = 0x20;
const SOURCE = 0x30;
/**
 * The FXSAVE image (16-byte aligned). Compared: FCW, FSW, the abridged tag and the registers in use.
 * Not compared: FOP/FIP/FDP (AMD hosts store them only with an exception pending; tsvirt stores them
 * always, as Intel does), MXCSR and the XMM area (no SSE state yet).
 */
const FXSAVE = 0x200;

const OPERATIONS = [
  'fadd st0, st1', 'fsub st0, st1', 'fsubr st0, st1', 'fmul st0, st1', 'fdiv st0, st1', 'fdivr st0, st1', 'fadd st1, st0', 'fsubp st1, st0',
  'fdivrp st1, st0', 'fmulp st1, st0', 'fcom st1', 'fcomp st1', 'fucom st1', 'fucompp', 'fcompp', 'fcomi st0, st1', 'fucomip st0, st1',
  'fprem', 'fprem1', 'fscale', 'fxch st1', 'fcmovb st0, st1', 'fcmovnbe st0, st1', 'fcmovu st0, st1',
  'fsqrt', 'frndint', 'fxtract', 'fchs', 'fabs', 'ftst', 'fxam', 'fincstp', 'fdecstp', 'ffree st1', 'fld st1', 'fnop', 'fnclex',
  `fadd dword [rbx+${SOURCE}]`, `fmul qword [rbx+${SOURCE}]`, `fsubr qword [rbx+${SOURCE}]`, `fdiv dword [rbx+${SOURCE}]`,
  `fisub dword [rbx+${SOURCE}]`, `fidivr word [rbx+${SOURCE}]`, `fimul dword [rbx+${SOURCE}]`, `fcom qword [rbx+${SOURCE}]`, `ficomp word [rbx+${SOURCE}]`,
  `fld dword [rbx+${SOURCE}]`, `fld qword [rbx+${SOURCE}]`, `fild qword [rbx+${SOURCE}]`, `fild word [rbx+${SOURCE}]`, `fild dword [rbx+${SOURCE}]`,
  `fst dword [rbx+${SOURCE}]`, `fstp qword [rbx+${SOURCE}]`, `fist word [rbx+${SOURCE}]`, `fistp dword [rbx+${SOURCE}]`, `fistp qword [rbx+${SOURCE}]`,
  `fbstp tword [rbx+${SOURCE}]`, `fld tword [rbx+${SOURCE}]`, 'fst st1', 'fstp st0', 'fstp st1',
  'fldpi', 'fldl2t', 'fldl2e', 'fldlg2', 'fldln2', 'fld1', 'fldz', 'fld st0\nfld st0\nfld st0\nfld st0\nfld st0\nfld st0\nfld st0',
  'fstp st0\nfstp st0\nfadd st0, st1',
  // Stack underflow in each kind of instruction (ST(1) or both registers empty).
  'ffree st0\nfxam', 'fstp st0\nfxch st1', 'fstp st0\nfcomi st0, st1', 'fstp st0\nfucompp', 'fstp st0\nfld st1', 'fstp st0\nfstp st0\nfst dword [rbx+48]',
  'fstp st0\nfstp st0\nfistp word [rbx+48]', 'fstp st0\nfstp st0\nfbstp tword [rbx+48]', 'fstp st0\nfstp st0\nfsqrt', 'fstp st0\nfxtract', 'fstp st0\nfprem',
  'fstp st0\nfscale', 'fstp st0\nfstp st0\nftst', 'fstp st0\nfstp st0\nfchs', 'fstp st0\nfcmovnb st0, st1', 'fstp st0\nfstp st0\nfst st1', 'fstp st0\nfmulp st1, st0',
  'fstp st0\nfstp st0\nfadd qword [rbx+48]', 'fstp st0\nfstp st0\nficom dword [rbx+48]',
  // The environment's first 16 bytes are compared: FCW, FSW, FTW with their reserved halves, and FIP (same code address on both sides).
  `fnstenv [rbx+${SOURCE}]`, `fnsave [rbx+${SOURCE}]`, `fxsave64 [rbx+${FXSAVE}]`, `fadd qword [rbx+${SOURCE}]\nfxsave64 [rbx+${FXSAVE}]`,
  `fxsave64 [rbx+${FXSAVE}]\nfninit\nfxrstor64 [rbx+${FXSAVE}]`, `fsqrt\nfnstenv [rbx+${SOURCE}]\nfldenv [rbx+${SOURCE}]`,
] as const;

const EPILOGUE = `fnstsw word [rbx+0x100]
fstp tword [rbx+0x110]
fstp tword [rbx+0x120]
fstp tword [rbx+0x130]
fnstsw word [rbx+0x102]
fnstcw word [rbx+0x104]
fninit`;

const CODES = OPERATIONS.map((operation) =>
  nasmAvailable() ? assemble(`bits 64\nfninit\nfldcw [rbx+${CONTROL}]\nfld tword [rbx+${SECOND}]\nfld tword [rbx+${FIRST}]\n${operation}\n${EPILOGUE}\n`) : new Uint8Array(0),
);

function putExtended(memory: Uint8Array, offset: number, value: ExtendedPattern): void {
  const view = new DataView(memory.buffer);
  view.setUint32(offset, value.low >>> 0, true);
  view.setUint32(offset + 4, value.high >>> 0, true);
  view.setUint16(offset + 8, value.signExponent, true);
}

/** Single, double and integer sources: special doubles and floats, small integers, random bits. */
const source = fc.oneof(
  fc.double().map((value) => new Uint8Array(new Float64Array([value]).buffer)),
  fc.float().map((value) => new Uint8Array(new Float32Array([value, 0]).buffer)),
  fc.integer({ min: -40000, max: 40000 }).map((value) => new Uint8Array(new BigInt64Array([BigInt(value)]).buffer)),
  fc.uint8Array({ minLength: 10, maxLength: 10 }),
);

const x87Case: fc.Arbitrary<OracleCase> = fc
  .record({ operation: fc.integer({ min: 0, max: OPERATIONS.length - 1 }), control: x87Control, first: anyExtended, second: anyExtended, source, flags: fc.constantFrom(0, 1, 0x41, 0x44, 0x45, 0x40, 4) })
  .map(({ operation, control, first, second, source: bytes, flags }) => {
    const memory = new Uint8Array(0x400);
    new DataView(memory.buffer).setUint16(CONTROL, control, true);
    putExtended(memory, FIRST, first);
    putExtended(memory, SECOND, second);
    memory.set(bytes, SOURCE);
    const registers = new Array<bigint>(16).fill(0n);
    registers[Reg.rbx] = BigInt(ORACLE_MEMORY_BASE);
    return { bits: 64 as const, code: CODES[operation]!, registers, rflags: flags, memory };
  });

describe.skipIf(host.skip)('x87 on the host CPU', () => {
  test.prop([fc.array(x87Case, { minLength: 400, maxLength: 400 })], { numRuns: 10, endOnFailure: true })('results, status word, TOP and flags match bit for bit', async (cases) => {
    const results = await host.require().run(cases);
    cases.forEach((oracleCase, index) => {
      const host = results[index]!;
      const mine = runner.run(oracleCase);
      const memory = oracleCase.memory!;
      const label = `${OPERATIONS[CODES.indexOf(oracleCase.code)]!} control ${new DataView(memory.buffer).getUint16(0, true).toString(16)} operands ${[...memory.subarray(0x10, 0x3a)].map((byte) => byte.toString(16).padStart(2, '0')).join('')} flags ${oracleCase.rflags!.toString(16)}`;
      if (host.fault !== undefined) {
        expect(mine.vector, `${label}: host raised ${host.fault.name}`).toBe(host.fault.vector);
        return;
      }
      expect(mine.vector, `${label}: interpreter raised an exception the host did not`).toBeUndefined();
      // The source slot (stores write there) and the results; the rest of the page is the input.
      const image = (bytes: Uint8Array): string => {
        const fxsave = [...bytes.subarray(FXSAVE, FXSAVE + 6)];
        // Register slots of empty registers hold stale values from earlier cases on the host: only in-use ones are compared.
        const top = (bytes[FXSAVE + 3]! >> 3) & 7;
        for (let slot = 0; slot < 8; slot++) {
          if ((bytes[FXSAVE + 4]! >> ((top + slot) & 7)) & 1) fxsave.push(...bytes.subarray(FXSAVE + 32 + slot * 16, FXSAVE + 42 + slot * 16));
        }
        return [...bytes.subarray(0x30, 0x40), ...bytes.subarray(0x100, 0x140), ...fxsave].map((byte) => byte.toString(16).padStart(2, '0')).join('');
      };
      expect(image(mine.memory), label).toBe(image(host.memory));
      expect((mine.rflags & ARITHMETIC_FLAGS).toString(16), label).toBe((host.rflags & ARITHMETIC_FLAGS).toString(16));
    });
  }, 60_000);
});
