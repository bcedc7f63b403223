import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { TSVIRT_MAX } from '../cpuid/models.js';
import type { Feature } from '../decoder/opcode-entry.js';
import { assemble, nasmAvailable } from '../testing/assemble.js';
import { InterpreterCaseRunner } from '../testing/interpreter-case.js';
import type { HostOracle, OracleCase } from '../testing/oracle/index.js';
import { oracleForTests } from '../testing/oracle/oracle-for-tests.js';
import { integerBits, mxcsrValue, simdCase, simdDifference, simdMemory, xmmImage, xmmText } from '../testing/simd-oracle.js';

/*
 * SSE/SSE2/SSE3/SSE4.1 floating-point instructions against the host CPU:
 * XMM0–XMM3 and the memory page hold special values (denormals, both NaN
 * kinds, infinities, signed zeros, rounding boundaries), MXCSR every
 * rounding mode with DAZ/FTZ and sometimes unmasked exceptions. XMM, MXCSR,
 * memory, the general registers and EFLAGS must match bit for bit, and so
 * must the exception (#XM, #GP for misaligned operands).
 */

const host = await oracleForTests({ suite: 'the SSE floating-point host-oracle tests' });
const SIMD: Feature[] = ['fxsr', 'sse', 'sse2', 'sse3', 'sse4_1', 'mmx'];
const runner = new InterpreterCaseRunner({ ...TSVIRT_MAX, features: new Set([...TSVIRT_MAX.features, ...SIMD]) });

/** Instruction templates; memory operands use [rbx+0x100] (aligned) or [rbx+0x108] (misaligned). */
const MOVES = [
  'movaps xmm0, xmm1', 'movaps xmm2, [rbx+0x100]', 'movaps [rbx+0x110], xmm3', 'movaps xmm0, [rbx+0x108]', 'movups xmm1, [rbx+0x108]', 'movups [rbx+0x101], xmm2',
  'movapd xmm0, xmm3', 'movupd xmm1, [rbx+0x104]', 'movapd [rbx+0x118], xmm0', 'movntps [rbx+0x100], xmm1', 'movntpd [rbx+0x120], xmm2', 'lddqu xmm3, [rbx+0x10f]',
  'movss xmm0, xmm1', 'movss xmm0, [rbx+0x104]', 'movss [rbx+0x10c], xmm2', 'movsd xmm1, xmm2', 'movsd xmm3, [rbx+0x108]', 'movsd [rbx+0x104], xmm1',
  'movlps xmm0, [rbx+0x108]', 'movlps [rbx+0x104], xmm1', 'movhps xmm2, [rbx+0x100]', 'movhps [rbx+0x10c], xmm3', 'movhlps xmm0, xmm1', 'movlhps xmm2, xmm3',
  'movlpd xmm0, [rbx+0x100]', 'movlpd [rbx+0x108], xmm1', 'movhpd xmm2, [rbx+0x104]', 'movhpd [rbx+0x100], xmm3',
  'movddup xmm0, xmm1', 'movddup xmm2, [rbx+0x104]', 'movsldup xmm1, xmm2', 'movsldup xmm3, [rbx+0x100]', 'movshdup xmm0, xmm3', 'movshdup xmm1, [rbx+0x108]',
  'movaps xmm9, xmm1\nmovaps xmm0, xmm9', 'movaps xmm2, xmm2', 'movnti [rbx+0x104], eax', 'movnti [rbx+0x108], rcx',
  'ldmxcsr [rbx+0x100]\nstmxcsr [rbx+0x110]', 'stmxcsr [rbx+0x104]',
];
/** 32-bit code (compatibility mode): XMM0–XMM7 only, EBX addressing. */
const LEGACY_32 = [
  'addps xmm0, [ebx+0x100]', 'mulss xmm1, xmm2', 'cvtsi2sd xmm2, eax', 'cvttsd2si ecx, xmm3', 'movaps xmm7, xmm0', 'movups xmm6, [ebx+0x104]', 'comisd xmm0, xmm1',
  'cvtpd2ps xmm3, [ebx+0x110]', 'fxsave [ebx+0x200]\nmov eax, [ebx+0x200+24]\nmov [ebx+0x100], eax\nmov eax, [ebx+0x200+160+16*7]\nmov [ebx+0x104], eax',
];

/** Every form of an arithmetic mnemonic: packed and scalar, register and memory sources. */
function forms(name: string, packedOnly = false): string[] {
  const list = [`${name}ps xmm0, xmm1`, `${name}ps xmm2, [rbx+0x100]`, `${name}pd xmm1, xmm2`, `${name}pd xmm3, [rbx+0x110]`];
  if (!packedOnly) list.push(`${name}ss xmm0, xmm3`, `${name}ss xmm1, [rbx+0x104]`, `${name}sd xmm2, xmm0`, `${name}sd xmm3, [rbx+0x108]`);
  return list;
}

