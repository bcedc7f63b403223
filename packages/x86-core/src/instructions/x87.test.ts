import { guestAddress } from '@tsvirt/interfaces';
import { describe, expect, test } from 'vitest';
import type { CpuEvent } from '../cpu-core.js';
import { TSVIRT_MAX } from '../cpuid/models.js';
import { Cr0, Flag, Reg } from '../state/registers.js';
import { runAssembly } from '../testing/flat-machine.js';

/** Runs 32-bit flat code ending in HLT (data may follow the HLT), recording the first exception vector. */
function run(source: string, cr0 = Cr0.PE | Cr0.ET | Cr0.NE) {
  const vectors: number[] = [];
  const events = (event: CpuEvent): void => {
    if (event.kind === 'exception') vectors.push(event.vector);
  };
  const machine = runAssembly(32, source, { machine: { cpuOptions: { events } }, setup: (flat) => flat.cpu.setControlRegister(0, cr0) });
  return { ...machine, vectors, reg: (register: number) => machine.cpu.getRegister(register) };
}

describe('x87 control and status (Intel SDM vol. 1, ch. 8)', () => {
  test('FNINIT: control 0x037F, status 0, every tag empty', () => {
    const { cpu, reg, result } = run('fld1\nfninit\nfnstsw ax\nmov ebx, eax\nfnstcw [data]\nmovzx ecx, word [data]\nhlt\ndata: dw 0');
    expect(result.reason).toBe('halted');
    expect(reg(Reg.RBX) & 0xffffn).toBe(0n);
    expect(reg(Reg.RCX)).toBe(0x037fn);
    expect(cpu.fpu.tagWord()).toBe(0xffff);
  });

  test('power-up state: control 0x0040, tag word 0x5555', () => {
    const { cpu } = run('hlt');
    expect(cpu.fpu.control).toBe(0x0040);
    expect(cpu.fpu.tagWord()).toBe(0x5555);
  });

  test('stack overflow: masked IE with SF and C1 = 1, the indefinite pushed', () => {
    const { reg, cpu } = run(`fninit\n${'fld1\n'.repeat(9)}fnstsw ax\nhlt`);
    // TOP went 0 → 7 … 0 and the ninth push to 7; IE, SF, C1.
    expect(reg(Reg.RAX) & 0xffffn).toBe(0x3a41n);
    expect(cpu.fpu.signExponent[7]).toBe(0xffff);
    expect(cpu.fpu.high[7]).toBe(0xc0000000);
  });

  test('stack underflow: IE with SF and C1 = 0, indefinite in the destination', () => {
    const { reg, cpu } = run('fninit\nfld1\nfadd st0, st1\nfnstsw ax\nhlt');
    expect(reg(Reg.RAX) & 0xffffn).toBe(0x3841n);
    expect(cpu.fpu.signExponent[7]).toBe(0xffff);
  });

  test('FNCLEX clears the exception flags, SF, ES and B', () => {
    const { reg } = run('fninit\nfadd st0, st1\nfnclex\nfnstsw ax\nhlt');
    expect(reg(Reg.RAX) & 0xffffn).toBe(0n);
  });

  test('FLDCW: bit 6 reads as one, reserved bits as zero', () => {
    const { reg } = run('fldcw [data]\nfnstcw [data]\nmovzx eax, word [data]\nhlt\ndata: dw 0xffff');
    expect(reg(Reg.RAX)).toBe(0x1f7fn);
  });

  test('FINCSTP/FDECSTP move TOP without changing tags; FFREE empties a register', () => {
    const { reg, cpu } = run('fninit\nfld1\nfldz\nfincstp\nfnstsw ax\nmov ebx, eax\nfdecstp\nffree st1\nhlt');
    expect((reg(Reg.RBX) >> 11n) & 7n).toBe(7n);
    expect(cpu.fpu.top).toBe(6);
    // R6 holds +0 (tag 01); R7 was freed; the rest are empty.
    expect(cpu.fpu.tagWord()).toBe(0xdfff);
  });
});

