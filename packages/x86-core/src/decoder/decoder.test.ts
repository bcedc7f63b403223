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
  // VEX-encoded AVX (VBROADCASTSS) is not implemented: #UD once the VEX prefix and the opcode are read.
  [CodeMode.Bits64, 'c4 e2 79 18 c0', '(bad)', 4],
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
    const specs = /^(E|G|M|R|Z|I|J|O)(b|w|d|q|v|z|y|p|bs)?$|^By$|^(AL|CL|DX|rAX|eAX|1|ES|CS|SS|DS|FS|GS|Sw|Cd|Dd|Rd|Ap|Mp|Mq|Mv|M|Ew|Ed|Gz|Iw|Mt|st0|sti|ax|xmm0)$|^[VWUPQNM](ps|pd|ss|sd|dq|q|d|w|b|x)$/;
    let count = 0;
    for (const { entry } of allEntries(table)) {
      count++;
      for (const operand of entry.operands) expect(operand).toMatch(specs);
    }
    expect(count).toBeGreaterThan(300);
  });
});

function text(hex: string, mode: CodeMode, decoder = full): string {
  return disassemble(decode(hex, mode, decoder));
}

// Encodings from the SDM's opcode tables (VEX.LZ.0F38 F2 ANDN, …), operands by hand.
describe('VEX decoding', () => {
  test.each([
    [CodeMode.Bits64, 'c4 e2 e0 f2 c1', 'andn rax, rbx, rcx', 5],
    [CodeMode.Bits64, 'c4 e2 60 f2 c1', 'andn eax, ebx, ecx', 5],
    [CodeMode.Bits64, 'c4 42 20 f2 c9', 'andn r9d, r11d, r9d', 5],
    [CodeMode.Bits64, 'c4 e2 f0 f7 c3', 'bextr rax, rbx, rcx', 5],
    [CodeMode.Bits64, 'c4 e2 f8 f3 cb', 'blsr rax, rbx', 5],
    [CodeMode.Bits64, 'c4 e2 f8 f3 d3', 'blsmsk rax, rbx', 5],
    [CodeMode.Bits64, 'c4 e2 f8 f3 1e', 'blsi rax, qword [rsi]', 5],
    [CodeMode.Bits64, 'c4 e2 f0 f5 c3', 'bzhi rax, rbx, rcx', 5],
    [CodeMode.Bits64, 'c4 e2 e3 f6 c1', 'mulx rax, rbx, rcx', 5],
    [CodeMode.Bits64, 'c4 e2 e3 f5 c1', 'pdep rax, rbx, rcx', 5],
    [CodeMode.Bits64, 'c4 e2 e2 f5 c1', 'pext rax, rbx, rcx', 5],
    [CodeMode.Bits64, 'c4 e3 fb f0 c3 05', 'rorx rax, rbx, 0x5', 6],
    [CodeMode.Bits64, 'c4 e2 f1 f7 c3', 'shlx rax, rbx, rcx', 5],
    [CodeMode.Bits64, 'c4 e2 f3 f7 c3', 'shrx rax, rbx, rcx', 5],
    [CodeMode.Bits64, 'c4 e2 f2 f7 c3', 'sarx rax, rbx, rcx', 5],
    [CodeMode.Bits64, 'c4 e2 60 f2 46 08', 'andn eax, ebx, dword [rsi+0x8]', 6],
    [CodeMode.Bits64, '66 48 0f 38 f6 c3', 'adcx rax, rbx', 6],
    [CodeMode.Bits64, 'f3 0f 38 f6 c3', 'adox eax, ebx', 5],
    [CodeMode.Bits64, 'f3 48 0f bc c3', 'tzcnt rax, rbx', 5],
    [CodeMode.Bits32, 'c4 e2 60 f2 c1', 'andn eax, ebx, ecx', 5],
    // Outside 64-bit mode VEX.W, VEX.B and VEX.vvvv[3] are ignored.
    [CodeMode.Bits32, 'c4 c2 e0 f2 c1', 'andn eax, ebx, ecx', 5],
    [CodeMode.Bits32, 'c4 e2 20 f2 c1', 'andn eax, ebx, ecx', 5],
    [CodeMode.Bits16, 'c4 e2 60 f2 04', 'andn eax, ebx, dword [si]', 5],
    // C4/C5 with ModRM.mod != 3 stay LES/LDS outside 64-bit mode.
    [CodeMode.Bits32, 'c4 06', 'les eax, [esi]', 2],
    [CodeMode.Bits32, 'c5 46 08', 'lds eax, [esi+0x8]', 3],
    [CodeMode.Bits16, 'c4 04', 'les ax, [si]', 2],
  ])('%s: %s is %s', (mode, hex, expected, length) => {
    const instruction = decode(hex, mode);
    expect(disassemble(instruction)).toBe(expected);
    expect(instruction.length).toBe(length);
  });

  test.each([
    ['VEX.L = 1', 'c4 e2 e4 f2 c1'],
    ['66 before VEX', '66 c4 e2 e0 f2 c1'],
    ['F2 before VEX', 'f2 c4 e2 e0 f2 c1'],
    ['F3 before VEX', 'f3 c4 e2 e0 f2 c1'],
    ['LOCK before VEX', 'f0 c4 e2 e0 f2 c1'],
    ['REX before VEX', '48 c4 e2 e0 f2 c1'],
    ['VEX.mmmmm = 0', 'c4 e0 e0 f2 c1'],
    ['VEX.mmmmm = 4', 'c4 e4 e0 f2 c1'],
    ['RORX with VEX.vvvv in use', 'c4 e3 f3 f0 c3 05'],
    ['group 17 /0', 'c4 e2 e0 f3 c3'],
    ['ANDN with VEX.pp = 66', 'c4 e2 e1 f2 c1'],
    ['a legacy opcode under VEX (0F 38 F0 MOVBE)', 'c4 e2 78 f0 06'],
    ['a VEX opcode without VEX (0F 38 F2)', '0f 38 f2 c1'],
    ['0F 38 F6 without 66 or F3', '0f 38 f6 c3'],
  ])('%s is #UD', (_, hex) => {
    expect(decode(hex, CodeMode.Bits64).entry.handler).toBe('ud');
  });

  test('a model without BMI1/BMI2/ADX decodes them as #UD, and F3 0F BC as BSF', () => {
    expect(text('c4 e2 e0 f2 c1', CodeMode.Bits64, baseline)).toBe('(bad)');
    expect(text('c4 e2 e3 f6 c1', CodeMode.Bits64, baseline)).toBe('(bad)');
    expect(text('66 0f 38 f6 c3', CodeMode.Bits64, baseline)).toBe('(bad)');
    expect(text('f3 0f bc c3', CodeMode.Bits64, baseline)).toBe('bsf eax, ebx');
    expect(text('f3 0f bc c3', CodeMode.Bits64)).toBe('tzcnt eax, ebx');
  });
});
