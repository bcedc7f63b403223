import { fc, test } from '@fast-check/vitest';
import { describe } from 'vitest';
import { TSVIRT_MAX } from './cpuid/models.js';
import { Decoder } from './decoder/decoder.js';
import { CodeMode, Instruction, OperandKind } from './decoder/instruction.js';
import { allEntries, buildOpcodeTable } from './decoder/opcode-table.js';
import type { HandlerName } from './decoder/opcode-entry.js';
import { compareWithHost, type IntegerTemplate, templateCases } from './testing/integer-oracle.js';
import { InterpreterCaseRunner } from './testing/interpreter-case.js';
import { type OracleBits, type OracleCase, oracleCase, Reg } from './testing/oracle/index.js';
import { oracleForTests } from './testing/oracle/oracle-for-tests.js';

/*
 * The host CPU is the reference: each case runs natively and on the
 * interpreter from the same registers, flags and memory. Registers, memory,
 * the end RIP and the arithmetic flags (minus those the instruction leaves
 * undefined, from the opcode table) must match; faults must have the same vector.
 */

const host = await oracleForTests({ suite: 'the integer host-oracle tests' });
const decoder = new Decoder(buildOpcodeTable(), TSVIRT_MAX.features);
const runner = new InterpreterCaseRunner('tsvirt-max');

type Template = IntegerTemplate;

function casesFor(bits: OracleBits, templates: readonly Template[]): fc.Arbitrary<OracleCase[]> {
  return templateCases(bits, templates, 60);
}

async function compare(cases: OracleCase[]): Promise<void> {
  await compareWithHost(host.require(), runner, decoder, cases);
}

