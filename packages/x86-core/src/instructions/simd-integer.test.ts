import { describe, expect, test } from 'vitest';
import type { CpuEvent } from '../cpu-core.js';
import { type CpuModel, QEMU64, TSVIRT_MAX } from '../cpuid/models.js';
import type { Feature } from '../decoder/opcode-entry.js';
import { Cr0, Cr4, Reg, Vector } from '../state/registers.js';
import { nasmAvailable } from '../testing/assemble.js';
import { runAssembly } from '../testing/flat-machine.js';

/*
 * What the host oracle cannot show: decoding gated on the model's CPUID
 * features, the x87 side of MMX (TOP, tags, the aliased registers, EMMS),
 * the CR0/CR4 checks and #MF, in 32-bit flat code ending in HLT.
 */

const SIMD: Feature[] = ['fxsr', 'sse', 'sse2', 'mmx', 'ssse3', 'sse4_1', 'sse4_2'];
const ALL: CpuModel = { ...TSVIRT_MAX, features: new Set([...TSVIRT_MAX.features, ...SIMD]) };

function without(feature: Feature): CpuModel {
  return { ...ALL, features: new Set([...ALL.features].filter((name) => name !== feature)) };
}

function run(source: string, options: { model?: CpuModel; cr0?: number; cr4?: number } = {}) {
  const vectors: number[] = [];
  const events = (event: CpuEvent): void => {
    if (event.kind === 'exception') vectors.push(event.vector);
  };
  const machine = runAssembly(32, source, {
    machine: { model: options.model ?? ALL, cpuOptions: { events } },
    setup: (flat) => {
      flat.cpu.setControlRegister(0, options.cr0 ?? Cr0.PE | Cr0.ET | Cr0.NE | Cr0.MP);
      flat.cpu.setControlRegister(4, options.cr4 ?? Cr4.OSFXSR | Cr4.OSXMMEXCPT);
    },
  });
  return { ...machine, vectors, reg: (register: number) => machine.cpu.getRegister(register) };
}

