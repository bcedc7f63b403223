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
const LINUX_CR4 = Cr4.PAE | Cr4.OSFXSR | Cr4.OSXMMEXCPT;

/** Runs 64-bit code ending in HLT with `cr0`/`cr4`, the data page at DATA (RBX points to it), recording exception vectors. */
function run(source: string, options: { cr0?: number; cr4?: number; bits?: 32 | 64; data?: Uint8Array; xmm?: number[] } = {}) {
  const vectors: number[] = [];
  const events = (event: CpuEvent): void => {
    if (event.kind === 'exception') vectors.push(event.vector);
  };
  const bits = options.bits ?? 64;
  const machine = runAssembly(bits, source, {
    machine: { cpuOptions: { events } },
    setup: (flat) => {
      const cpu = flat.cpu;
      if (bits === 64) cpu.setControlRegister(4, options.cr4 ?? LINUX_CR4);
      else cpu.setControlRegister(4, (options.cr4 ?? LINUX_CR4) & ~Cr4.PAE);
      cpu.setControlRegister(0, (options.cr0 ?? LINUX_CR0) & (bits === 64 ? -1 : ~(Cr0.PG | Cr0.WP)));
      cpu.setRegister(Reg.RBX, DATA);
      if (options.data !== undefined) flat.memory.write(guestAddress(DATA), options.data);
      options.xmm?.forEach((lane, index) => { cpu.sse.xmm[index] = lane; });
    },
  });
  const read = (offset: number, length: number): Uint8Array => {
    const bytes = new Uint8Array(length);
    machine.memory.read(guestAddress(DATA + offset), bytes);
    return bytes;
  };
  const word = (offset: number): number => new DataView(read(offset, 4).buffer).getUint32(0, true);
  return { ...machine, vectors, read, word };
}

describe('SSE state', () => {
  test('reset: XMM registers zero, MXCSR 0x1F80', () => {
    const { cpu } = run('movaps xmm3, [rbx]\nhlt', { data: new Uint8Array(16).fill(0xab) });
    expect(cpu.sse.xmm[12]).toBe(0xabababab);
    cpu.sse.mxcsr = 0;
    cpu.reset();
    expect([...cpu.sse.xmm].every((lane) => lane === 0)).toBe(true);
    expect(cpu.sse.mxcsr).toBe(0x1f80);
  });

  test('save and restore carry XMM and MXCSR; a bad MXCSR or XMM image is refused', () => {
    const { cpu } = run('ldmxcsr [rbx]\nmovups xmm15, [rbx+4]\nhlt', { data: Uint8Array.of(0xc0, 0x7f, 0, 0, ...Array.from({ length: 16 }, (_, index) => index + 1)) });
    const saved = JSON.parse(JSON.stringify(cpu.save())) as ReturnType<typeof cpu.save>;
    const other = run('hlt').cpu;
    other.restore(saved);
    expect(other.sse.mxcsr).toBe(0x7fc0);
    expect(other.sse.xmm[60]).toBe(0x04030201);
    expect(other.sse.xmm[63]).toBe(0x100f0e0d);
    expect(() => other.restore({ ...saved, sse: { ...saved.sse, mxcsr: 0x10000 } })).toThrow(/sse\.mxcsr/);
    expect(() => other.restore({ ...saved, sse: { ...saved.sse, xmm: [1, 2] } })).toThrow(/sse\.xmm/);
  });
});