const ALU = ['add', 'or', 'adc', 'sbb', 'and', 'sub', 'xor', 'cmp'];
const alu64: Template[] = ALU.flatMap((op) => [
  { asm: `${op} rax, rbx` }, { asm: `${op} ecx, edx` }, { asm: `${op} si, di` }, { asm: `${op} ah, bl` }, { asm: `${op} r9b, r10b` },
  { asm: `${op} rax, -5` }, { asm: `${op} r11d, 0x12345678` }, { asm: `${op} qword [rsi+8], rcx`, pointers: [Reg.rsi] },
  { asm: `${op} dl, byte [rsi]`, pointers: [Reg.rsi] }, { asm: `${op} word [rsi], 0x8001`, pointers: [Reg.rsi] },
]);
const unary: Template[] = ['inc', 'dec', 'neg', 'not'].flatMap((op) => [{ asm: `${op} rax` }, { asm: `${op} ecx` }, { asm: `${op} dx` }, { asm: `${op} bh` }, { asm: `${op} dword [rsi]`, pointers: [Reg.rsi] }]);
const multiply: Template[] = [
  ...['mul', 'imul', 'div', 'idiv'].flatMap((op) => [{ asm: `${op} rbx` }, { asm: `${op} ecx` }, { asm: `${op} si` }, { asm: `${op} dl` }, { asm: `${op} qword [rsi]`, pointers: [Reg.rsi] }]),
  { asm: 'imul rax, rbx' }, { asm: 'imul ecx, edx, -7' }, { asm: 'imul si, di, 0x1234' }, { asm: 'imul r8, qword [rsi], 0x7fffffff', pointers: [Reg.rsi] },
];
const SHIFTS = ['rol', 'ror', 'rcl', 'rcr', 'shl', 'shr', 'sar'];
const shifts: Template[] = [
  ...SHIFTS.flatMap((op) => [{ asm: `${op} rax, cl`, small: [Reg.rcx] }, { asm: `${op} ebx, cl`, small: [Reg.rcx] }, { asm: `${op} dx, cl`, small: [Reg.rcx] }, { asm: `${op} sil, cl`, small: [Reg.rcx] }, { asm: `${op} rdi, 1` }, { asm: `${op} r8d, 13` }, { asm: `${op} byte [rsi], 3`, pointers: [Reg.rsi] }]),
  { asm: 'shld rax, rbx, 17' }, { asm: 'shrd eax, ebx, cl', small: [Reg.rcx] }, { asm: 'shld edx, esi, cl', small: [Reg.rcx] }, { asm: 'shrd r9, r10, 63' },
];
const bits: Template[] = [
  ...['bt', 'bts', 'btr', 'btc'].flatMap((op) => [{ asm: `${op} rax, rbx` }, { asm: `${op} ecx, 35` }, { asm: `${op} dword [rsi], edx`, pointers: [Reg.rsi], small: [Reg.rdx] }, { asm: `${op} word [rsi], 9`, pointers: [Reg.rsi] }]),
  { asm: 'bsf rax, rbx' }, { asm: 'bsr ecx, edx' }, { asm: 'bsf si, di' }, { asm: 'popcnt rax, rbx' }, { asm: 'popcnt ecx, edx' }, { asm: 'lzcnt rax, rbx' }, { asm: 'lzcnt cx, dx' },
  { asm: 'bswap rax' }, { asm: 'bswap ecx' }, { asm: 'movbe rax, [rsi]', pointers: [Reg.rsi] }, { asm: 'movbe [rsi], cx', pointers: [Reg.rsi] },
];
const moves: Template[] = [
  { asm: 'movsx rax, bl' }, { asm: 'movsx ecx, dx' }, { asm: 'movzx eax, bh' }, { asm: 'movzx esi, word [rdi]', pointers: [Reg.rdi] }, { asm: 'movsxd rax, ebx' },
  { asm: 'cmovl rax, rbx' }, { asm: 'cmovbe ecx, edx' }, { asm: 'cmovp si, di' }, { asm: 'cmovo ebx, dword [rsi]', pointers: [Reg.rsi] },
  { asm: 'setg al' }, { asm: 'setnc bh' }, { asm: 'sets byte [rsi]', pointers: [Reg.rsi] },
  { asm: 'xchg rax, rbx' }, { asm: 'xchg cl, dh' }, { asm: 'xadd rax, rbx' }, { asm: 'xadd dword [rsi], ecx', pointers: [Reg.rsi] },
  { asm: 'cmpxchg rbx, rcx' }, { asm: 'cmpxchg byte [rsi], dl', pointers: [Reg.rsi] }, { asm: 'cmpxchg8b [rsi]', pointers: [Reg.rsi] },
  { asm: 'lahf' }, { asm: 'sahf' }, { asm: 'cbw' }, { asm: 'cwde' }, { asm: 'cdqe' }, { asm: 'cwd' }, { asm: 'cdq' }, { asm: 'cqo' },
  { asm: 'lea rax, [rbx+rcx*8-0x80]' }, { asm: 'lea ecx, [rdx+rsi*2+0x7fffffff]' }, { asm: 'lea si, [rdi+rbp]' },
  { asm: 'push rbx\npop rcx', pointers: [Reg.rsp] }, { asm: 'enter 16, 0\nleave', pointers: [Reg.rsp, Reg.rbp] },
];
const strings: Template[] = [
  { asm: 'rep movsb', pointers: [Reg.rsi, Reg.rdi], small: [Reg.rcx] }, { asm: 'rep movsq', pointers: [Reg.rsi, Reg.rdi], small: [Reg.rcx] },
  { asm: 'rep stosd', pointers: [Reg.rdi], small: [Reg.rcx] }, { asm: 'lodsw', pointers: [Reg.rsi] },
  { asm: 'repe cmpsb', pointers: [Reg.rsi, Reg.rdi], small: [Reg.rcx] }, { asm: 'repne scasw', pointers: [Reg.rdi], small: [Reg.rcx] },
  { asm: 'std\nrep movsd\ncld', pointers: [Reg.rsi, Reg.rdi], small: [Reg.rcx] },
];
const legacy32: Template[] = [
  ...ALU.map((op) => ({ asm: `${op} eax, ebx` })), { asm: 'inc eax' }, { asm: 'dec bx' },
  { asm: 'daa' }, { asm: 'das' }, { asm: 'aaa' }, { asm: 'aas' }, { asm: 'aam' }, { asm: 'aam 7' }, { asm: 'aad' }, { asm: 'aad 3' },
  { asm: 'mul ebx' }, { asm: 'idiv ecx' }, { asm: 'shld eax, ebx, cl', small: [Reg.rcx] }, { asm: 'rcr al, cl', small: [Reg.rcx] },
  { asm: 'pushad\npopad', pointers: [Reg.rsp] }, { asm: 'push ebx\npop ecx', pointers: [Reg.rsp] },
  { asm: 'cmpxchg8b [esi]', pointers: [Reg.rsi] }, { asm: 'rep movsb', pointers: [Reg.rsi, Reg.rdi], small: [Reg.rcx] },
  { asm: 'xlatb', pointers: [Reg.rbx] }, { asm: 'bound eax, [esi]', pointers: [Reg.rsi] },
];

