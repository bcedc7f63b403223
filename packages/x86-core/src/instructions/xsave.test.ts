import { guestAddress } from '@tsvirt/interfaces';
import { fc, test as propertyTest } from '@fast-check/vitest';
import { describe, expect, test } from 'vitest';
import type { CpuEvent } from '../cpu-core.js';
import { cpuidLeaf } from '../cpuid/cpuid.js';
import { QEMU64, TSVIRT_MAX } from '../cpuid/models.js';
import { Decoder } from '../decoder/decoder.js';
import { disassemble } from '../decoder/disassembler.js';
import { CodeMode, Instruction } from '../decoder/instruction.js';
import { buildOpcodeTable } from '../decoder/opcode-table.js';
import { Cr0, Cr4, Reg } from '../state/registers.js';
import { assemble } from '../testing/assemble.js';
import { runAssembly } from '../testing/flat-machine.js';

const DATA = 0x200000;
const LINUX_CR0 = Cr0.PE | Cr0.ET | Cr0.NE | Cr0.MP | Cr0.PG | Cr0.WP;
const LINUX_CR4 = Cr4.PAE | Cr4.OSFXSR | Cr4.OSXMMEXCPT | Cr4.OSXSAVE;
const UD = 6;
const NM = 7;
const GP = 13;

interface RunOptions {
  cr0?: number;
  cr4?: number;
  bits?: 32 | 64;
  data?: Uint8Array;
  xmm?: number[];
  xcr0?: number;
  cpl?: number;
  model?: typeof TSVIRT_MAX;
}

/** Runs code ending in HLT on tsvirt-max with `cr0`/`cr4` (OSXSAVE set by default), RBX = DATA, recording exception vectors. */
function run(source: string, options: RunOptions = {}) {
  const vectors: number[] = [];
  const faulting: string[] = [];
  const events = (event: CpuEvent): void => {
    if (event.kind !== 'exception') return;
    vectors.push(event.vector);
    faulting.push(event.instruction);
  };
  const bits = options.bits ?? 64;
  const machine = runAssembly(bits, source, {
    machine: { model: options.model ?? TSVIRT_MAX, cpuOptions: { events } },
    setup: (flat) => {
      const cpu = flat.cpu;
      const cr4 = options.cr4 ?? LINUX_CR4;
      cpu.setControlRegister(4, bits === 64 ? cr4 : cr4 & ~Cr4.PAE);
      cpu.setControlRegister(0, (options.cr0 ?? LINUX_CR0) & (bits === 64 ? -1 : ~(Cr0.PG | Cr0.WP)));
      cpu.setRegister(Reg.RBX, DATA);
      cpu.sse.xcr0 = options.xcr0 ?? 3;
      if (options.data !== undefined) flat.memory.write(guestAddress(DATA), options.data);
      options.xmm?.forEach((lane, index) => { cpu.sse.xmm[index] = lane; });
      if (options.cpl !== undefined) cpu.cpl = options.cpl;
    },
  });
  const read = (offset: number, length: number): Uint8Array => {
    const bytes = new Uint8Array(length);
    machine.memory.read(guestAddress(DATA + offset), bytes);
    return bytes;
  };
  const word = (offset: number): number => new DataView(read(offset, 4).buffer).getUint32(0, true);
  return { ...machine, vectors, faulting, read, word };
}

function cpuid(model: typeof TSVIRT_MAX, leaf: number, subleaf = 0): number[] {
  const out = new Int32Array(4);
  cpuidLeaf(model, leaf, subleaf, out);
  return [...out].map((value) => value >>> 0);
}

/** A 0x400-byte data page whose area at 0x200 has a valid MXCSR and the given header words. */
function area(header: { stateLow?: number; stateHigh?: number; words?: Array<[number, number]> } = {}, mxcsr = 0x1f80): Uint8Array {
  const data = new Uint8Array(0x800);
  const view = new DataView(data.buffer);
  view.setUint32(0x200 + 24, mxcsr, true);
  view.setUint32(0x200 + 512, header.stateLow ?? 3, true);
  view.setUint32(0x200 + 516, header.stateHigh ?? 0, true);
  for (const [offset, value] of header.words ?? []) view.setUint32(0x200 + 512 + offset, value, true);
  return data;
}