describe('SSE exceptions (the SDM exception tables of the legacy SSE instructions)', () => {
  const code = 'addps xmm0, xmm1\nhlt';

  test('#UD without CR4.OSFXSR or with CR0.EM; #NM with CR0.TS', () => {
    expect(run(code, { cr4: Cr4.PAE }).vectors[0]).toBe(6);
    expect(run(code, { cr0: LINUX_CR0 | Cr0.EM }).vectors[0]).toBe(6);
    expect(run(code, { cr0: LINUX_CR0 | Cr0.TS }).vectors[0]).toBe(7);
    // EM is checked before TS.
    expect(run(code, { cr0: LINUX_CR0 | Cr0.TS | Cr0.EM }).vectors[0]).toBe(6);
    expect(run(code).vectors).toEqual([]);
    expect(run('ldmxcsr [rbx]\nhlt', { cr4: Cr4.PAE }).vectors[0]).toBe(6);
  });

  test('#GP(0) for a misaligned MOVAPS/ADDPS memory operand, not for MOVUPS, scalar or 64-bit loads', () => {
    expect(run('movaps xmm0, [rbx+8]\nhlt').vectors[0]).toBe(13);
    expect(run('addps xmm0, [rbx+4]\nhlt').vectors[0]).toBe(13);
    expect(run('movaps [rbx+1], xmm0\nhlt').vectors[0]).toBe(13);
    expect(run('movups xmm0, [rbx+8]\nmovups [rbx+3], xmm0\naddss xmm0, [rbx+1]\nmovlps xmm0, [rbx+4]\ncvtps2pd xmm1, [rbx+4]\nlddqu xmm2, [rbx+7]\nhlt').vectors).toEqual([]);
  });

  test('an unmasked exception: #XM with CR4.OSXMMEXCPT, else #UD; the flag is set, the destination unchanged', () => {
    // 1.0 / 0.0 with ZE unmasked (MXCSR 0x1d80).
    const data = Uint8Array.of(0x80, 0x1d, 0, 0);
    const xmm = [0x3f800000, 0x3f800000, 0x3f800000, 0x3f800000];
    const trapped = run('ldmxcsr [rbx]\ndivps xmm0, xmm1\nhlt', { data, xmm });
    expect(trapped.vectors[0]).toBe(19);
    expect(trapped.cpu.sse.mxcsr).toBe(0x1d80 | 0x04);
    expect([...trapped.cpu.sse.xmm.subarray(0, 4)]).toEqual(xmm);
    const legacy = run('ldmxcsr [rbx]\ndivps xmm0, xmm1\nhlt', { data, xmm, cr4: Cr4.PAE | Cr4.OSFXSR });
    expect(legacy.vectors[0]).toBe(6);
    const masked = run('divps xmm0, xmm1\nhlt', { xmm });
    expect(masked.vectors).toEqual([]);
    expect(masked.cpu.sse.mxcsr).toBe(0x1f84);
    expect(masked.cpu.sse.xmm[0]).toBe(0x7f800000);
  });

  test('COMISS sets ZF/PF/CF from the comparison and clears OF/SF/AF', () => {
    // 1.0 vs 2.0: less (CF); vs NaN: unordered (ZF PF CF) with IE for COMISS only.
    const less = run('pushfq\nor qword [rsp], 0x890\npopfq\ncomiss xmm0, xmm1\npushfq\npop rax\nhlt', { xmm: [0x3f800000, 0, 0, 0, 0x40000000] });
    expect(less.cpu.getRegister(Reg.RAX) & 0x8d5n).toBe(0x1n);
    const unordered = run('ucomiss xmm0, xmm1\npushfq\npop rax\nhlt', { xmm: [0x3f800000, 0, 0, 0, 0x7fc00000] });
    expect(unordered.cpu.getRegister(Reg.RAX) & 0x8d5n).toBe(0x45n);
    expect(unordered.cpu.sse.mxcsr).toBe(0x1f80);
    expect(run('comiss xmm0, xmm1\nhlt', { xmm: [0x3f800000, 0, 0, 0, 0x7fc00000] }).cpu.sse.mxcsr).toBe(0x1f81);
  });
});