const mixed32: Template[] = [
  ...SHIFTS.flatMap((op) => [{ asm: `${op} eax, cl`, small: [Reg.rcx] }, { asm: `${op} bx, 1` }, { asm: `${op} dh, 5` }]),
  { asm: 'shrd esi, edi, 9' }, { asm: 'bt eax, ebx' }, { asm: 'btc dword [esi], 33', pointers: [Reg.rsi] }, { asm: 'bsr eax, ebx' }, { asm: 'popcnt cx, dx' },
  { asm: 'imul eax, ebx, 100' }, { asm: 'div bl' }, { asm: 'idiv word [esi]', pointers: [Reg.rsi] }, { asm: 'neg dword [esi]', pointers: [Reg.rsi] },
  { asm: 'movsx eax, byte [esi]', pointers: [Reg.rsi] }, { asm: 'cmovge eax, ebx' }, { asm: 'setbe cl' }, { asm: 'xchg eax, ebx' }, { asm: 'bswap edx' },
  { asm: 'rep stosw', pointers: [Reg.rdi], small: [Reg.rcx] }, { asm: 'repne scasb', pointers: [Reg.rdi], small: [Reg.rcx] }, { asm: 'lodsd', pointers: [Reg.rsi] },
  { asm: 'enter 8, 1\nleave', pointers: [Reg.rsp, Reg.rbp] }, { asm: 'push word 0x1234\npop ax', pointers: [Reg.rsp] },
  // The specialised 32-bit forms of fast-paths.ts.
  { asm: 'add dword [esi], ebx', pointers: [Reg.rsi] }, { asm: 'sbb dword [esi+4], -9', pointers: [Reg.rsi] }, { asm: 'cmp dword [esi], 0x7fffffff', pointers: [Reg.rsi] },
  { asm: 'xor ecx, dword [esi]', pointers: [Reg.rsi] }, { asm: 'sub eax, 0x80000000' }, { asm: 'mov bh, [esi+3]', pointers: [Reg.rsi] }, { asm: 'mov [esi+1], dl', pointers: [Reg.rsi] },
  { asm: 'movzx edx, byte [esi]', pointers: [Reg.rsi] }, { asm: 'movzx ecx, word [esi+2]', pointers: [Reg.rsi] }, { asm: 'shl ebx, 31' }, { asm: 'shr edi, cl', small: [Reg.rcx] },
  { asm: 'sar esi, 1' }, { asm: 'push esp\npop ebx', pointers: [Reg.rsp] },
  { asm: 'adc ecx, edx' }, { asm: 'sbb eax, ebx' }, { asm: 'adc eax, dword [esi]', pointers: [Reg.rsi] }, { asm: 'sbb edi, 0x7fffffff' },
  { asm: 'imul ecx, edx' }, { asm: 'imul esi, esi' }, { asm: 'movzx eax, bh' }, { asm: 'movzx ecx, dx' }, { asm: 'setb bl' }, { asm: 'setg ah' },
  { asm: 'cmovb ecx, edx' }, { asm: 'cmovae eax, dword [esi+4]', pointers: [Reg.rsi] }, { asm: 'lea eax, [ebx+ecx*4-8]' }, { asm: 'lea edx, [esi+0x7fffffff]' },
  { asm: 'cmp al, 0x80' }, { asm: 'sub bh, cl' }, { asm: 'adc ah, 7' }, { asm: 'xor dl, byte [esi]', pointers: [Reg.rsi] }, { asm: 'sbb ch, byte [esi+1]', pointers: [Reg.rsi] },
  { asm: 'test al, bh' }, { asm: 'test al, 0x81' }, { asm: 'test dh, 0x40' }, { asm: 'test byte [esi], 0x80', pointers: [Reg.rsi] }, { asm: 'test byte [esi+2], ch', pointers: [Reg.rsi] },
  { asm: 'inc dword [esi]', pointers: [Reg.rsi] }, { asm: 'dec dword [esi+4]', pointers: [Reg.rsi] }, { asm: 'not edx' }, { asm: 'mov dword [esi+8], 0x89abcdef', pointers: [Reg.rsi] },
  { asm: 'shr dx, 5' }, { asm: 'shl si, 15' }, { asm: 'sar bx, 3' }, { asm: 'sal di, 1' }, { asm: 'shr ax, cl', small: [Reg.rcx] }, { asm: 'sar cx, cl', small: [Reg.rcx] }, { asm: 'shl bp, cl' },
  { asm: 'lea ecx, [0x12345678]' }, { asm: 'mov bx, [esi+6]', pointers: [Reg.rsi] }, { asm: 'mov [esi+3], dx', pointers: [Reg.rsi] }, { asm: 'mov eax, [esi+ecx*2+5]', pointers: [Reg.rsi], small: [Reg.rcx] }, { asm: 'mov [esi+ecx*8], ebx', pointers: [Reg.rsi], small: [Reg.rcx] },
];

