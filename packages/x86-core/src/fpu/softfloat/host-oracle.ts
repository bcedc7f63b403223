import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ORACLE_C_SOURCE } from './oracle-source.js';

/*
 * Test-only: runs floating-point instructions on the host CPU (gcc-compiled C
 * with inline x87 and SSE assembly), one process per batch of cases.
 */

/** Operation codes of the oracle program. */
export enum OracleOperation {
  fadd = 1, fsub = 2, fmul = 3, fdiv = 4, fsqrt = 5,
  fldSingle = 6, fldDouble = 7, fstSingle = 8, fstDouble = 9,
  fildWord = 10, fildDword = 11, fildQword = 12,
  fistWord = 13, fistDword = 14, fistQword = 15, fisttpQword = 16,
  fcom = 17, fucom = 18, fxam = 19, frndint = 20, fprem = 21, fprem1 = 22, fscale = 23, fxtract = 24, fbld = 25, fbstp = 26,
  addss = 64, subss = 65, mulss = 66, divss = 67, sqrtss = 68, minss = 69, maxss = 70,
  addsd = 72, subsd = 73, mulsd = 74, divsd = 75, sqrtsd = 76, minsd = 77, maxsd = 78,
  cvtss2sd = 80, cvtsd2ss = 81,
  cvtss2si32 = 82, cvttss2si32 = 83, cvtss2si64 = 84, cvttss2si64 = 85,
  cvtsd2si32 = 86, cvttsd2si32 = 87, cvtsd2si64 = 88, cvttsd2si64 = 89,
  cvtsi2ss32 = 90, cvtsi2ss64 = 91, cvtsi2sd32 = 92, cvtsi2sd64 = 93,
  comiss = 94, ucomiss = 95, comisd = 96, ucomisd = 97,
  cmpss = 100, cmpsd = 108,
}

export interface OracleCase {
  readonly operation: number;
  /** x87 control word or MXCSR. */
  readonly control: number;
  /** Operand bytes (little-endian, up to 16 each). */
  readonly a: Uint8Array;
  readonly b: Uint8Array;
}

export interface OracleResult {
  /** 32 result bytes: x87 first result at 0, second at 16; SSE bits at 0. */
  readonly bytes: Uint8Array;
  readonly status: number;
  readonly mxcsr: number;
  readonly rflags: number;
  /** An unmasked SSE exception trapped (#XM); nothing was written. */
  readonly trapped: boolean;
}

export type HostOracle = { readonly run: (cases: readonly OracleCase[]) => OracleResult[] } | { readonly unavailable: string };

const INPUT_RECORD = 40;
const OUTPUT_RECORD = 48;

function compile(): string {
  const hash = createHash('sha256').update(ORACLE_C_SOURCE).digest('hex').slice(0, 16);
  const directory = join(tmpdir(), 'tsvirt-softfloat-oracle');
  const binary = join(directory, `oracle-${hash}`);
  if (existsSync(binary)) return binary;
  mkdirSync(directory, { recursive: true });
  const source = join(directory, `oracle-${hash}-${process.pid}.c`);
  writeFileSync(source, ORACLE_C_SOURCE);
  const temporary = `${binary}.${process.pid}`;
  // -mno-red-zone: the comparisons push RFLAGS inside inline assembly.
  execFileSync('gcc', ['-O0', '-mno-red-zone', '-o', temporary, source], { stdio: 'pipe' });
  renameSync(temporary, binary);
  return binary;
}

export function createHostOracle(): HostOracle {
  if (process.arch !== 'x64') return { unavailable: `the host oracle needs an x86-64 host (this is ${process.arch})` };
  let binary: string;
  try {
    binary = compile();
  } catch (error) {
    return { unavailable: `gcc could not build the oracle (${String(error).split('\n')[0]}); install gcc to enable these tests` };
  }
  return {
    run(cases) {
      const input = new Uint8Array(cases.length * INPUT_RECORD);
      const view = new DataView(input.buffer);
      cases.forEach((oracleCase, index) => {
        const base = index * INPUT_RECORD;
        view.setUint32(base, oracleCase.operation, true);
        view.setUint32(base + 4, oracleCase.control >>> 0, true);
        input.set(oracleCase.a.subarray(0, 16), base + 8);
        input.set(oracleCase.b.subarray(0, 16), base + 24);
      });
      const output = spawnSync(binary, { input, maxBuffer: cases.length * OUTPUT_RECORD + 1024 });
      if (output.status !== 0 || output.stdout.length !== cases.length * OUTPUT_RECORD) throw new Error(`oracle failed: status ${output.status} ${output.stderr.toString()}`);
      const bytes = new Uint8Array(output.stdout.buffer, output.stdout.byteOffset, output.stdout.length);
      const outView = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
      return cases.map((_, index) => {
        const base = index * OUTPUT_RECORD;
        return {
          bytes: bytes.slice(base, base + 32),
          status: outView.getUint32(base + 32, true),
          mxcsr: outView.getUint32(base + 36, true),
          rflags: outView.getUint32(base + 40, true),
          trapped: outView.getUint32(base + 44, true) === 1,
        };
      });
    },
  };
}

/** The oracle, or a failure in CI where it must exist. */
export function requireOracleOutsideCi(oracle: HostOracle): void {
  if ('unavailable' in oracle && process.env.CI) throw new Error(`host oracle unavailable in CI: ${oracle.unavailable}`);
}

/** Encoders for operand bytes. */
export function extendedBytes(signExponent: number, high: number, low: number): Uint8Array {
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, low >>> 0, true);
  view.setUint32(4, high >>> 0, true);
  view.setUint16(8, signExponent & 0xffff, true);
  return bytes;
}
export function wordsBytes(low: number, high = 0): Uint8Array {
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, low >>> 0, true);
  view.setUint32(4, high >>> 0, true);
  return bytes;
}
export function readExtended(bytes: Uint8Array, offset = 0): { signExponent: number; high: number; low: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  return { signExponent: view.getUint16(offset + 8, true), high: view.getUint32(offset + 4, true), low: view.getUint32(offset, true) };
}
export function readWords(bytes: Uint8Array): { low: number; high: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  return { low: view.getUint32(0, true), high: view.getUint32(4, true) };
}
