import {
  ORACLE_MAX_CODE_LENGTH,
  ORACLE_MEMORY_SIZE,
  SETTABLE_FLAGS,
  ORACLE_XMM_SIZE,
  isSseCase,
  registerCount,
  type OracleCase,
  type OracleFault,
  type OracleFaultKind,
  type OracleResult,
} from './types.js';

// The binary format spoken with the harness (see the comment at the top of harness-source.ts).
export const CASE_HEADER_SIZE = 136;
export const RESULT_HEADER_SIZE = 168;
/** XMM0–XMM15, MXCSR and 4 reserved bytes, after the memory of an SSE case and of its result. */
export const SSE_BLOCK_SIZE = ORACLE_XMM_SIZE + 8;
const SSE_CASE = 0x80;
const DEFAULT_MXCSR = 0x1f80;

const STATUS_OK = 0;
const STATUS_FAULT = 1;
const STATUS_FAULT_OUTSIDE_CODE = 2;
const STATUS_TIMEOUT = 3;

const VECTOR_NAMES: Readonly<Record<number, string>> = {
  0: '#DE',
  1: '#DB',
  2: 'NMI',
  3: '#BP',
  4: '#OF',
  5: '#BR',
  6: '#UD',
  7: '#NM',
  8: '#DF',
  10: '#TS',
  11: '#NP',
  12: '#SS',
  13: '#GP',
  14: '#PF',
  16: '#MF',
  17: '#AC',
  18: '#MC',
  19: '#XM',
  20: '#VE',
  21: '#CP',
};

// Linux x86-64 signal numbers.
const SIGNAL_NAMES: Readonly<Record<number, string>> = {
  4: 'SIGILL',
  5: 'SIGTRAP',
  7: 'SIGBUS',
  8: 'SIGFPE',
  11: 'SIGSEGV',
  14: 'SIGALRM',
};

/** Mnemonic of an exception vector, e.g. vectorName(0) === '#DE'. */
export function vectorName(vector: number): string {
  return VECTOR_NAMES[vector] ?? `vector ${vector}`;
}

/** Throws a TypeError naming the case when it cannot be sent to the harness. */
export function validateCase(testCase: OracleCase, index: number): void {
  const where = `oracle case ${index}`;
  if (testCase.bits !== 64 && testCase.bits !== 32) {
    throw new TypeError(`${where}: bits must be 64 or 32, got ${String(testCase.bits)}`);
  }
  if (!(testCase.code instanceof Uint8Array) || testCase.code.length > ORACLE_MAX_CODE_LENGTH) {
    throw new TypeError(`${where}: code must be a Uint8Array of at most ${ORACLE_MAX_CODE_LENGTH} bytes`);
  }
  const expected = registerCount(testCase.bits);
  if (testCase.registers.length !== expected) {
    throw new TypeError(
      `${where}: a ${testCase.bits}-bit case needs ${expected} registers, got ${testCase.registers.length}`,
    );
  }
  for (const value of testCase.registers) {
    if (typeof value !== 'bigint') throw new TypeError(`${where}: registers must be bigints`);
  }
  if (testCase.memory !== undefined && testCase.memory.length > ORACLE_MEMORY_SIZE) {
    throw new TypeError(`${where}: memory is limited to ${ORACLE_MEMORY_SIZE} bytes`);
  }
  if (testCase.xmm !== undefined && (!(testCase.xmm instanceof Uint8Array) || testCase.xmm.length !== ORACLE_XMM_SIZE)) {
    throw new TypeError(`${where}: xmm must be a Uint8Array of ${ORACLE_XMM_SIZE} bytes`);
  }
  if (testCase.mxcsr !== undefined && (!Number.isInteger(testCase.mxcsr) || testCase.mxcsr < 0 || testCase.mxcsr > 0xffff)) {
    // Reserved MXCSR bits would make the harness's LDMXCSR fault.
    throw new TypeError(`${where}: mxcsr must be an integer in [0, 0xffff]`);
  }
}

/** Size of one encoded case. */
export function encodedCaseSize(testCase: OracleCase): number {
  return CASE_HEADER_SIZE + testCase.code.length + (testCase.memory?.length ?? 0) + (isSseCase(testCase) ? SSE_BLOCK_SIZE : 0);
}