const ARITHMETIC = [...['add', 'sub', 'mul', 'div', 'min', 'max', 'sqrt'].flatMap((name) => forms(name)), 'addps xmm0, [rbx+0x108]', 'mulsd xmm1, xmm1', 'maxps xmm2, xmm2'];
const COMPARE = [
  ...[0, 1, 2, 3, 4, 5, 6, 7].flatMap((predicate) => [`cmpps xmm0, xmm1, ${predicate}`, `cmppd xmm2, [rbx+0x100], ${predicate}`, `cmpss xmm1, [rbx+0x10c], ${predicate}`, `cmpsd xmm3, xmm0, ${predicate}`]),
  'comiss xmm0, xmm1', 'ucomiss xmm2, [rbx+0x104]', 'comisd xmm3, [rbx+0x108]', 'ucomisd xmm1, xmm2', 'cmpps xmm0, xmm0, 0x0f',
];
const LOGIC_AND_SHUFFLE = [
  ...['and', 'andn', 'or', 'xor', 'unpckl', 'unpckh'].flatMap((name) => forms(name, true)),
  'shufps xmm0, xmm1, 0x1b', 'shufps xmm2, [rbx+0x100], 0xe4', 'shufps xmm3, xmm3, 0x93', 'shufpd xmm0, xmm1, 1', 'shufpd xmm2, [rbx+0x110], 2', 'shufpd xmm1, xmm1, 3',
  'movmskps eax, xmm1', 'movmskpd ecx, xmm2', 'movmskps r9, xmm3', 'xorps xmm0, [rbx+0x108]',
];
const CONVERT = [
  'cvtsi2ss xmm0, eax', 'cvtsi2ss xmm1, rcx', 'cvtsi2ss xmm2, dword [rbx+0x100]', 'cvtsi2ss xmm3, qword [rbx+0x108]',
  'cvtsi2sd xmm0, ecx', 'cvtsi2sd xmm1, rax', 'cvtsi2sd xmm2, dword [rbx+0x104]', 'cvtsi2sd xmm3, qword [rbx+0x100]',
  'cvtss2si eax, xmm0', 'cvtss2si rcx, xmm1', 'cvttss2si edx, [rbx+0x100]', 'cvttss2si r8, xmm2', 'cvtsd2si eax, xmm3', 'cvtsd2si rdx, [rbx+0x108]', 'cvttsd2si ecx, xmm1', 'cvttsd2si r10, xmm0',
  'cvtps2pd xmm0, xmm1', 'cvtps2pd xmm2, [rbx+0x104]', 'cvtpd2ps xmm1, xmm2', 'cvtpd2ps xmm3, [rbx+0x110]', 'cvtss2sd xmm0, xmm3', 'cvtss2sd xmm1, [rbx+0x10c]', 'cvtsd2ss xmm2, xmm0', 'cvtsd2ss xmm3, [rbx+0x108]',
  'cvtdq2ps xmm0, xmm1', 'cvtdq2ps xmm2, [rbx+0x100]', 'cvtps2dq xmm1, xmm3', 'cvtps2dq xmm0, [rbx+0x110]', 'cvttps2dq xmm3, xmm2', 'cvttps2dq xmm1, [rbx+0x100]',
  'cvtdq2pd xmm0, xmm2', 'cvtdq2pd xmm1, [rbx+0x104]', 'cvtpd2dq xmm2, xmm3', 'cvtpd2dq xmm3, [rbx+0x100]', 'cvttpd2dq xmm0, xmm1', 'cvttpd2dq xmm1, [rbx+0x110]',
  // MMX forms. The harness has no MMX state and MMX moves are not this file's, so MMX register i is loaded
  // as physical x87 register R(i) (FLD m80 after FNINIT fills R7), and read back from an FXSAVE image
  // (TOP is 0 after an MMX instruction, so slot i is R(i)): the significand, the sign/exponent field
  // (0xFFFF after an MMX write), FSW and the abridged tag byte are copied into the compared memory.
  'fninit\nfld tword [rbx+0x100]\ncvtpi2ps xmm0, mm7\nfninit', 'cvtpi2ps xmm1, [rbx+0x108]', 'fninit\nfld tword [rbx+0x110]\ncvtpi2pd xmm2, mm7\nfninit', 'cvtpi2pd xmm3, [rbx+0x100]',
  ...['cvtps2pi mm0, xmm1', 'cvttps2pi mm3, [rbx+0x104]', 'cvtpd2pi mm1, xmm2', 'cvttpd2pi mm2, [rbx+0x110]'].map((operation) => {
    const register = Number(/mm(\d)/.exec(operation)![1]);
    const slot = 0x400 + 32 + register * 16;
    return `fninit\n${operation}\nfxsave64 [rbx+0x400]\nmov rax, [rbx+${slot}]\nmov [rbx+0x180], rax\nmov ax, [rbx+${slot + 8}]\nmov [rbx+0x188], ax\nmov eax, [rbx+0x402]\nmov [rbx+0x18c], eax\nfninit`;
  }),
];
const SSE3 = [
  ...['addsub', 'hadd', 'hsub'].flatMap((name) => forms(name, true)), 'haddps xmm0, xmm0', 'hsubpd xmm1, xmm1', 'addsubps xmm2, [rbx+0x108]',
];
const SSE41 = [
  ...[0, 1, 2, 3, 4, 8, 9, 0xa, 0xb, 0xc, 0xf].flatMap((control) => [`roundps xmm0, xmm1, ${control}`, `roundpd xmm2, [rbx+0x100], ${control}`, `roundss xmm1, [rbx+0x104], ${control}`, `roundsd xmm3, xmm2, ${control}`]),
  'dpps xmm0, xmm1, 0xff', 'dpps xmm2, [rbx+0x100], 0x71', 'dpps xmm1, xmm3, 0xa5', 'dpps xmm3, xmm3, 0x3c', 'dppd xmm0, xmm1, 0x33', 'dppd xmm2, [rbx+0x110], 0x12', 'dppd xmm1, xmm2, 0x21',
  'blendps xmm0, xmm1, 5', 'blendps xmm2, [rbx+0x100], 0xe', 'blendpd xmm1, xmm3, 2', 'blendpd xmm3, [rbx+0x110], 1',
  'blendvps xmm1, xmm2, xmm0', 'blendvps xmm3, [rbx+0x100], xmm0', 'blendvpd xmm2, xmm3, xmm0', 'blendvpd xmm1, [rbx+0x110], xmm0', 'blendvps xmm0, xmm1, xmm0',
  'insertps xmm0, xmm1, 0x4c', 'insertps xmm2, xmm3, 0xb1', 'insertps xmm1, [rbx+0x104], 0x30', 'insertps xmm3, xmm3, 0xd6',
  'extractps eax, xmm1, 2', 'extractps [rbx+0x104], xmm2, 3', 'extractps rcx, xmm0, 1', 'roundps xmm0, [rbx+0x108], 0',
];