describe('CPUID and CR4.OSXSAVE', () => {
  test('tsvirt-max advertises XSAVE (leaf 1 ECX bit 26) and leaf 0xD for x87 and SSE only; qemu64 does not', () => {
    expect(cpuid(TSVIRT_MAX, 1)[2]! & (1 << 26)).not.toBe(0);
    expect(cpuid(TSVIRT_MAX, 1)[2]! & (1 << 27)).toBe(0);
    expect(cpuid(TSVIRT_MAX, 0xd, 0)).toEqual([3, 576, 576, 0]);
    expect(cpuid(TSVIRT_MAX, 0xd, 1)).toEqual([1, 0, 0, 0]);
    for (let subleaf = 2; subleaf < 64; subleaf++) expect(cpuid(TSVIRT_MAX, 0xd, subleaf)).toEqual([0, 0, 0, 0]);
    expect(cpuid(QEMU64, 1)[2]! & (3 << 26)).toBe(0);
    expect(cpuid(QEMU64, 0xd, 0)).toEqual([0, 0, 0, 0]);
  });

  test('CPUID leaf 1 ECX.OSXSAVE (bit 27) follows CR4.OSXSAVE', () => {
    const source = 'mov eax, 1\ncpuid\nmov r8d, ecx\nmov rax, cr4\nbtr eax, 18\nmov cr4, rax\nmov eax, 1\ncpuid\nhlt';
    const { cpu, vectors } = run(source);
    expect(vectors).toEqual([]);
    expect(Number(cpu.getRegister(Reg.R8)) & (1 << 27)).not.toBe(0);
    expect(Number(cpu.getRegister(Reg.RCX)) & (1 << 27)).toBe(0);
  });

  test('MOV to CR4 sets OSXSAVE where the model has XSAVE and raises #GP(0) where it does not', () => {
    const source = 'mov rax, cr4\nbts eax, 18\nmov cr4, rax\nhlt';
    const good = run(source, { cr4: LINUX_CR4 & ~Cr4.OSXSAVE });
    expect(good.vectors).toEqual([]);
    expect(good.cpu.getControlRegister(4) & BigInt(Cr4.OSXSAVE)).not.toBe(0n);
    const bad = run(source, { cr4: LINUX_CR4 & ~Cr4.OSXSAVE, model: QEMU64 });
    expect(bad.vectors[0]).toBe(GP);
    expect(bad.cpu.getControlRegister(4) & BigInt(Cr4.OSXSAVE)).toBe(0n);
  });
});

