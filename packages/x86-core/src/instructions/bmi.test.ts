import { describe, expect, test } from 'vitest';
import type { CpuEvent } from '../cpu.js';
import { Flag, Reg } from '../state/registers.js';
import { runAssembly } from '../testing/flat-machine.js';

const ARITHMETIC = Flag.CF | Flag.PF | Flag.AF | Flag.ZF | Flag.SF | Flag.OF;

function run(bits: 32 | 64, source: string) {
  const { cpu, result } = runAssembly(bits, `${source}\nhlt`);
  expect(result.reason).toBe('halted');
  return { flags: cpu.rflags, reg: (register: number) => cpu.getRegister(register) };
}

// Values worked out by hand from the SDM's operation sections.
describe('BMI semantics (SDM operation sections)', () => {
  test('BEXTR with start and length past the operand, BZHI with the index past it', () => {
    // start 8, length 200: everything from bit 8 up.
    expect(run(64, 'mov rbx, 0x1122334455667788\nmov ecx, 0xc808\nbextr rax, rbx, rcx').reg(Reg.RAX)).toBe(0x11223344556677n);
    // start 64: nothing left, ZF set.
    const empty = run(64, 'mov rbx, -1\nmov ecx, 0x1040\nbextr rax, rbx, rcx');
    expect(empty.reg(Reg.RAX)).toBe(0n);
    expect(empty.flags & (Flag.ZF | Flag.CF | Flag.OF)).toBe(Flag.ZF);
    const kept = run(32, 'mov ebx, 0x80001234\nmov ecx, 0x120\nbzhi eax, ebx, ecx');
    expect(kept.reg(Reg.RAX)).toBe(0x80001234n);
    expect(kept.flags & (Flag.CF | Flag.SF | Flag.ZF | Flag.OF)).toBe(Flag.CF | Flag.SF);
    expect(run(64, 'mov rbx, -1\nmov ecx, 0x121\nbzhi rax, rbx, rcx').reg(Reg.RAX)).toBe(0x1ffffffffn);
  });

  test('BLSI/BLSMSK/BLSR carry and zero rules', () => {
    const blsi = run(64, 'xor ebx, ebx\nblsi rax, rbx');
    expect(blsi.flags & (Flag.CF | Flag.ZF)).toBe(Flag.ZF);
    const blsmsk = run(64, 'xor ebx, ebx\nblsmsk rax, rbx');
    expect(blsmsk.reg(Reg.RAX)).toBe(0xffffffffffffffffn);
    expect(blsmsk.flags & (Flag.CF | Flag.ZF | Flag.SF)).toBe(Flag.CF | Flag.SF);
    const blsr = run(64, 'mov rbx, 0x100000000\nblsr rax, rbx');
    expect(blsr.reg(Reg.RAX)).toBe(0n);
    expect(blsr.flags & (Flag.CF | Flag.ZF)).toBe(Flag.ZF);
  });

  test('MULX leaves the flags alone and gives the high half when both destinations are one register', () => {
    const same = run(64, 'mov rdx, -1\nmov rcx, -1\nstc\nmulx rax, rax, rcx');
    expect(same.reg(Reg.RAX)).toBe(0xfffffffffffffffen);
    expect(same.flags & ARITHMETIC).toBe(Flag.CF);
    const split = run(32, 'mov edx, 0x80000001\nmov ecx, 6\nmulx eax, ebx, ecx');
    expect([split.reg(Reg.RAX), split.reg(Reg.RBX)]).toEqual([3n, 6n]);
  });

  test('PDEP and PEXT', () => {
    expect(run(64, 'mov rbx, 0b1011\nmov rcx, 0xf000000000000f00\npdep rax, rbx, rcx').reg(Reg.RAX)).toBe(0xb00n);
    expect(run(64, 'mov rbx, 0xabcd000000001234\nmov rcx, 0xff0000000000000f\npext rax, rbx, rcx').reg(Reg.RAX)).toBe(0xab4n);
  });

  test('ADCX and ADOX carry through CF and OF only', () => {
    // ADD leaves OF = 1, SF = 1, CF = 0; STC sets CF; ADOX: -1 + 0 + OF carries out, so OF stays 1 and nothing else changes.
    const adox = run(64, 'mov rcx, -1\nmov rdx, 0\nmov r8, 0x7fffffffffffffff\nadd r8, 1\nstc\nadox rcx, rdx');
    expect(adox.reg(Reg.RCX)).toBe(0n);
    expect(adox.flags & ARITHMETIC & ~(Flag.PF | Flag.AF)).toBe(Flag.CF | Flag.OF | Flag.SF);
    // ADCX: 0xffffffff + 1 + CF(0) carries out of 32 bits; ZF stays as CMP left it (clear).
    const adcx = run(32, 'mov eax, -1\nmov ebx, 1\ncmp eax, ebx\nclc\nadcx eax, ebx');
    expect(adcx.reg(Reg.RAX)).toBe(0n);
    expect(adcx.flags & (Flag.CF | Flag.ZF | Flag.OF)).toBe(Flag.CF);
  });

  test('VEX instructions are #UD in real mode; ADX is not VEX and runs', () => {
    const events: CpuEvent[] = [];
    runAssembly(16, 'andn eax, ebx, ecx\nhlt', { limit: 1, machine: { cpuOptions: { events: (event) => events.push(event) } } });
    expect(events[0]).toMatchObject({ kind: 'exception', vector: 6 });
    const { cpu, result } = runAssembly(16, 'mov eax, 1\nmov ebx, 2\nstc\nadcx eax, ebx\nhlt');
    expect(result.reason).toBe('halted');
    expect(cpu.getRegister(Reg.RAX)).toBe(4n);
  });
});