export function templateCases(templates: readonly string[], bits: 64 | 32 = 64): { codes: Uint8Array[]; cases: fc.Arbitrary<OracleCase[]> } {
  const codes = templates.map((template) => (nasmAvailable() ? assemble(`bits ${bits}\n${template}\n`) : new Uint8Array(0)));
  const register = fc.oneof(integerBits.map((value) => BigInt(value | 0)), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), fc.bigInt({ min: -(2n ** 24n), max: 2n ** 24n }));
  const one = fc.record({ index: fc.integer({ min: 0, max: templates.length - 1 }), xmm: xmmImage(4), mxcsr: mxcsrValue, memory: simdMemory(0x200), rflags: fc.constantFrom(0, 0x8d5, 0x44), rax: register, rcx: register })
    .map(({ index, xmm, mxcsr, memory, rflags, rax, rcx }) => simdCase({ code: codes[index]!, xmm, mxcsr, memory, rflags, bits, registers: { 0: rax, 1: rcx } }));
  return { codes, cases: fc.array(one, { minLength: 300, maxLength: 300 }) };
}

function compareAll(templates: readonly string[], codes: Uint8Array[], cases: OracleCase[], results: Awaited<ReturnType<HostOracle['run']>>): void {
  cases.forEach((oracleCase, index) => {
    const mine = runner.run(oracleCase);
    const difference = simdDifference(results[index]!, mine);
    const label = `${templates[codes.indexOf(oracleCase.code)]} mxcsr ${oracleCase.mxcsr!.toString(16)} ${xmmText(oracleCase.xmm!, [0, 1, 2, 3])} memory ${[...oracleCase.memory!.subarray(0x100, 0x130)].map((byte) => byte.toString(16).padStart(2, '0')).join('')}`;
    expect(difference, label).toBeUndefined();
  });
}

