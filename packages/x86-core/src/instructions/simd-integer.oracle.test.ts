import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { TSVIRT_MAX } from '../cpuid/models.js';
import { Decoder } from '../decoder/decoder.js';
import { disassemble } from '../decoder/disassembler.js';
import { CodeMode, Instruction } from '../decoder/instruction.js';
import type { Feature } from '../decoder/opcode-entry.js';
import { buildOpcodeTable } from '../decoder/opcode-table.js';
import { assemble, nasmAvailable } from '../testing/assemble.js';
import { InterpreterCaseRunner } from '../testing/interpreter-case.js';
import { ORACLE_MEMORY_BASE, ORACLE_XMM_SIZE, type OracleCase, Reg } from '../testing/oracle/index.js';
import { oracleForTests } from '../testing/oracle/oracle-for-tests.js';
import { integerBits, simdCase, simdDifference, xmmText } from '../testing/simd-oracle.js';

/*
 * The integer MMX, SSE2, SSSE3, SSE4.1 and SSE4.2 instructions against the
 * host CPU. Every template runs a fixed number of times from random XMM
 * registers, memory, general registers (small numbers for counts and
 * lengths, edges, random 64-bit values) and immediates; XMM, memory, the
 * general registers, EFLAGS and the exception (#GP for misaligned operands)
 * must match. MMX registers are not part of an oracle case, so MMX templates
 * load MM0–MM3 from memory first and store them back (then EMMS).
 */

const host = await oracleForTests({ suite: 'the integer SIMD host-oracle tests' });
const FEATURES: Feature[] = ['fxsr', 'sse', 'sse2', 'sse3', 'mmx', 'ssse3', 'sse4_1', 'sse4_2'];
const MODEL = { ...TSVIRT_MAX, features: new Set([...TSVIRT_MAX.features, ...FEATURES]) };
const runner = new InterpreterCaseRunner(MODEL);

/** MMX templates run between these: MM0–MM3 from memory +0x180, back to +0x1A0. */
const MMX_LOAD = 'movq mm0, [rbx+0x180]\nmovq mm1, [rbx+0x188]\nmovq mm2, [rbx+0x190]\nmovq mm3, [rbx+0x198]';
const MMX_STORE = 'movq [rbx+0x1a0], mm0\nmovq [rbx+0x1a8], mm1\nmovq [rbx+0x1b0], mm2\nmovq [rbx+0x1b8], mm3\nemms';

interface Template {
  /** One instruction (or a short sequence); an instruction ending in an immediate gets a random one when `immediate` is set. */
  readonly body: string;
  readonly mmx?: boolean;
  readonly immediate?: boolean;
  readonly bits?: 32 | 64;
  /** A misaligned 16-byte operand: #GP(0) every time. */
  readonly misaligned?: boolean;
}

interface Compiled extends Template {
  readonly code: Uint8Array;
  /** Offset of the immediate byte to randomize, or -1. */
  readonly immediateAt: number;
  /** Where the template's own instruction starts and ends in `code`. */
  readonly bodyStart: number;
  readonly bodyEnd: number;
}

