import { describe, expect, test } from 'vitest';
import { QEMU64, TSVIRT_MAX } from '../cpuid/models.js';
import { Decoder } from './decoder.js';
import { disassemble } from './disassembler.js';
import { CodeMode, Instruction } from './instruction.js';
import { allEntries, buildOpcodeTable } from './opcode-table.js';

const table = buildOpcodeTable();
const full = new Decoder(table, TSVIRT_MAX.features);
const baseline = new Decoder(table, QEMU64.features);

function decode(hex: string, mode: CodeMode, decoder = full): Instruction {
  const bytes = hex.split(' ').map((byte) => Number.parseInt(byte, 16));
  return decoder.decode({ byteAt: (offset) => bytes[offset] ?? 0 }, mode, new Instruction());
}

// Encodings and their Intel-syntax meaning from the Intel SDM, vol. 2.
const CASES: Array<[CodeMode, string, string, number]> = [
  [CodeMode.Bits64, '48 89 d8', 'mov rax, rbx', 3],
  [CodeMode.Bits64, '89 d8', 'mov eax, ebx', 2],
  [CodeMode.Bits64, '66 89 d8', 'mov ax, bx', 3],
  [CodeMode.Bits64, '88 e0', 'mov al, ah', 2],
  [CodeMode.Bits64, '40 88 e0', 'mov al, spl', 3],
  [CodeMode.Bits64, '45 88 c8', 'mov r8b, r9b', 3],
  [CodeMode.Bits64, '48 8b 05 10 00 00 00', 'mov rax, qword [rel $+0x17]', 7],
  [CodeMode.Bits64, '48 8d 04 8b', 'lea rax, [rbx+rcx*4]', 4],
  [CodeMode.Bits64, '4a 8d 44 a5 f8', 'lea rax, [rbp+r12*4-0x8]', 5],
  [CodeMode.Bits64, 'f3 48 ab', 'rep stosq', 3],
  [CodeMode.Bits64, 'f0 48 0f b1 0b', 'lock cmpxchg qword [rbx], rcx', 5],
  [CodeMode.Bits64, 'f0 01 c0', '(bad)', 3],
  [CodeMode.Bits64, '06', '(bad)', 1],
  [CodeMode.Bits64, '48 b8 88 77 66 55 44 33 22 11', 'mov rax, 0x1122334455667788', 10],
  [CodeMode.Bits64, '48 83 c0 ff', 'add rax, 0xffffffffffffffff', 4],
  [CodeMode.Bits64, '48 c7 c0 00 00 00 80', 'mov rax, 0xffffffff80000000', 7],
  [CodeMode.Bits64, 'e8 00 00 00 00', 'call $+0x5', 5],
  [CodeMode.Bits64, 'eb fe', 'jmp $+0x0', 2],
  [CodeMode.Bits64, '0f 05', 'syscall', 2],
  [CodeMode.Bits64, 'f3 0f b8 c1', 'popcnt eax, ecx', 4],
  [CodeMode.Bits64, '0f 01 f8', 'swapgs', 3],
  [CodeMode.Bits64, '65 48 8b 04 25 28 00 00 00', 'mov rax, qword [gs:0x28]', 9],
  [CodeMode.Bits64, '41 50', 'push r8', 2],
  [CodeMode.Bits64, '66 50', 'push ax', 2],
  [CodeMode.Bits64, 'c4 e2 79 18 c0', '(bad)', 1],
  [CodeMode.Bits64, '48 63 c3', 'movsxd rax, ebx', 3],
  [CodeMode.Bits64, '0f 22 d8', 'mov cr3, rax', 3],
  [CodeMode.Bits64, '48 0f c7 0e', 'cmpxchg16b oword [rsi]', 4],
  [CodeMode.Bits64, '90', 'nop', 1],
  [CodeMode.Bits64, '41 90', 'xchg r8d, eax', 2],
  [CodeMode.Bits64, 'f3 90', 'pause', 2],
  [CodeMode.Bits64, '66 66 66 66 66 66 66 66 66 66 66 66 66 66 66 90', '(too long)', 15],
  [CodeMode.Bits32, '8b 04 24', 'mov eax, dword [esp]', 3],
  [CodeMode.Bits32, '66 b8 34 12', 'mov ax, 0x1234', 4],
  [CodeMode.Bits32, '40', 'inc eax', 1],
  [CodeMode.Bits32, '0f b6 c3', 'movzx eax, bl', 3],
  [CodeMode.Bits32, '0f bf 43 04', 'movsx eax, word [ebx+0x4]', 4],
  [CodeMode.Bits32, '63 d8', 'arpl ax, bx', 2],
  [CodeMode.Bits32, 'ea 78 56 34 12 08 00', 'jmp 0x8:0x12345678', 7],
  [CodeMode.Bits32, 'c8 10 00 01', 'enter 0x10, 0x1', 4],
  [CodeMode.Bits32, '0f a4 c3 05', 'shld ebx, eax, 0x5', 4],
  [CodeMode.Bits32, '0f ad c3', 'shrd ebx, eax, cl', 3],
  [CodeMode.Bits16, '8b 46 02', 'mov ax, word [bp+0x2]', 3],
  [CodeMode.Bits16, '66 8b 46 02', 'mov eax, dword [bp+0x2]', 4],
  [CodeMode.Bits16, 'ea 00 7c 00 00', 'jmp 0x0:0x7c00', 5],
  [CodeMode.Bits16, '67 8b 04 8b', 'mov ax, word [ebx+ecx*4]', 4],
  [CodeMode.Bits16, 'cd 10', 'int 0x10', 2],
];