describe('XGETBV and XSETBV', () => {
  test('XCR0 is 1 after reset and survives INIT', () => {
    const { cpu } = run('hlt');
    cpu.reset();
    expect(cpu.sse.xcr0).toBe(1);
    cpu.sse.xcr0 = 3;
    cpu.reset('init');
    expect(cpu.sse.xcr0).toBe(3);
  });

  test('XSETBV writes XCR0 (high halves of RAX, RCX, RDX ignored) and XGETBV reads it back', () => {
    const { cpu, vectors } = run('mov rax, 0xffffffff00000003\nmov rdx, 0xffffffff00000000\nmov rcx, 0x100000000\nxsetbv\nxor eax, eax\nxor ecx, ecx\nxgetbv\nhlt', { xcr0: 1 });
    expect(vectors).toEqual([]);
    expect(cpu.sse.xcr0).toBe(3);
    expect(cpu.getRegister(Reg.RAX)).toBe(3n);
    expect(cpu.getRegister(Reg.RDX)).toBe(0n);
  });

  test.each([
    ['bit 0 cleared', 'mov eax, 2\nxor edx, edx\nxor ecx, ecx'],
    ['AVX (bit 2), not supported', 'mov eax, 7\nxor edx, edx\nxor ecx, ecx'],
    ['a bit in EDX', 'mov eax, 3\nmov edx, 1\nxor ecx, ecx'],
    ['an XCR other than 0', 'mov eax, 3\nxor edx, edx\nmov ecx, 1'],
  ])('XSETBV with %s raises #GP(0) and keeps XCR0', (_name, setup) => {
    const { cpu, vectors } = run(`${setup}\nxsetbv\nhlt`, { xcr0: 1 });
    expect(vectors[0]).toBe(GP);
    expect(cpu.sse.xcr0).toBe(1);
  });

  test('XSETBV at CPL 3 raises #GP(0); XGETBV is allowed there', () => {
    // HLT is privileged too: the first fault tells which instruction stopped.
    const denied = run('mov eax, 3\nxor edx, edx\nxor ecx, ecx\nxsetbv\nhlt', { xcr0: 1, cpl: 3 });
    expect([denied.vectors[0], denied.faulting[0]]).toEqual([GP, 'xsetbv']);
    expect(denied.cpu.sse.xcr0).toBe(1);
    const allowed = run('xor ecx, ecx\nxgetbv\nhlt', { cpl: 3 });
    expect([allowed.vectors[0], allowed.faulting[0]]).toEqual([GP, 'hlt']);
    expect(allowed.cpu.getRegister(Reg.RAX)).toBe(3n);
  });

  test('XGETBV of an XCR other than 0 raises #GP(0) (XGETBV1 is not advertised)', () => {
    expect(run('mov ecx, 1\nxgetbv\nhlt').vectors[0]).toBe(GP);
  });

  test('XGETBV and XSETBV raise #UD with CR4.OSXSAVE clear, and on a model without XSAVE', () => {
    expect(run('xor ecx, ecx\nxgetbv\nhlt', { cr4: LINUX_CR4 & ~Cr4.OSXSAVE }).vectors[0]).toBe(UD);
    expect(run('mov eax, 3\nxor edx, edx\nxor ecx, ecx\nxsetbv\nhlt', { cr4: LINUX_CR4 & ~Cr4.OSXSAVE }).vectors[0]).toBe(UD);
    expect(run('xor ecx, ecx\nxgetbv\nhlt', { model: QEMU64 }).vectors[0]).toBe(UD);
  });
});