describe('x87 loads, stores and arithmetic', () => {
  test('FLD/FADD/FSTP m64 and FILD/FISTP', () => {
    const { reg } = run(`fninit
fld qword [a]
fadd qword [b]
fstp qword [out]
fild dword [i]
fimul word [w]
fistp dword [iout]
mov eax, [out]
mov edx, [out + 4]
mov ecx, [iout]
hlt
align 8
a: dq 1.5
b: dq 2.25
out: dq 0
i: dd -7
w: dw 6
iout: dd 0`);
    // 3.75 = 0x400E000000000000.
    expect(reg(Reg.RDX)).toBe(0x400e0000n);
    expect(reg(Reg.RAX)).toBe(0n);
    expect(reg(Reg.RCX)).toBe(0xffffffd6n);
  });

  test('FLDPI and FLDL2T follow the rounding control (SDM vol. 1, 8.3.8)', () => {
    const { cpu } = run('fninit\nfldpi\nfldl2t\nfldcw [down]\nfldpi\nfldcw [up]\nfldl2t\nhlt\ndown: dw 0x077f\nup: dw 0x0b7f');
    const at = (index: number) => cpu.fpu.low[cpu.fpu.physical(index)];
    expect(at(3)).toBe(0x2168c235);
    expect(at(2)).toBe(0xcd1b8afe);
    expect(at(1)).toBe(0x2168c234);
    expect(at(0)).toBe(0xcd1b8aff);
  });

  test('FDIV by zero sets ZE and gives infinity; FCHS, FABS, FSQRT', () => {
    const { cpu, reg } = run('fninit\nfld1\nfldz\nfdivp st1, st0\nfnstsw ax\nfld qword [x]\nfchs\nfabs\nfsqrt\nhlt\nalign 8\nx: dq 16.0');
    expect(reg(Reg.RAX) & 0x3fn).toBe(0x04n);
    expect(cpu.fpu.signExponent[cpu.fpu.physical(1)]).toBe(0x7fff);
    expect(cpu.fpu.signExponent[cpu.fpu.physical(0)]).toBe(0x4001);
    expect(cpu.fpu.high[cpu.fpu.physical(0)]).toBe(0x80000000);
  });

  test('FCOMI sets ZF/PF/CF; FUCOMIP pops; FCOMPP sets C0 for less', () => {
    const less = run('fninit\nfld1\nfldz\nfcomi st0, st1\nhlt');
    expect(less.cpu.rflags & (Flag.ZF | Flag.PF | Flag.CF)).toBe(Flag.CF);
    const equal = run('fninit\nfld1\nfld1\nfucomip st0, st1\nhlt');
    expect(equal.cpu.rflags & (Flag.ZF | Flag.PF | Flag.CF)).toBe(Flag.ZF);
    expect(equal.cpu.fpu.top).toBe(7);
    const compare = run('fninit\nfld1\nfldz\nfcompp\nfnstsw ax\nhlt');
    expect(compare.reg(Reg.RAX) & 0xffffn).toBe(0x0100n);
  });

  test('FXAM classifies, FXCH exchanges, FXTRACT splits', () => {
    const { cpu, reg } = run('fninit\nfxam\nfnstsw ax\nmov ebx, eax\nfld qword [x]\nfxtract\nfxch st1\nhlt\nalign 8\nx: dq 12.0');
    // Empty: C3 and C0.
    expect(reg(Reg.RBX) & 0x4700n).toBe(0x4100n);
    // 12 = 1.5 × 2^3: after FXCH, ST(0) is the exponent 3.0 and ST(1) the significand 1.5.
    expect(cpu.fpu.signExponent[cpu.fpu.physical(0)]).toBe(0x4000);
    expect(cpu.fpu.high[cpu.fpu.physical(0)]).toBe(0xc0000000);
    expect(cpu.fpu.signExponent[cpu.fpu.physical(1)]).toBe(0x3fff);
    expect(cpu.fpu.high[cpu.fpu.physical(1)]).toBe(0xc0000000);
  });
});