const GROUPS: Array<[string, OracleBits, Template[]]> = [
  ['ALU', 64, alu64],
  ['INC/DEC/NEG/NOT', 64, unary],
  ['MUL/IMUL/DIV/IDIV', 64, multiply],
  ['shifts and rotates', 64, shifts],
  ['bit instructions', 64, bits],
  ['moves, exchanges, conversions, stack', 64, moves],
  ['string instructions', 64, strings],
  ['32-bit: BCD and legacy forms', 32, legacy32],
  ['32-bit: shifts, bits, multiply, strings, stack', 32, mixed32],
];

/*
 * Cases generated from the opcode table: every opcode of the one-byte and 0F
 * maps whose handler is a user-mode data instruction, with a random prefix,
 * REX byte and register-form ModRM (so every group member comes up), and
 * random immediates. The decoder tells the instruction's length.
 */
const GENERATED_HANDLERS = new Set<HandlerName>([
  'alu', 'test', 'inc', 'dec', 'not', 'neg', 'mul', 'imulOne', 'imul', 'div', 'idiv', 'shift', 'shld', 'shrd', 'mov', 'movzx', 'movsx',
  'movsxd', 'cmov', 'setcc', 'xchg', 'xadd', 'cmpxchg', 'bswap', 'convert', 'convertDouble', 'lahf', 'sahf', 'bitTest', 'bsf', 'bsr',
  'popcnt', 'lzcnt', 'tzcnt', 'daa', 'das', 'aaa', 'aas', 'aam', 'aad', 'flagOp',
]);
const table = buildOpcodeTable();
const tableOpcodes = [...new Set([...allEntries(table)].filter(({ map, entry }) => map <= 1 && GENERATED_HANDLERS.has(entry.handler) && !(entry.handler === 'flagOp' && (entry.sub === 3 || entry.sub === 4))).map(({ map, opcode }) => map * 256 + opcode))];