/** Encodes (already validated) cases into one stdin buffer. */
export function encodeCases(cases: readonly OracleCase[]): Uint8Array {
  let total = 0;
  for (const testCase of cases) total += encodedCaseSize(testCase);
  const buffer = new Uint8Array(total);
  const view = new DataView(buffer.buffer);
  let offset = 0;
  for (const testCase of cases) {
    const memoryLength = testCase.memory?.length ?? 0;
    const sse = isSseCase(testCase);
    view.setUint8(offset, testCase.bits | (sse ? SSE_CASE : 0));
    view.setUint8(offset + 1, testCase.code.length);
    view.setUint16(offset + 2, memoryLength, true);
    view.setUint32(offset + 4, (testCase.rflags ?? 0) & SETTABLE_FLAGS, true);
    const width = testCase.bits;
    for (let index = 0; index < 16; index++) {
      const value = testCase.registers[index];
      const unsigned = value === undefined || index >= registerCount(testCase.bits) ? 0n : BigInt.asUintN(width, value);
      view.setBigUint64(offset + 8 + 8 * index, unsigned, true);
    }
    offset += CASE_HEADER_SIZE;
    buffer.set(testCase.code, offset);
    offset += testCase.code.length;
    if (testCase.memory !== undefined) buffer.set(testCase.memory, offset);
    offset += memoryLength;
    if (sse) {
      if (testCase.xmm !== undefined) buffer.set(testCase.xmm, offset);
      view.setUint32(offset + ORACLE_XMM_SIZE, testCase.mxcsr ?? DEFAULT_MXCSR, true);
      offset += SSE_BLOCK_SIZE;
    }
  }
  return buffer;
}

/**
 * Decodes as many complete results as `buffer` holds, for cases starting at
 * `cases[0]`. Returns the results; a trailing partial result is ignored.
 */
export function decodeResults(buffer: Uint8Array, cases: readonly OracleCase[]): OracleResult[] {
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const results: OracleResult[] = [];
  let offset = 0;
  for (const testCase of cases) {
    const memoryLength = testCase.memory?.length ?? 0;
    const sse = isSseCase(testCase);
    if (offset + RESULT_HEADER_SIZE + memoryLength + (sse ? SSE_BLOCK_SIZE : 0) > buffer.length) break;
    const status = view.getUint8(offset);
    const signal = view.getUint8(offset + 1);
    const vector = view.getUint8(offset + 2);
    const signalCode = view.getInt32(offset + 4, true);
    const errorCode = Number(view.getBigUint64(offset + 8, true) & 0xffff_ffffn);
    const address = view.getBigUint64(offset + 16, true);
    const rip = view.getBigUint64(offset + 24, true);
    const rflags = Number(view.getBigUint64(offset + 32, true) & 0xffff_ffffn);
    const registers: bigint[] = [];
    for (let index = 0; index < registerCount(testCase.bits); index++) {
      registers.push(view.getBigUint64(offset + 40 + 8 * index, true));
    }
    offset += RESULT_HEADER_SIZE;
    const memory = buffer.slice(offset, offset + memoryLength);
    offset += memoryLength;
    const result: OracleResult = {
      registers,
      rflags,
      rip: testCase.bits === 32 ? rip & 0xffff_ffffn : rip,
      memory,
      fault: decodeFault(status, signal, vector, signalCode, errorCode, address),
    };
    if (sse) {
      const xmm = buffer.slice(offset, offset + ORACLE_XMM_SIZE);
      const mxcsr = view.getUint32(offset + ORACLE_XMM_SIZE, true);
      offset += SSE_BLOCK_SIZE;
      results.push({ ...result, xmm, mxcsr });
    } else results.push(result);
  }
  return results;
}

function decodeFault(
  status: number,
  signal: number,
  vector: number,
  signalCode: number,
  errorCode: number,
  address: bigint,
): OracleFault | undefined {
  if (status === STATUS_OK) return undefined;
  const signalName = SIGNAL_NAMES[signal] ?? `signal ${signal}`;
  if (status === STATUS_TIMEOUT) {
    return { kind: 'timeout', vector: -1, name: 'timeout', signal: signalName, signalCode, errorCode: 0, address: 0n };
  }
  const kind: OracleFaultKind = status === STATUS_FAULT_OUTSIDE_CODE ? 'outside-code' : 'exception';
  if (status !== STATUS_FAULT && status !== STATUS_FAULT_OUTSIDE_CODE) {
    throw new Error(`oracle harness sent an unknown status ${status}`);
  }
  return { kind, vector, name: vectorName(vector), signal: signalName, signalCode, errorCode, address };
}

/** The result recorded for a case during which the harness process died. */
export function crashResult(testCase: OracleCase, detail: string): OracleResult {
  return {
    registers: new Array<bigint>(registerCount(testCase.bits)).fill(0n),
    rflags: 0,
    rip: 0n,
    memory: new Uint8Array(testCase.memory?.length ?? 0),
    fault: { kind: 'crash', vector: -1, name: 'crash', signal: '', signalCode: 0, errorCode: 0, address: 0n, detail },
  };
}