describe('x87 exceptions and CR0', () => {
  test('#NM with CR0.EM or CR0.TS; WAIT only with MP and TS', () => {
    expect(run('fninit\nhlt', Cr0.PE | Cr0.ET | Cr0.EM).vectors[0]).toBe(7);
    expect(run('fninit\nhlt', Cr0.PE | Cr0.ET | Cr0.TS).vectors[0]).toBe(7);
    expect(run('fwait\nhlt', Cr0.PE | Cr0.ET | Cr0.TS).vectors).toEqual([]);
    expect(run('fwait\nhlt', Cr0.PE | Cr0.ET | Cr0.EM).vectors).toEqual([]);
    expect(run('fwait\nhlt', Cr0.PE | Cr0.ET | Cr0.TS | Cr0.MP).vectors[0]).toBe(7);
  });

  test('an unmasked exception sets ES and B and raises #MF at the next waiting instruction (CR0.NE)', () => {
    const source = 'fninit\nfldcw [cw]\nfld1\nfldz\nfdivp st1, st0\nfnstsw ax\nfwait\nhlt\ncw: dw 0x037b';
    const unmasked = run(source);
    expect(unmasked.reg(Reg.RAX) & 0xffffn).toBe(0x8000n | 0x3000n | 0x80n | 0x04n);
    expect(unmasked.vectors[0]).toBe(16);
    // ZE unmasked stores nothing: ST(1) still holds 1.0 and nothing was popped.
    expect(unmasked.cpu.fpu.top).toBe(6);
    const legacy = run(source, Cr0.PE | Cr0.ET);
    expect(legacy.vectors).toEqual([]);
  });

  test('save and restore carry the x87 state', () => {
    const { cpu } = run('fninit\nfldpi\nfld1\nhlt');
    const saved = cpu.save();
    const again = run('fninit\nhlt');
    again.cpu.restore(saved);
    expect(again.cpu.fpu.top).toBe(6);
    expect(again.cpu.fpu.tagWord()).toBe(cpu.fpu.tagWord());
    expect(again.cpu.fpu.low[6]).toBe(0);
    expect(again.cpu.fpu.low[7]).toBe(0x2168c235);
    expect(() => again.cpu.restore({ ...saved, fpu: { ...saved.fpu, top: 8 } })).toThrow();
  });

  test('FNSAVE image (32-bit protected layout) and FRSTOR', () => {
    const machine = run('fninit\nfldcw [cw]\nfld1\nfldz\nfnsave [0x200000]\nfnstsw ax\nmov ebx, eax\nfrstor [0x200000]\nhlt\ncw: dw 0x027f');
    const word = (offset: number) => machine.memory.readU16(guestAddress(0x200000 + offset));
    expect(word(0)).toBe(0x027f);
    expect(word(2)).toBe(0xffff);
    // TOP = 6 in the status word; tags: R6 zero (01), R7 valid (00), the rest empty (11).
    expect(word(4) & 0x3800).toBe(0x3000);
    expect(word(8)).toBe(0x1fff);
    // FIP: FLDZ, the last instruction that is not a control instruction (after 2 + 6 + 2 bytes).
    expect(machine.memory.readU32(guestAddress(0x200000 + 12))).toBe(0x100000 + 10);
    // ST(0) = +0 at offset 28, ST(1) = 1.0 at 38.
    expect(word(28 + 8)).toBe(0);
    expect(word(38 + 6)).toBe(0x8000);
    expect(word(38 + 8)).toBe(0x3fff);
    // FNSAVE reinitialised the FPU; FRSTOR brought it back.
    expect(machine.reg(Reg.RBX) & 0xffffn).toBe(0n);
    expect(machine.cpu.fpu.top).toBe(6);
    expect(machine.cpu.fpu.control).toBe(0x027f);
    expect(machine.cpu.fpu.tagWord()).toBe(0x1fff);
  });

  test('FNSTENV in 16-bit real mode: 14 bytes, then every exception masked', () => {
    const machine = runAssembly(16, 'fninit\nfldcw [cw]\nfld1\nfnstenv [0x6000]\nhlt\ncw: dw 0x0360');
    const word = (offset: number) => machine.memory.readU16(guestAddress(0x6000 + offset));
    expect(word(0)).toBe(0x0360 | 0x40);
    expect(word(4)).toBe(0x3fff);
    // FIP: the linear address of FLD1 (FNINIT is 2 bytes, FLDCW [disp16] 4).
    expect(word(6)).toBe(0x7c00 + 6);
    expect(word(14)).toBe(0);
    expect(machine.cpu.fpu.control & 0x3f).toBe(0x3f);
  });

  test('FXSAVE/FXRSTOR: x87 part of the image, #GP when misaligned, #UD without FXSR', () => {
    const model = { ...TSVIRT_MAX, features: new Set([...TSVIRT_MAX.features, 'fxsr' as const]) };
    const source = 'fninit\nfld1\nfldpi\nfxsave [0x200000]\nfninit\nfxrstor [0x200000]\nhlt';
    const vectors: number[] = [];
    const events = (event: CpuEvent): void => {
      if (event.kind === 'exception') vectors.push(event.vector);
    };
    const machine = runAssembly(32, source, { machine: { model, cpuOptions: { events } } });
    const word = (offset: number) => machine.memory.readU16(guestAddress(0x200000 + offset));
    expect(vectors).toEqual([]);
    expect(word(0)).toBe(0x037f);
    expect((word(2) >> 11) & 7).toBe(6);
    // Abridged tag: bit i set for each physical register in use (R6, R7).
    expect(word(4) & 0xff).toBe(0xc0);
    // ST(0) = pi in the first 16-byte slot, ST(1) = 1.0 in the second.
    expect(word(32 + 8)).toBe(0x4000);
    expect(word(48 + 8)).toBe(0x3fff);
    expect(machine.cpu.fpu.top).toBe(6);
    expect(machine.cpu.fpu.tagWord()).toBe(0x0fff);
    const withoutFxsr = { ...TSVIRT_MAX, features: new Set([...TSVIRT_MAX.features].filter((feature) => feature !== 'fxsr')) };
    const undefinedOpcode: number[] = [];
    runAssembly(32, 'fxsave [0x200000]\nhlt', { machine: { model: withoutFxsr, cpuOptions: { events: (event) => { if (event.kind === 'exception') undefinedOpcode.push(event.vector); } } } });
    expect(undefinedOpcode[0]).toBe(6);
    const misaligned: number[] = [];
    runAssembly(32, 'fxsave [0x200008]\nhlt', { machine: { model, cpuOptions: { events: (event) => { if (event.kind === 'exception') misaligned.push(event.vector); } } } });
    expect(misaligned[0]).toBe(13);
  });
});