function suite(name: string, templates: readonly string[], runs = 4, bits: 64 | 32 = 64): void {
  const { codes, cases } = templateCases(templates, bits);
  test.prop([cases], { numRuns: runs, endOnFailure: true })(name, async (batch) => {
    compareAll(templates, codes, batch, await host.require().run(batch));
  }, 60_000);
}

describe.skipIf(host.skip)('SSE floating point on the host CPU', () => {
  suite('moves', MOVES);
  suite('arithmetic: ADD SUB MUL DIV MIN MAX SQRT', ARITHMETIC, 8);
  suite('CMPPS/PD/SS/SD (all predicates), COMISS/SD, UCOMISS/SD', COMPARE, 6);
  suite('AND ANDN OR XOR, UNPCKL/H, SHUFPS/PD, MOVMSKPS/PD', LOGIC_AND_SHUFFLE);
  suite('CVT*', CONVERT, 8);
  suite('SSE3 ADDSUB, HADD, HSUB', SSE3, 4);
  suite('SSE4.1 ROUND, DPPS/PD, BLEND(V)PS/PD, INSERTPS, EXTRACTPS', SSE41, 6);
});

describe.skipIf(host.skip32)('SSE floating point on the host CPU, 32-bit code', () => {
  suite('32-bit code', LEGACY_32, 2, 32);
});

/*
 * RCPPS/RCPSS/RSQRTPS/RSQRTSS: the SDM defines only a relative error of at
 * most 1.5 * 2^-12 (the bits come from an implementation-specific table, and
 * this AMD or Intel host's table is not reproduced). Both the host and
 * tsvirt must meet that bound against the exact value; zeros, infinities and
 * NaNs (specified exactly) must match bit for bit, as must MXCSR (unchanged)
 * and the elements the scalar forms keep. Near the smallest normal, where
 * the SDM lets an implementation flush or not, a zero is accepted.
 */
const APPROXIMATIONS = ['rcpps xmm0, xmm1', 'rcpss xmm0, xmm1', 'rsqrtps xmm0, xmm1', 'rsqrtss xmm0, xmm1'];

function float32(bits: number): number {
  return new Float32Array(new Uint32Array([bits]).buffer)[0]!;
}

function isSpecial(bits: number): boolean {
  const field = (bits >>> 23) & 0xff;
  return field === 0xff || (bits & 0x7fffffff) === 0;
}

describe.skipIf(host.skip)('SSE approximations on the host CPU', () => {
  const { codes, cases } = templateCases(APPROXIMATIONS);
  test.prop([cases], { numRuns: 4, endOnFailure: true })('RCP and RSQRT are within 1.5 * 2^-12, specials exact', async (batch) => {
    const results = await host.require().run(batch);
    batch.forEach((oracleCase, index) => {
      const host = results[index]!;
      const mine = runner.run(oracleCase);
      const name = APPROXIMATIONS[codes.indexOf(oracleCase.code)]!;
      const label = `${name} ${xmmText(oracleCase.xmm!, [0, 1])}`;
      expect(mine.vector, label).toBe(host.fault?.vector);
      expect(mine.mxcsr, label).toBe(host.mxcsr);
      const hostLanes = new Uint32Array(host.xmm!.buffer.slice(0, 16));
      const myLanes = new Uint32Array(mine.xmm!.buffer.slice(0, 16));
      const sources = new Uint32Array(oracleCase.xmm!.buffer.slice(16, 32));
      const scalar = name.includes('ss ');
      for (let lane = 0; lane < 4; lane++) {
        const text = `${label} lane ${lane}: host ${hostLanes[lane]!.toString(16)} interpreter ${myLanes[lane]!.toString(16)}`;
        if (scalar && lane > 0) {
          expect(myLanes[lane], text).toBe(hostLanes[lane]);
          continue;
        }
        const source = float32(sources[lane]!);
        const exact = name.startsWith('rcp') ? 1 / source : 1 / Math.sqrt(source);
        const nearSmallest = Math.abs(exact) < 2 ** -126 * (1 + 2 ** -9) && Math.abs(exact) > 2 ** -126 * (1 - 2 ** -9);
        // Each side on its own: a flushed zero near the smallest normal, else the specified special value or the bound.
        for (const bits of [hostLanes[lane]!, myLanes[lane]!]) {
          if (nearSmallest && (bits & 0x7fffffff) === 0) continue;
          if (!Number.isFinite(exact) || exact === 0 || Number.isNaN(exact) || isSpecial(bits)) expect(myLanes[lane], text).toBe(hostLanes[lane]);
          else expect(Math.abs(float32(bits) - exact) / Math.abs(exact), text).toBeLessThanOrEqual(1.5 * 2 ** -12);
        }
      }
    });
  }, 60_000);
});
