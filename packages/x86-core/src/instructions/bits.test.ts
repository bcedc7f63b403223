import { describe, expect, test } from 'vitest';
import { Flag, Reg } from '../state/registers.js';
import { runAssembly } from '../testing/flat-machine.js';

function run(source: string, bits: 32 | 64 = 64) {
  const { cpu, result } = runAssembly(bits, `${source}\nhlt`);
  expect(result.reason).toBe('halted');
  return { flags: cpu.rflags, reg: (r: number) => cpu.getRegister(r), cpu };
}

describe('bit instructions', () => {
  test('bsf, bsr, popcnt, lzcnt, tzcnt', () => {
    const { reg, flags } = run('mov eax, 0x10010\nbsf ecx, eax\nbsr edx, eax\nmov rsi, 0xf0f0000000000000\npopcnt rdi, rsi\nmov ebx, 1\nlzcnt r8d, ebx\nxor ebx, ebx\nmov r9d, 5\ntzcnt r9, rbx\nlzcnt r10d, ebx');
    expect(reg(Reg.RCX)).toBe(4n);
    expect(reg(Reg.RDX)).toBe(16n);
    expect(reg(Reg.RDI)).toBe(8n);
    expect(reg(Reg.R8)).toBe(31n);
    // tsvirt-max advertises BMI1, so F3 0F BC is TZCNT: a zero source gives the operand size (and CF).
    expect(reg(Reg.R9)).toBe(64n);
    expect(reg(Reg.R10)).toBe(32n);
    expect(flags & Flag.CF).toBe(Flag.CF);
  });

  test('bsf of zero sets ZF and leaves the destination', () => {
    const { reg, flags } = run('mov ecx, 77\nxor eax, eax\nbsf ecx, eax');
    expect(reg(Reg.RCX)).toBe(77n);
    expect(flags & Flag.ZF).toBe(Flag.ZF);
  });

  test('bt/bts/btr/btc with register offsets reach beyond the operand', () => {
    const { reg, flags } = run(`mov rsi, 0x200000
mov dword [rsi], 0
mov dword [rsi+4], 8
mov ecx, 35
bt dword [rsi], ecx
setc al
mov ecx, 64
bts dword [rsi], ecx
mov ebx, [rsi+8]
mov ecx, -1
bts dword [rsi+4], ecx
mov edx, [rsi]
mov edi, 0xff
btr edi, 3
btc edi, 36`);
    expect(reg(Reg.RAX) & 0xffn).toBe(1n);
    expect(reg(Reg.RBX)).toBe(1n);
    expect(reg(Reg.RDX)).toBe(0x80000000n);
    // btr clears bit 3 (0xf7); btc of bit 36 mod 32 = 4 toggles it off (0xe7), CF = the old bit 4.
    expect(reg(Reg.RDI)).toBe(0xe7n);
    expect(flags & Flag.CF).toBe(Flag.CF);
  });

  test('bswap and movbe', () => {
    const { reg } = run('mov eax, 0x11223344\nbswap eax\nmov rbx, 0x0102030405060708\nbswap rbx\nmov rsi, 0x200000\nmov dword [rsi], 0xaabbccdd\nmovbe ecx, [rsi]');
    expect(reg(Reg.RAX)).toBe(0x44332211n);
    expect(reg(Reg.RBX)).toBe(0x0807060504030201n);
    expect(reg(Reg.RCX)).toBe(0xddccbbaan);
  });
});