/** Assembles many sources in one NASM run: each part is delimited by a label, and a table of the labels follows. */
function assembleAll(sources: readonly string[], bits: number): Uint8Array[] {
  const parts = sources.map((source, index) => `part${index}:\n${source}\n`).join('');
  const table = `parts_end:\n${sources.map((_, index) => `dd part${index}`).join('\n')}\ndd parts_end\n`;
  const bytes = assemble(`bits ${bits}\n${parts}${table}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tableAt = bytes.length - (sources.length + 1) * 4;
  const offsets = Array.from({ length: sources.length + 1 }, (_, index) => view.getUint32(tableAt + index * 4, true));
  return sources.map((_, index) => bytes.slice(offsets[index]!, offsets[index + 1]!));
}

function compile(templates: readonly Template[]): Compiled[] {
  if (!nasmAvailable()) return [];
  const compiled: Compiled[] = [];
  for (const bits of [64, 32] as const) {
    const chosen = templates.filter((template) => (template.bits ?? 64) === bits);
    if (chosen.length === 0) continue;
    const [load, store] = assembleAll([MMX_LOAD, MMX_STORE].map((source) => (bits === 32 ? source.replaceAll('rbx', 'ebx') : source)), bits);
    const bodies = assembleAll(chosen.map((template) => template.body), bits);
    chosen.forEach((template, index) => {
      const body = bodies[index]!;
      const before = template.mmx ? load! : new Uint8Array(0);
      const after = template.mmx ? store! : new Uint8Array(0);
      const code = new Uint8Array([...before, ...body, ...after]);
      const bodyEnd = before.length + body.length;
      compiled.push({ ...template, code, immediateAt: template.immediate ? bodyEnd - 1 : -1, bodyStart: before.length, bodyEnd });
    });
  }
  return compiled;
}

const byteValue = fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0, 1, 0x7f, 0x80, 0x81, 0xfe, 0xff));
const wordEdge = fc.constantFrom(0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0x8001, 0xfffe, 0xffff);
/** 16 bytes: random or edge bytes, a small alphabet (so string compares match), edge words, or integer dwords. */
const chunk: fc.Arbitrary<number[]> = fc.oneof(
  fc.array(byteValue, { minLength: 16, maxLength: 16 }),
  fc.array(fc.constantFrom(0, 0x41, 0x42, 0x43, 0x61, 0x62, 0x80), { minLength: 16, maxLength: 16 }),
  fc.array(wordEdge, { minLength: 8, maxLength: 8 }).map((words) => words.flatMap((word) => [word & 0xff, word >> 8])),
  fc.array(integerBits, { minLength: 4, maxLength: 4 }).map((dwords) => dwords.flatMap((dword) => [0, 8, 16, 24].map((shift) => (dword >>> shift) & 0xff))),
);
function image(chunks: number): fc.Arbitrary<Uint8Array> {
  return fc.array(chunk, { minLength: chunks, maxLength: chunks }).map((parts) => Uint8Array.from(parts.flat()));
}
/** General registers: small counts and lengths (some negative), edges, random 64-bit values. */
const generalRegister = fc.oneof(
  fc.integer({ min: -20, max: 70 }).map(BigInt),
  fc.constantFrom(0n, 0x7fffffffn, 0x80000000n, 0xffffffffn, 0x100000000n, 1n << 63n, -1n, -17n),
  fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
);

function caseFor(template: Compiled): fc.Arbitrary<OracleCase> {
  return fc
    .record({ xmm: image(ORACLE_XMM_SIZE / 16), memory: image(0x200 / 16), rflags: fc.constantFrom(0, 0x8d5, 0x44), registers: fc.array(generalRegister, { minLength: 4, maxLength: 4 }), immediate: fc.integer({ min: 0, max: 255 }) })
    .map(({ xmm, memory, rflags, registers, immediate }) => {
      const code = template.code.slice();
      if (template.immediateAt >= 0) code[template.immediateAt] = immediate;
      const [rax, rcx, rdx, rsi] = registers as [bigint, bigint, bigint, bigint];
      return simdCase({ code, xmm, memory, rflags, bits: template.bits ?? 64, registers: { [Reg.rax]: rax, [Reg.rcx]: rcx, [Reg.rdx]: rdx, [Reg.rsi]: rsi, [Reg.rdi]: BigInt(ORACLE_MEMORY_BASE + 0x140) } });
    });
}

function hex(bytes: Uint8Array): string {
  return [...bytes].map((byte) => byte.toString(16).padStart(2, '0')).join('');
}

/** Runs `perTemplate` random cases of every template on the host and on the interpreter, in one batch. */
function suite(name: string, templates: readonly Template[], perTemplate = 6): void {
  const compiled = compile(templates);
  const cases = fc.tuple(...compiled.map((template) => fc.array(caseFor(template), { minLength: perTemplate, maxLength: perTemplate }))).map((lists) => lists.flat());
  test.prop([cases], { numRuns: 1, endOnFailure: true })(name, async (batch) => {
    const results = await host.require().run(batch);
    batch.forEach((oracleCase, index) => {
      const template = compiled[Math.floor(index / perTemplate)]!;
      const host = results[index]!;
      const difference = simdDifference(host, runner.run(oracleCase));
      const immediate = template.immediateAt >= 0 ? ` imm 0x${oracleCase.code[template.immediateAt]!.toString(16)}` : '';
      const label = `${template.body} (${template.bits ?? 64}-bit)${immediate} ${xmmText(oracleCase.xmm!, [0, 1, 2, 3])} gprs ${oracleCase.registers.slice(0, 8).map((value) => value.toString(16)).join(',')} memory ${hex(oracleCase.memory!.subarray(0x100, 0x1a0))}`;
      expect(difference, label).toBeUndefined();
      // The host agreeing by raising #UD (say) everywhere would prove nothing.
      expect(host.fault?.name, label).toBe(template.misaligned ? '#GP' : undefined);
    });
  }, 120_000);
}

// Lane operations that exist for MMX and XMM registers (the 66 forms being SSE2 or SSSE3).
const SHARED = [
  'paddb', 'paddw', 'paddd', 'paddq', 'psubb', 'psubw', 'psubd', 'psubq', 'paddsb', 'paddsw', 'paddusb', 'paddusw', 'psubsb', 'psubsw', 'psubusb', 'psubusw',
  'pmullw', 'pmulhw', 'pmulhuw', 'pmaddwd', 'pmuludq', 'pcmpeqb', 'pcmpeqw', 'pcmpeqd', 'pcmpgtb', 'pcmpgtw', 'pcmpgtd', 'pand', 'pandn', 'por', 'pxor',
  'packsswb', 'packssdw', 'packuswb', 'punpcklbw', 'punpcklwd', 'punpckldq', 'punpckhbw', 'punpckhwd', 'punpckhdq', 'pminub', 'pmaxub', 'pminsw', 'pmaxsw',
  'pavgb', 'pavgw', 'psadbw',
];
const SSSE3 = ['pshufb', 'phaddw', 'phaddd', 'phaddsw', 'phsubw', 'phsubd', 'phsubsw', 'pmaddubsw', 'pmulhrsw', 'psignb', 'psignw', 'psignd', 'pabsb', 'pabsw', 'pabsd'];
const XMM_ONLY = [
  'punpcklqdq', 'punpckhqdq', 'pmuldq', 'pcmpeqq', 'packusdw', 'pcmpgtq', 'pminsb', 'pminsd', 'pminuw', 'pminud', 'pmaxsb', 'pmaxsd', 'pmaxuw', 'pmaxud', 'pmulld',
];
const SHIFTS = ['psllw', 'pslld', 'psllq', 'psrlw', 'psrld', 'psrlq', 'psraw', 'psrad'];

const mmx = (body: string, immediate = false): Template => ({ body, mmx: true, immediate });
const MMX_TEMPLATES: Template[] = [
  ...[...SHARED, ...SSSE3].flatMap((op) => [mmx(`${op} mm0, mm1`), mmx(`${op} mm2, [rbx+0x104]`)]),
  ...SHIFTS.flatMap((op) => [mmx(`movd mm1, esi\n${op} mm0, mm1`), mmx(`${op} mm2, [rbx+0x100]`), mmx(`${op} mm3, 0`, true)]),
  mmx('pshufw mm0, mm1, 0', true), mmx('pshufw mm0, [rbx+0x103], 0', true), mmx('palignr mm0, mm1, 0', true), mmx('palignr mm2, [rbx+0x100], 0', true),
  mmx('pinsrw mm0, eax, 0', true), mmx('pinsrw mm1, [rbx+0x102], 0', true), mmx('pextrw eax, mm1, 0', true), mmx('pmovmskb eax, mm1'),
  mmx('movd mm0, eax'), mmx('movq mm0, rax'), mmx('movd mm1, [rbx+0x104]'), mmx('movd eax, mm1'), mmx('movq rax, mm1'), mmx('movd [rbx+0x10c], mm1'),
  mmx('movq mm0, mm1'), mmx('movq mm0, [rbx+0x101]'), mmx('movq [rbx+0x10a], mm1'), mmx('movntq [rbx+0x110], mm1'), mmx('maskmovq mm1, mm2'),
  mmx('movq2dq xmm0, mm1'), mmx('movdq2q mm0, xmm1'), mmx('emms\nmovq mm0, [rbx+0x100]'),
];

const XMM_TEMPLATES: Template[] = [
  ...[...SHARED, ...SSSE3, ...XMM_ONLY].flatMap((op) => [{ body: `${op} xmm0, xmm1` }, { body: `${op} xmm2, [rbx+0x100]` }, { body: `${op} xmm9, xmm3` }]),
  ...SHIFTS.flatMap((op) => [{ body: `movq xmm1, rsi\n${op} xmm0, xmm1` }, { body: `${op} xmm2, [rbx+0x100]` }, { body: `${op} xmm3, 0`, immediate: true }]),
  { body: 'pslldq xmm1, 0', immediate: true }, { body: 'psrldq xmm10, 0', immediate: true },
  ...['pshufd', 'pshufhw', 'pshuflw', 'palignr', 'pblendw', 'mpsadbw'].flatMap((op) => [{ body: `${op} xmm0, xmm1, 0`, immediate: true }, { body: `${op} xmm2, [rbx+0x110], 0`, immediate: true }]),
  { body: 'pextrb eax, xmm1, 0', immediate: true }, { body: 'pextrb [rbx+0x105], xmm1, 0', immediate: true }, { body: 'pextrw eax, xmm1, 0', immediate: true },
  { body: 'pextrw [rbx+0x105], xmm1, 0', immediate: true }, { body: 'pextrd ecx, xmm1, 0', immediate: true }, { body: 'pextrd [rbx+0x105], xmm1, 0', immediate: true },
  { body: 'pextrq rdx, xmm8, 0', immediate: true }, { body: 'pextrq [rbx+0x105], xmm1, 0', immediate: true }, { body: 'db 0x66, 0x0f, 0x3a, 0x15, 0xc8, 0', immediate: true },
  { body: 'pinsrb xmm0, eax, 0', immediate: true }, { body: 'pinsrb xmm0, [rbx+0x101], 0', immediate: true }, { body: 'pinsrw xmm0, esi, 0', immediate: true },
  { body: 'pinsrw xmm0, [rbx+0x101], 0', immediate: true }, { body: 'pinsrd xmm0, ecx, 0', immediate: true }, { body: 'pinsrd xmm0, [rbx+0x103], 0', immediate: true },
  { body: 'pinsrq xmm11, rdx, 0', immediate: true }, { body: 'pinsrq xmm0, [rbx+0x103], 0', immediate: true },
  { body: 'pmovmskb eax, xmm1' }, { body: 'pmovmskb r9d, xmm12' },
  { body: 'movd xmm0, eax' }, { body: 'movq xmm0, rax' }, { body: 'movd xmm0, [rbx+0x104]' }, { body: 'movq xmm0, [rbx+0x104]' }, { body: 'movd eax, xmm1' },
  { body: 'movq rax, xmm1' }, { body: 'movd [rbx+0x104], xmm1' }, { body: 'movq xmm0, xmm1' }, { body: 'movq [rbx+0x104], xmm1' }, { body: 'db 0x66, 0x0f, 0xd6, 0xc8' },
  { body: 'movdqa xmm0, xmm1' }, { body: 'movdqa xmm0, [rbx+0x100]' }, { body: 'movdqa xmm0, [rbx+0x108]', misaligned: true }, { body: 'movdqa [rbx+0x110], xmm1' }, { body: 'movdqa [rbx+0x118], xmm1', misaligned: true },
  { body: 'movdqu xmm0, [rbx+0x103]' }, { body: 'movdqu [rbx+0x105], xmm1' }, { body: 'movntdq [rbx+0x110], xmm1' }, { body: 'movntdqa xmm0, [rbx+0x100]' }, { body: 'movntdqa xmm0, [rbx+0x104]', misaligned: true },
  { body: 'maskmovdqu xmm1, xmm2' }, { body: 'pblendvb xmm1, xmm2, xmm0' }, { body: 'pblendvb xmm1, [rbx+0x100], xmm0' }, { body: 'ptest xmm0, xmm1' }, { body: 'ptest xmm2, [rbx+0x100]' },
  { body: 'ptest xmm2, xmm2' }, { body: 'phminposuw xmm0, xmm1' }, { body: 'phminposuw xmm0, [rbx+0x100]' },
  ...['bw', 'bd', 'bq', 'wd', 'wq', 'dq'].flatMap((suffix) => ['sx', 'zx'].flatMap((kind) => [{ body: `pmov${kind}${suffix} xmm0, xmm1` }, { body: `pmov${kind}${suffix} xmm2, [rbx+0x101]` }])),
  // Misaligned 16-byte operands of legacy SSE instructions raise #GP.
  ...['paddb', 'pshufb', 'pminsb', 'ptest', 'pcmpgtq'].map((op) => ({ body: `${op} xmm0, [rbx+0x108]`, misaligned: true })),
  { body: 'pshufd xmm0, [rbx+0x104], 0x1b', misaligned: true }, { body: 'movntdq [rbx+0x108], xmm1', misaligned: true },
];

const STRING_COMPARE: Template[] = [
  ...['pcmpestri', 'pcmpestrm', 'pcmpistri', 'pcmpistrm'].flatMap((op) => [{ body: `${op} xmm1, xmm2, 0`, immediate: true }, { body: `${op} xmm3, [rbx+0x101], 0`, immediate: true }]),
  // With REX.W the explicit lengths are RAX and RDX.
  { body: 'db 0x66, 0x48, 0x0f, 0x3a, 0x61, 0xca, 0', immediate: true }, { body: 'db 0x66, 0x48, 0x0f, 0x3a, 0x60, 0xca, 0', immediate: true },
];

const CRC32: Template[] = [
  { body: 'crc32 eax, cl' }, { body: 'crc32 eax, ah' }, { body: 'crc32 esi, cx' }, { body: 'crc32 eax, ecx' }, { body: 'crc32 rax, rcx' }, { body: 'crc32 rdx, sil' },
  { body: 'crc32 eax, byte [rbx+0x101]' }, { body: 'crc32 eax, word [rbx+0x101]' }, { body: 'crc32 eax, dword [rbx+0x101]' }, { body: 'crc32 rcx, qword [rbx+0x101]' },
];

const LEGACY_32: Template[] = [
  { body: 'paddb xmm0, xmm1' }, { body: 'movd eax, xmm1' }, { body: 'movd xmm0, [ebx+0x104]' }, { body: 'pextrd eax, xmm1, 0', immediate: true }, { body: 'crc32 eax, ecx' },
  { body: 'crc32 eax, dx' }, { body: 'pcmpestri xmm1, xmm2, 0', immediate: true }, { body: 'pcmpistrm xmm1, [ebx+0x100], 0', immediate: true }, { body: 'maskmovdqu xmm1, xmm2' },
  { body: 'pminud xmm0, [ebx+0x100]' },
].map((template) => ({ ...template, bits: 32 as const }));
const LEGACY_32_MMX: Template[] = [
  { body: 'paddw mm0, mm1' }, { body: 'movd eax, mm2' }, { body: 'maskmovq mm1, mm2' }, { body: 'psllq mm0, [ebx+0x100]' }, { body: 'movd mm3, esi' },
].map((template) => ({ ...template, mmx: true, bits: 32 as const }));

describe.skipIf(host.skip)('integer SIMD on the host CPU', () => {
  suite('MMX and its SSE/SSE2/SSSE3 extensions', MMX_TEMPLATES);
  suite('SSE2, SSSE3 and SSE4.1 on XMM registers', XMM_TEMPLATES);
  suite('SSE4.2 string compares', STRING_COMPARE, 60);
  suite('CRC32', CRC32, 12);
});

describe.skipIf(host.skip32)('integer SIMD on the host CPU, 32-bit code', () => {
  suite('32-bit code', [...LEGACY_32, ...LEGACY_32_MMX], 8);
});

/** Decodes with every SIMD feature, as the oracle's interpreter does. */
const decoder = new Decoder(buildOpcodeTable(), MODEL.features);
function decodeAt(code: Uint8Array, offset: number, bits: number): Instruction {
  return decoder.decode({ byteAt: (index) => code[offset + index] ?? 0 }, bits === 64 ? CodeMode.Bits64 : CodeMode.Bits32, new Instruction());
}

describe.skipIf(!nasmAvailable() && !process.env.CI)('integer SIMD disassembly', () => {
  test('every template instruction disassembles to NASM source that assembles to the same disassembly', () => {
    for (const bits of [64, 32] as const) {
      const compiled = compile([...MMX_TEMPLATES, ...XMM_TEMPLATES, ...STRING_COMPARE, ...CRC32, ...LEGACY_32, ...LEGACY_32_MMX]).filter((template) => (template.bits ?? 64) === bits);
      // The last instruction of each body is the one under test.
      const texts = compiled.map((template) => {
        let offset = template.bodyStart;
        let instruction = decodeAt(template.code, offset, bits);
        while (offset + instruction.length < template.bodyEnd) {
          offset += instruction.length;
          instruction = decodeAt(template.code, offset, bits);
        }
        expect(instruction.entry.handler, template.body).not.toBe('ud');
        return disassemble(instruction);
      });
      const again = assembleAll(texts, bits).map((code) => disassemble(decodeAt(code, 0, bits)));
      expect(again).toEqual(texts);
    }
  });
});