describe('LDMXCSR, STMXCSR, FXSAVE, FXRSTOR', () => {
  test('LDMXCSR with a reserved bit raises #GP(0) and keeps MXCSR; STMXCSR stores it', () => {
    const bad = run('ldmxcsr [rbx]\nhlt', { data: Uint8Array.of(0x80, 0x1f, 0x01, 0) });
    expect(bad.vectors[0]).toBe(13);
    expect(bad.cpu.sse.mxcsr).toBe(0x1f80);
    const good = run('ldmxcsr [rbx]\nstmxcsr [rbx+4]\nhlt', { data: Uint8Array.of(0xff, 0xff, 0, 0) });
    expect(good.word(4)).toBe(0xffff);
  });

  test('FXSAVE: MXCSR at 24, MXCSR_MASK 0xFFFF at 28, XMM0–XMM15 from 160 in 64-bit mode', () => {
    const xmm = Array.from({ length: 64 }, (_, index) => (index * 0x01010101 + 0x10203) >>> 0);
    const { word, vectors } = run('fxsave64 [rbx+0x200]\nhlt', { xmm });
    expect(vectors).toEqual([]);
    expect(word(0x200 + 24)).toBe(0x1f80);
    expect(word(0x200 + 28)).toBe(0xffff);
    for (let lane = 0; lane < 64; lane++) expect(word(0x200 + 160 + lane * 4)).toBe(xmm[lane]);
  });

  test('FXSAVE outside 64-bit mode stores XMM0–XMM7 only', () => {
    const xmm = Array.from({ length: 64 }, (_, index) => index + 1);
    const { word, vectors } = run('fxsave [ebx+0x200]\nhlt', { xmm, bits: 32, data: new Uint8Array(0x400).fill(0xee) });
    expect(vectors).toEqual([]);
    expect(word(0x200 + 160)).toBe(1);
    expect(word(0x200 + 160 + 31 * 4)).toBe(32);
    expect(word(0x200 + 160 + 32 * 4)).toBe(0xeeeeeeee);
  });

  test('with CR4.OSFXSR clear, FXSAVE and FXRSTOR leave MXCSR and the XMM registers alone', () => {
    const { word, cpu } = run('fxsave64 [rbx+0x200]\nfxrstor64 [rbx+0x400]\nhlt', { cr4: Cr4.PAE, xmm: [7, 7, 7, 7], data: new Uint8Array(0x800).fill(0xcc) });
    expect(word(0x200 + 24)).toBe(0xcccccccc);
    expect(word(0x200 + 160)).toBe(0xcccccccc);
    expect(cpu.sse.mxcsr).toBe(0x1f80);
    expect(cpu.sse.xmm[0]).toBe(7);
  });

  test('FXRSTOR of an MXCSR with reserved bits raises #GP(0) and changes nothing', () => {
    const data = new Uint8Array(0x400);
    new DataView(data.buffer).setUint32(0x200 + 24, 0x11f80, true);
    data.fill(0x55, 0x200 + 160, 0x200 + 416);
    const { vectors, cpu } = run('fxrstor64 [rbx+0x200]\nhlt', { data });
    expect(vectors[0]).toBe(13);
    expect(cpu.sse.xmm[0]).toBe(0);
    expect(cpu.sse.mxcsr).toBe(0x1f80);
  });

  propertyTest.prop([fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 64, maxLength: 64 }), fc.integer({ min: 0, max: 0xffff }), fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 16, maxLength: 16 })], { numRuns: 40 })(
    'FXSAVE then FXRSTOR restores XMM, MXCSR and the x87 registers exactly',
    (xmm, mxcsr, x87) => {
      const source = 'fxsave64 [rbx+0x200]\nfninit\nfld1\nfldpi\nmov dword [rbx], 0x1f80\nldmxcsr [rbx]\n' +
        Array.from({ length: 16 }, (_, index) => `xorps xmm${index}, xmm${index}`).join('\n') + '\nfxrstor64 [rbx+0x200]\nhlt';
      const machine = runAssembly(64, source, {
        setup: (flat) => {
          const cpu = flat.cpu;
          cpu.setControlRegister(4, LINUX_CR4);
          cpu.setControlRegister(0, LINUX_CR0);
          cpu.setRegister(Reg.RBX, DATA);
          xmm.forEach((lane, index) => { cpu.sse.xmm[index] = lane; });
          cpu.sse.mxcsr = mxcsr;
          for (let register = 0; register < 8; register++) {
            cpu.fpu.low[register] = x87[register * 2]!;
            cpu.fpu.high[register] = x87[register * 2 + 1]!;
            cpu.fpu.signExponent[register] = x87[register * 2]! & 0xffff;
          }
        },
      });
      expect(machine.result.reason).toBe('halted');
      const cpu = machine.cpu;
      expect([...cpu.sse.xmm]).toEqual(xmm);
      expect(cpu.sse.mxcsr).toBe(mxcsr);
      for (let register = 0; register < 8; register++) {
        expect(cpu.fpu.low[register]).toBe(x87[register * 2]);
        expect(cpu.fpu.high[register]).toBe(x87[register * 2 + 1]);
        expect(cpu.fpu.signExponent[register]).toBe(x87[register * 2]! & 0xffff);
      }
    },
  );
});

describe('MMX state through the SSE conversions', () => {
  test('CVTPS2PI writes MMX register i as the significand of R(i) with exponent 0xFFFF, TOP 0, all tags valid', () => {
    const { cpu, vectors } = run('fninit\nfld1\nfld1\ncvtps2pi mm5, xmm0\nhlt', { xmm: [0x40400000, 0xc0e00000, 0, 0] });
    expect(vectors).toEqual([]);
    expect(cpu.fpu.low[5]).toBe(3);
    expect(cpu.fpu.high[5]).toBe(0xfffffff9);
    expect(cpu.fpu.signExponent[5]).toBe(0xffff);
    expect(cpu.fpu.top).toBe(0);
    expect(cpu.fpu.abridgedTag()).toBe(0xff);
  });

  test('CVTPI2PS from an MMX register raises #MF for a pending x87 exception; from memory it does not', () => {
    const pending = 'fninit\nfldcw [rbx]\nfld1\nfldz\nfdivp st1, st0\n';
    const data = Uint8Array.of(0x7b, 0x03);
    expect(run(`${pending}cvtpi2ps xmm0, mm1\nhlt`, { data }).vectors[0]).toBe(16);
    expect(run(`${pending}cvtpi2ps xmm0, [rbx+8]\nhlt`, { data }).vectors).toEqual([]);
  });
});