function generatedCode(bits: OracleBits, memory = false): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(fc.constantFrom(...tableOpcodes), fc.constantFrom(-1, 0x66, 0xf3), fc.nat(15), fc.boolean(), fc.nat(255), fc.uint8Array({ minLength: 8, maxLength: 8 }))
    .map(([opcode, prefix, rex, useRex, reg, immediates]) => {
      // Register forms (mod 3), or [rsi]/[r14] (mod 0, rm 6) for memory forms.
      const modrm = memory ? ((reg << 3) & 0x38) | 6 : 0xc0 | reg;
      const bytes: number[] = [];
      if (prefix >= 0) bytes.push(prefix);
      if (bits === 64 && useRex) bytes.push(0x40 | rex);
      if (opcode >= 256) bytes.push(0x0f);
      bytes.push(opcode & 0xff, modrm, ...immediates);
      const code = Uint8Array.from(bytes);
      const instruction = decoder.decode({ byteAt: (index) => code[index] ?? 0 }, bits === 64 ? CodeMode.Bits64 : CodeMode.Bits32, new Instruction());
      return { code: code.subarray(0, instruction.length), instruction };
    })
    .filter(({ instruction }) => {
      const handler = instruction.entry.handler;
      if (!GENERATED_HANDLERS.has(handler) || instruction.hasMemory !== memory) return false;
      // FS/GS bases differ between the host process and the interpreter (random bytes after a REX-looking opcode can make one).
      if (instruction.segmentOverride >= 4) return false;
      // A register bit offset may reach far outside the memory page; other groups cover it.
      if (memory && handler === 'bitTest' && instruction.kind1 !== OperandKind.Immediate) return false;
      // CLI/STI depend on privilege (the host runs the case at CPL 3, the interpreter at 0).
      if (handler === 'flagOp' && (instruction.sub === 3 || instruction.sub === 4)) return false;
      // Results the SDM leaves undefined: BSWAP of a 16-bit register, 16-bit SHLD/SHRD past 16 bits.
      return !((handler === 'bswap' || handler === 'shld' || handler === 'shrd') && instruction.operandSize === 2);
    })
    .map(({ code }) => Uint8Array.from(code));
}

function generatedCases(bits: OracleBits, memory = false): fc.Arbitrary<OracleCase[]> {
  const pointers = memory ? [Reg.rsi, Reg.r14] : [];
  return fc.array(oracleCase({ bits, code: generatedCode(bits, memory), pointerRegisters: pointers, freeStackPointer: true, memoryLength: memory ? 4096 : 0 }), {
    minLength: 150,
    maxLength: 150,
  });
}

describe.skipIf(host.skip)('interpreter against the host CPU', () => {
  test.prop([generatedCases(64)], { numRuns: 4, endOnFailure: true })('generated from the opcode table, 64-bit register forms', async (cases) => {
    await compare(cases);
  });

  test.prop([generatedCases(64, true)], { numRuns: 3, endOnFailure: true })('generated from the opcode table, 64-bit memory forms', async (cases) => {
    await compare(cases);
  });

  for (const [name, width, templates] of GROUPS.filter(([, width]) => width === 64)) {
    test.prop([casesFor(width, templates)], { numRuns: 4, endOnFailure: true })(name, async (cases) => {
      await compare(cases);
    });
  }
});

describe.skipIf(host.skip32)('interpreter against the host CPU, 32-bit code', () => {
  test.prop([generatedCases(32)], { numRuns: 4, endOnFailure: true })('generated from the opcode table, 32-bit register forms', async (cases) => {
    await compare(cases);
  });

  for (const [name, width, templates] of GROUPS.filter(([, width]) => width === 32)) {
    test.prop([casesFor(width, templates)], { numRuns: 4, endOnFailure: true })(name, async (cases) => {
      await compare(cases);
    });
  }
});