describe('XSAVE, XSAVEOPT, XRSTOR: faults', () => {
  test.each(['xsave', 'xsaveopt', 'xrstor'])('%s raises #UD with CR4.OSXSAVE clear and on a model without XSAVE', (mnemonic) => {
    expect(run(`mov eax, 3\n${mnemonic} [rbx+0x200]\nhlt`, { cr4: LINUX_CR4 & ~Cr4.OSXSAVE, data: area() }).vectors[0]).toBe(UD);
    expect(run(`mov eax, 3\n${mnemonic} [rbx+0x200]\nhlt`, { model: QEMU64, data: area() }).vectors[0]).toBe(UD);
  });

  test.each(['xsave', 'xsaveopt', 'xrstor'])('%s raises #NM with CR0.TS, but CR0.EM does not matter', (mnemonic) => {
    expect(run(`mov eax, 3\n${mnemonic} [rbx+0x200]\nhlt`, { cr0: LINUX_CR0 | Cr0.TS, data: area() }).vectors[0]).toBe(NM);
    expect(run(`mov eax, 3\n${mnemonic} [rbx+0x200]\nhlt`, { cr0: LINUX_CR0 | Cr0.EM, data: area() }).vectors).toEqual([]);
  });

  test.each(['xsave', 'xsaveopt', 'xrstor'])('%s needs a 64-byte-aligned area: #GP(0) at a 16-byte-aligned one', (mnemonic) => {
    const { vectors, word } = run(`mov eax, 3\n${mnemonic} [rbx+0x210]\nhlt`, { data: area() });
    expect(vectors[0]).toBe(GP);
    expect(word(0x210)).toBe(0);
  });

  test.each([
    ['66', 'xsave'], ['f3', 'xsave'], ['f2', 'xrstor'], ['66', 'xsaveopt'],
  ])('a %s prefix on %s raises #UD', (prefix, mnemonic) => {
    expect(run(`mov eax, 3\ndb 0x${prefix}\n${mnemonic} [rbx+0x200]\nhlt`, { data: area() }).vectors[0]).toBe(UD);
  });

  test.each([
    ['XCOMP_BV (bytes 8–15) nonzero', { words: [[8, 1]] as Array<[number, number]> }],
    ['XCOMP_BV bit 63 (the compacted form) set', { words: [[12, 0x80000000]] as Array<[number, number]> }],
    ['header bytes 16–23 nonzero', { words: [[20, 0x100]] as Array<[number, number]> }],
    ['XSTATE_BV bit 2 (AVX) outside XCR0', { stateLow: 7 }],
    ['XSTATE_BV bit 63 set', { stateHigh: 0x80000000 }],
  ])('XRSTOR with %s raises #GP(0) and changes nothing', (_name, header) => {
    const data = area(header, 0x1f00);
    data.fill(0x5a, 0x200 + 160, 0x200 + 416);
    const { vectors, cpu } = run('mov eax, 3\nxor edx, edx\nxrstor [rbx+0x200]\nhlt', { data, xmm: [1, 2, 3, 4] });
    expect(vectors[0]).toBe(GP);
    expect(cpu.sse.xmm[0]).toBe(1);
    expect(cpu.sse.mxcsr).toBe(0x1f80);
  });

  test('XRSTOR with XSTATE_BV bit 1 set while XCR0 = 1 raises #GP(0)', () => {
    expect(run('mov eax, 3\nxrstor [rbx+0x200]\nhlt', { data: area({ stateLow: 3 }), xcr0: 1 }).vectors[0]).toBe(GP);
    expect(run('mov eax, 3\nxrstor [rbx+0x200]\nhlt', { data: area({ stateLow: 1 }), xcr0: 1 }).vectors).toEqual([]);
  });

  test('XRSTOR ignores header bytes 24–63 (only bytes 8–23 must be zero in the standard form)', () => {
    const { vectors } = run('mov eax, 3\nxor edx, edx\nxrstor [rbx+0x200]\nhlt', { data: area({ words: [[24, 0xffffffff], [60, 0x12345678]] }) });
    expect(vectors).toEqual([]);
  });

  test('XRSTOR of an MXCSR with reserved bits raises #GP(0) and changes nothing', () => {
    const data = area({}, 0x11f80);
    data.fill(0x5a, 0x200 + 160, 0x200 + 416);
    const { vectors, cpu } = run('fninit\nfldpi\nmov eax, 3\nxor edx, edx\nxrstor [rbx+0x200]\nhlt', { data });
    expect(vectors[0]).toBe(GP);
    expect(cpu.sse.xmm[0]).toBe(0);
    expect(cpu.sse.mxcsr).toBe(0x1f80);
    expect(cpu.fpu.isEmpty(0)).toBe(false);
  });
});