describe('SSE decoding', () => {
  const decoder = new Decoder(buildOpcodeTable(), new Set([...TSVIRT_MAX.features, 'sse', 'sse2', 'sse3', 'sse4_1']));
  const decode = (source: string, mode: CodeMode = CodeMode.Bits64): string => {
    const bytes = assemble(`bits ${mode === CodeMode.Bits64 ? 64 : 32}\n${source}\n`);
    return disassemble(decoder.decode({ byteAt: (index) => bytes[index] ?? 0 }, mode, new Instruction()));
  };

  test('mandatory prefixes select the form; operands print as xmmN/mmN with the memory size', () => {
    expect(decode('addps xmm1, xmm10')).toBe('addps xmm1, xmm10');
    expect(decode('addsd xmm9, [rax+8]')).toBe('addsd xmm9, [rax+0x8]');
    expect(decode('movaps [rbx], xmm15')).toBe('movaps [rbx], xmm15');
    expect(decode('cvtsi2ss xmm0, rax')).toBe('cvtsi2ss xmm0, rax');
    expect(decode('cvtsi2sd xmm0, dword [rax]')).toBe('cvtsi2sd xmm0, dword [rax]');
    expect(decode('movntps [rax], xmm1')).toBe('movntps oword [rax], xmm1');
    expect(decode('cvtps2pi mm3, xmm4')).toBe('cvtps2pi mm3, xmm4');
    expect(decode('movhlps xmm1, xmm2')).toBe('movhlps xmm1, xmm2');
    expect(decode('movlps xmm1, qword [rcx]')).toBe('movlps xmm1, qword [rcx]');
    expect(decode('blendvps xmm1, xmm2, xmm0')).toBe('blendvps xmm1, xmm2, xmm0');
    expect(decode('roundsd xmm1, [rdx], 0x9')).toBe('roundsd xmm1, [rdx], 0x9');
    expect(decode('cmpps xmm1, xmm2, 0x5', CodeMode.Bits32)).toBe('cmpps xmm1, xmm2, 0x5');
  });

  test('a prefix without a form of its own is #UD; MOVMSKPS with a memory operand is #UD', () => {
    const bytes = (hex: string): string => {
      const data = Uint8Array.from(hex.split(' ').map((byte) => Number.parseInt(byte, 16)));
      return disassemble(decoder.decode({ byteAt: (index) => data[index] ?? 0 }, CodeMode.Bits64, new Instruction()));
    };
    // F3 0F 28 (no MOVAPS form with F3), 66 0F 52 (RSQRTPS has no 66 form), 0F 50 /m.
    expect(bytes('f3 0f 28 c1')).toBe('(bad)');
    expect(bytes('66 0f 52 c1')).toBe('(bad)');
    expect(bytes('0f 50 00')).toBe('(bad)');
    // F2 beats 66: 66 F2 0F 58 is ADDSD.
    expect(bytes('66 f2 0f 58 c1')).toBe('addsd xmm0, xmm1');
    // With F2 chosen, 66 is an operand-size prefix that CVTSI2SD's Ey source ignores: still 32 bits.
    expect(bytes('66 f2 0f 2a c0')).toBe('cvtsi2sd xmm0, eax');
  });
});

describe('CPUID', () => {
  test('both models advertise FPU, FXSR, SSE and SSE2; tsvirt-max SSE3', () => {
    const out = new Int32Array(4);
    for (const model of [QEMU64, TSVIRT_MAX]) {
      cpuidLeaf(model, 1, 0, out);
      expect(out[3]! & ((1 << 0) | (1 << 24) | (1 << 25) | (1 << 26))).toBe((1 << 0) | (1 << 24) | (1 << 25) | (1 << 26));
      expect(model.features.has('sse2')).toBe(true);
    }
    cpuidLeaf(TSVIRT_MAX, 1, 0, out);
    expect(out[2]! & 1).toBe(1);
    expect(TSVIRT_MAX.features.has('sse3')).toBe(true);
  });
});