describe('decoder and disassembler', () => {
  test.each(CASES)('mode %i: %s → %s', (mode, hex, text, length) => {
    const instruction = decode(hex, mode);
    expect(disassemble(instruction)).toBe(text);
    expect(instruction.length).toBe(length);
  });

  test('optional instructions follow the CPU model', () => {
    expect(disassemble(decode('f3 0f b8 c1', CodeMode.Bits64, baseline))).toBe('(bad)');
    // Without LZCNT the F3 prefix is ignored and the bytes mean BSR.
    expect(disassemble(decode('f3 0f bd c1', CodeMode.Bits64, baseline))).toBe('bsr eax, ecx');
    expect(disassemble(decode('f3 0f bd c1', CodeMode.Bits64, full))).toBe('lzcnt eax, ecx');
    expect(disassemble(decode('0f 38 f0 03', CodeMode.Bits64, baseline))).toBe('(bad)');
    expect(disassemble(decode('0f 38 f0 03', CodeMode.Bits64, full))).toBe('movbe eax, dword [rbx]');
  });

  test('segment overrides other than FS/GS are ignored in 64-bit mode', () => {
    expect(decode('2e 8b 03', CodeMode.Bits64).segment).toBe(3);
    expect(decode('64 8b 03', CodeMode.Bits64).segment).toBe(4);
    expect(decode('2e 8b 03', CodeMode.Bits32).segment).toBe(1);
    // EBP-based addressing defaults to SS.
    expect(decode('8b 45 00', CodeMode.Bits32).segment).toBe(2);
  });

  test('a REX prefix followed by a legacy prefix is dropped', () => {
    const instruction = decode('48 66 89 d8', CodeMode.Bits64);
    expect(disassemble(instruction)).toBe('mov ax, bx');
  });

  test('every table entry names a handler and well-formed operands', () => {
    const specs = /^(E|G|M|R|Z|I|J|O)(b|w|d|q|v|z|y|p|bs)?$|^(AL|CL|DX|rAX|eAX|1|ES|CS|SS|DS|FS|GS|Sw|Cd|Dd|Rd|Ap|Mp|Mq|Mv|M|Ew|Ed|Gz|Iw|Mt|st0|sti|ax|xmm0)$|^[VWUPQNM](ps|pd|ss|sd|dq|q|d|w|b|x)$/;
    let count = 0;
    for (const { entry } of allEntries(table)) {
      count++;
      for (const operand of entry.operands) expect(operand).toMatch(specs);
    }
    expect(count).toBeGreaterThan(300);
  });
});