describe('XSAVE, XSAVEOPT, XRSTOR: the area', () => {
  test.each(['xsave', 'xsaveopt'])('%s writes the FXSAVE legacy region and sets XSTATE_BV bits 0–1, leaving the rest of the header', (mnemonic) => {
    const xmm = Array.from({ length: 64 }, (_, index) => (index * 0x01030507 + 0x11) >>> 0);
    const data = new Uint8Array(0x1000).fill(0xcc);
    new DataView(data.buffer).setUint32(0x600 + 512, 0x80, true);
    const source = `fninit\nfld1\nfldpi\nfxsave64 [rbx]\nmov eax, 0xffffffff\nmov edx, 0xffffffff\n${mnemonic}64 [rbx+0x600]\nhlt`;
    const { vectors, read, word } = run(source, { xmm, data });
    expect(vectors).toEqual([]);
    expect([...read(0x600, 464)]).toEqual([...read(0, 464)]);
    expect([...read(0x600 + 464, 48)]).toEqual(new Array(48).fill(0xcc));
    expect(word(0x600 + 512)).toBe(0x83);
    expect(word(0x600 + 516)).toBe(0xcccccccc);
    expect([...read(0x600 + 520, 56)]).toEqual(new Array(56).fill(0xcc));
  });

  test('XSAVE stores only what RFBM (EDX:EAX AND XCR0) selects; MXCSR goes with SSE', () => {
    const xmm = [0x11111111, 0x22222222, 0x33333333, 0x44444444];
    const fresh = (): Uint8Array => {
      const data = new Uint8Array(0x800).fill(0xcc);
      new DataView(data.buffer).setUint32(0x200 + 512, 0, true);
      return data;
    };
    const x87Only = run('fninit\nfld1\nmov eax, 1\nxor edx, edx\nxsave [rbx+0x200]\nhlt', { xmm, data: fresh() });
    expect(x87Only.word(0x200) & 0xffff).toBe(0x037f);
    expect(x87Only.word(0x200 + 24)).toBe(0xcccccccc);
    expect(x87Only.word(0x200 + 160)).toBe(0xcccccccc);
    expect(x87Only.word(0x200 + 512)).toBe(1);
    const sseOnly = run('fninit\nmov eax, 2\nxor edx, edx\nxsave [rbx+0x200]\nhlt', { xmm, data: fresh() });
    expect(sseOnly.word(0x200)).toBe(0xcccccccc);
    expect(sseOnly.word(0x200 + 24)).toBe(0x1f80);
    expect(sseOnly.word(0x200 + 28)).toBe(0xffff);
    expect(sseOnly.word(0x200 + 160)).toBe(0x11111111);
    expect(sseOnly.word(0x200 + 512)).toBe(2);
    // XCR0 = 1: SSE is not requested whatever EAX asks for.
    const disabled = run('mov eax, 3\nxor edx, edx\nxsave [rbx+0x200]\nhlt', { xmm, data: fresh(), xcr0: 1 });
    expect(disabled.word(0x200 + 24)).toBe(0xcccccccc);
    expect(disabled.word(0x200 + 160)).toBe(0xcccccccc);
    expect(disabled.word(0x200 + 512)).toBe(1);
    // RFBM = 0: nothing at all, XSTATE_BV unchanged.
    const nothing = run('mov eax, 4\nxor edx, edx\nxsave [rbx+0x200]\nhlt', { xmm, data: fresh() });
    expect([...nothing.read(0x200, 576)]).toEqual([...fresh().subarray(0x200, 0x200 + 576)]);
  });

  test('outside 64-bit mode XSAVE stores XMM0–XMM7 and 32-bit pointers', () => {
    const xmm = Array.from({ length: 64 }, (_, index) => index + 1);
    const { vectors, word } = run('mov eax, 3\nxor edx, edx\nxsave [ebx+0x200]\nhlt', { bits: 32, xmm, data: new Uint8Array(0x800).fill(0xee) });
    expect(vectors).toEqual([]);
    expect(word(0x200 + 160)).toBe(1);
    expect(word(0x200 + 160 + 31 * 4)).toBe(32);
    expect(word(0x200 + 160 + 32 * 4)).toBe(0xeeeeeeee);
    expect(word(0x200 + 512)).toBe(0xeeeeeeef);
  });

  test('XRSTOR with XSTATE_BV clear initialises x87 and XMM but loads MXCSR from the area', () => {
    const data = area({ stateLow: 0 }, 0x1f00);
    data.fill(0x5a, 0x200 + 32, 0x200 + 416);
    const { vectors, cpu } = run('fninit\nfld1\nfldpi\nmov eax, 3\nxor edx, edx\nxrstor [rbx+0x200]\nhlt', { data, xmm: Array.from({ length: 64 }, () => 9) });
    expect(vectors).toEqual([]);
    expect([...cpu.sse.xmm].every((lane) => lane === 0)).toBe(true);
    expect(cpu.sse.mxcsr).toBe(0x1f00);
    const fpu = cpu.fpu;
    expect(fpu.control).toBe(0x037f);
    expect(fpu.statusWord()).toBe(0);
    expect(fpu.tagWord()).toBe(0xffff);
    expect([fpu.instructionOffset, fpu.dataOffset, fpu.opcode]).toEqual([0, 0, 0]);
    expect([...fpu.low, ...fpu.high, ...fpu.signExponent].every((value) => value === 0)).toBe(true);
  });

  test('XRSTOR leaves components outside RFBM alone (and MXCSR too unless RFBM[1])', () => {
    const data = area({ stateLow: 3 }, 0x1f00);
    data.fill(0x5a, 0x200 + 160, 0x200 + 416);
    new DataView(data.buffer).setUint16(0x200, 0x027f, true);
    const x87Only = run('fninit\nfldpi\nmov eax, 1\nxor edx, edx\nxrstor [rbx+0x200]\nhlt', { data, xmm: [7, 7, 7, 7] });
    expect(x87Only.vectors).toEqual([]);
    expect(x87Only.cpu.fpu.control).toBe(0x027f);
    expect(x87Only.cpu.fpu.tagWord()).toBe(0xffff);
    expect(x87Only.cpu.sse.xmm[0]).toBe(7);
    expect(x87Only.cpu.sse.mxcsr).toBe(0x1f80);
    const sseOnly = run('fninit\nfldpi\nmov eax, 2\nxor edx, edx\nxrstor [rbx+0x200]\nhlt', { data, xmm: [7, 7, 7, 7] });
    expect(sseOnly.vectors).toEqual([]);
    expect(sseOnly.cpu.fpu.control).toBe(0x037f);
    expect(sseOnly.cpu.fpu.isEmpty(0)).toBe(false);
    expect(sseOnly.cpu.sse.xmm[0]).toBe(0x5a5a5a5a);
    expect(sseOnly.cpu.sse.mxcsr).toBe(0x1f00);
  });

  test('XRSTOR of an x87 image with an unmasked exception sets ES and B (raised by the next waiting instruction)', () => {
    const data = area({ stateLow: 1 });
    new DataView(data.buffer).setUint16(0x200, 0x037e, true);
    new DataView(data.buffer).setUint16(0x200 + 2, 0x0001, true);
    const { cpu, vectors } = run('mov eax, 1\nxor edx, edx\nxrstor [rbx+0x200]\nhlt', { data });
    expect(vectors).toEqual([]);
    expect(cpu.fpu.statusWord()).toBe(0x8081);
  });

  propertyTest.prop([
    fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 64, maxLength: 64 }),
    fc.integer({ min: 0, max: 0xffff }),
    fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 24, maxLength: 24 }),
    fc.record({ control: fc.integer({ min: 0, max: 0x1fff }), status: fc.integer({ min: 0, max: 0x7fff }), empty: fc.integer({ min: 0, max: 255 }), opcode: fc.integer({ min: 0, max: 0x7ff }) }),
    fc.constantFrom('xsave64', 'xsaveopt64', 'xsave'),
  ], { numRuns: 60 })('XSAVE then XRSTOR restores the x87 and SSE state exactly', (xmm, mxcsr, x87, environment, save) => {
    const restore = save === 'xsave' ? 'xrstor' : 'xrstor64';
    const wide = save !== 'xsave';
    const scramble = 'fninit\nfld1\nfldpi\nmov dword [rbx], 0x1f80\nldmxcsr [rbx]\n' +
      Array.from({ length: 16 }, (_, index) => `pcmpeqd xmm${index}, xmm${index}`).join('\n');
    const source = `mov eax, 3\nxor edx, edx\n${save} [rbx+0x200]\n${scramble}\nmov eax, 3\n${restore} [rbx+0x200]\nhlt`;
    const control = (environment.control | 0x40) & 0x1f7f;
    const instructionOffset = wide ? x87[16]! * 0x10000 + (x87[17]! & 0xffff) : x87[16]!;
    const machine = runAssembly(64, source, {
      machine: { model: TSVIRT_MAX },
      setup: (flat) => {
        const cpu = flat.cpu;
        cpu.setControlRegister(4, LINUX_CR4);
        cpu.setControlRegister(0, LINUX_CR0);
        cpu.setRegister(Reg.RBX, DATA);
        cpu.sse.xcr0 = 3;
        xmm.forEach((lane, index) => { cpu.sse.xmm[index] = lane; });
        cpu.sse.mxcsr = mxcsr;
        const fpu = cpu.fpu;
        for (let register = 0; register < 8; register++) {
          fpu.low[register] = x87[register * 2]!;
          fpu.high[register] = x87[register * 2 + 1]!;
          fpu.signExponent[register] = x87[register * 2]! & 0xffff;
          fpu.empty[register] = (environment.empty >> register) & 1;
        }
        fpu.control = control;
        // Only masked exception flags, so that nothing is pending.
        fpu.setStatusWord(environment.status & ~0x80 & ~(~control & 0x3f));
        fpu.opcode = environment.opcode;
        fpu.instructionOffset = instructionOffset;
        fpu.dataOffset = x87[18]!;
        fpu.instructionSelector = wide ? 0 : x87[19]! & 0xffff;
        fpu.dataSelector = wide ? 0 : x87[20]! & 0xffff;
      },
    });
    expect(machine.result.reason).toBe('halted');
    const cpu = machine.cpu;
    expect([...cpu.sse.xmm]).toEqual(xmm);
    expect(cpu.sse.mxcsr).toBe(mxcsr);
    const fpu = cpu.fpu;
    for (let register = 0; register < 8; register++) {
      expect([fpu.low[register], fpu.high[register], fpu.signExponent[register], fpu.empty[register]])
        .toEqual([x87[register * 2], x87[register * 2 + 1], x87[register * 2]! & 0xffff, (environment.empty >> register) & 1]);
    }
    expect(fpu.control).toBe(control);
    expect(fpu.statusWord()).toBe(environment.status & ~0x80 & ~(~control & 0x3f));
    expect([fpu.opcode, fpu.instructionOffset, fpu.dataOffset]).toEqual([environment.opcode, instructionOffset, x87[18]]);
    if (!wide) expect([fpu.instructionSelector, fpu.dataSelector]).toEqual([x87[19]! & 0xffff, x87[20]! & 0xffff]);
  });
});