describe.skipIf(!nasmAvailable() && !process.env.CI)('integer SIMD: features, MMX state and checks', () => {
  test.each([
    ['mmx', 'paddb mm0, mm1'],
    ['sse', 'pshufw mm0, mm1, 0x1b'],
    ['sse2', 'paddb xmm0, xmm1'],
    ['sse2', 'paddq mm0, mm1'],
    ['ssse3', 'pshufb xmm0, xmm1'],
    ['ssse3', 'palignr mm0, mm1, 3'],
    ['sse4_1', 'pminsd xmm0, xmm1'],
    ['sse4_1', 'pextrb eax, xmm1, 3'],
    ['sse4_2', 'pcmpgtq xmm0, xmm1'],
    ['sse4_2', 'pcmpistri xmm0, xmm1, 0'],
    ['sse4_2', 'crc32 eax, ecx'],
  ] as Array<[Feature, string]>)('without %s, %s is #UD', (feature, instruction) => {
    expect(run(`${instruction}\nhlt`, { model: without(feature) }).vectors[0]).toBe(Vector.UD);
    expect(run(`${instruction}\nhlt`).vectors).toEqual([]);
  });

  test('the models advertise what decodes: MMX in both, SSSE3/SSE4.1/SSE4.2 in tsvirt-max (CPUID.1)', () => {
    expect(QEMU64.leaf1Edx & (1 << 23)).not.toBe(0);
    expect(QEMU64.features.has('mmx')).toBe(true);
    for (const [bit, feature] of [[9, 'ssse3'], [19, 'sse4_1'], [20, 'sse4_2']] as const) {
      expect(TSVIRT_MAX.leaf1Ecx & (1 << bit)).not.toBe(0);
      expect(TSVIRT_MAX.features.has(feature)).toBe(true);
      expect(QEMU64.features.has(feature)).toBe(false);
    }
    const { reg } = run('mov eax, 1\ncpuid\nhlt', { model: TSVIRT_MAX });
    expect((reg(Reg.RDX) >> 23n) & 1n).toBe(1n);
    expect((reg(Reg.RCX) >> 9n) & 1n).toBe(1n);
  });

  test('an MMX instruction sets TOP to 0 and tags every register valid; the destination is R(i) with exponent 0xFFFF', () => {
    const { cpu } = run('fninit\nfld1\nfld1\nmovq mm3, [data]\nhlt\ndata: dq 0x0123456789abcdef');
    expect(cpu.fpu.top).toBe(0);
    expect([...cpu.fpu.empty]).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(cpu.fpu.high[3]).toBe(0x01234567);
    expect(cpu.fpu.low[3]).toBe(0x89abcdef);
    expect(cpu.fpu.signExponent[3]).toBe(0xffff);
  });

  test('EMMS empties every register; an x87 push after MMX code without EMMS overflows the stack', () => {
    const emptied = run('fninit\nmovq mm0, [data]\nemms\nfld1\nfnstsw ax\nhlt\ndata: dq 1');
    expect([...emptied.cpu.fpu.empty]).toEqual([1, 1, 1, 1, 1, 1, 1, 0]);
    expect(emptied.reg(Reg.RAX) & 0x41n).toBe(0n);
    const overflowed = run('fninit\nmovq mm0, [data]\nfld1\nfnstsw ax\nhlt\ndata: dq 1');
    // Invalid operation with stack fault (IE | SF).
    expect(overflowed.reg(Reg.RAX) & 0x41n).toBe(0x41n);
  });

  test('MMX registers are the x87 significands: FLD of an 80-bit value shows up in the MMX register of its physical slot', () => {
    const { cpu } = run('fninit\nfld tword [data]\nfstp st0\nfld tword [data]\nmovq [out], mm7\nmov eax, [out]\nmov edx, [out+4]\nhlt\ndata: dq 0xfedcba9876543210\ndw 0x4000\nout: dq 0');
    // TOP was 7 when the value was loaded, so it sits in R7.
    expect(cpu.getRegister(Reg.RAX)).toBe(0x76543210n);
    expect(cpu.getRegister(Reg.RDX)).toBe(0xfedcba98n);
  });

  test('CR0.EM makes MMX and SSE instructions #UD; CR0.TS makes them #NM', () => {
    expect(run('paddb mm0, mm1\nhlt', { cr0: Cr0.PE | Cr0.ET | Cr0.EM }).vectors[0]).toBe(Vector.UD);
    expect(run('paddb xmm0, xmm1\nhlt', { cr0: Cr0.PE | Cr0.ET | Cr0.EM }).vectors[0]).toBe(Vector.UD);
    expect(run('emms\nhlt', { cr0: Cr0.PE | Cr0.ET | Cr0.TS }).vectors[0]).toBe(Vector.NM);
    expect(run('pshufb xmm0, xmm1\nhlt', { cr0: Cr0.PE | Cr0.ET | Cr0.TS }).vectors[0]).toBe(Vector.NM);
  });

  test('without CR4.OSFXSR the XMM forms are #UD and the MMX forms still run', () => {
    expect(run('paddb xmm0, xmm1\nhlt', { cr4: 0 }).vectors[0]).toBe(Vector.UD);
    expect(run('crc32 eax, ecx\nhlt', { cr4: 0 }).vectors).toEqual([]);
    expect(run('paddb mm0, mm1\nemms\nhlt', { cr4: 0 }).vectors).toEqual([]);
  });

  test('a pending unmasked x87 exception raises #MF at the next MMX instruction (CR0.NE)', () => {
    // Unmask ZE, divide by zero: ES is set and the MMX instruction faults.
    const { vectors } = run('fninit\nfldcw [control]\nfldz\nfld1\nfdiv st0, st1\npaddb mm0, mm1\nhlt\ncontrol: dw 0x037b');
    expect(vectors[0]).toBe(Vector.MF);
  });

  test('a misaligned 16-byte operand is #GP(0); MOVDQU and the MMX forms are not checked', () => {
    expect(run('movdqa xmm0, [data+1]\nhlt\nalign 16\ndata: times 32 db 0').vectors[0]).toBe(Vector.GP);
    expect(run('paddw xmm0, [data+8]\nhlt\nalign 16\ndata: times 32 db 0').vectors[0]).toBe(Vector.GP);
    expect(run('movdqu xmm0, [data+1]\npaddw mm0, [data+3]\npcmpistri xmm0, [data+5], 0\nhlt\nalign 16\ndata: times 32 db 0').vectors).toEqual([]);
  });

  test('register-only forms with a memory operand are #UD (PSRLW imm, PMOVMSKB, PEXTRW 0F C5, MASKMOVQ)', () => {
    // 0F 71 /2 with mod = 0, 66 0F D7 with mod = 0, 0F C5 with mod = 0, 0F F7 with mod = 0.
    for (const bytes of ['0x0f, 0x71, 0x10, 3', '0x66, 0x0f, 0xd7, 0x00', '0x0f, 0xc5, 0x00, 1', '0x0f, 0xf7, 0x00']) {
      expect(run(`db ${bytes}\nhlt`).vectors[0], bytes).toBe(Vector.UD);
    }
  });
});