describe('XSAVE state and decoding', () => {
  test('save() carries XCR0; restore() refuses an XCR0 without bit 0 or with unsupported bits', () => {
    const { cpu } = run('hlt', { xcr0: 3 });
    const saved = JSON.parse(JSON.stringify(cpu.save())) as { sse: { xcr0?: number } };
    expect(saved.sse.xcr0).toBe(3);
    const other = run('hlt', { xcr0: 1 }).cpu;
    other.restore(saved);
    expect(other.sse.xcr0).toBe(3);
    for (const bad of [2, 7]) {
      expect(() => other.restore({ ...saved, sse: { ...saved.sse, xcr0: bad } })).toThrow(/xcr0/);
    }
    expect(other.sse.xcr0).toBe(3);
    const older = { ...saved, sse: { ...saved.sse } };
    delete older.sse.xcr0;
    other.restore(older);
    expect(other.sse.xcr0).toBe(1);
  });

  test('the disassembly of XSAVE, XRSTOR, XSAVEOPT (and their 64 forms), XGETBV and XSETBV assembles back to the same bytes', () => {
    const decoder = new Decoder(buildOpcodeTable(), TSVIRT_MAX.features);
    for (const text of ['xsave [rax]', 'xsave64 [rax+0x40]', 'xrstor [rbx]', 'xrstor64 [r9]', 'xsaveopt [rsp]', 'xsaveopt64 [rax]', 'xgetbv', 'xsetbv']) {
      const bytes = assemble(`bits 64\n${text}`);
      const instruction = decoder.decode({ byteAt: (index) => bytes[index] ?? 0 }, CodeMode.Bits64, new Instruction());
      expect(instruction.length).toBe(bytes.length);
      expect(disassemble(instruction)).toBe(text);
    }
  });
});
