import { existsSync, readFileSync } from 'node:fs';
import { fc, test } from '@fast-check/vitest';
import { describe } from 'vitest';
import { TSVIRT_MAX } from '../cpuid/models.js';
import { Decoder } from '../decoder/decoder.js';
import { buildOpcodeTable } from '../decoder/opcode-table.js';
import { compareWithHost, type IntegerTemplate, templateCases } from '../testing/integer-oracle.js';
import { InterpreterCaseRunner } from '../testing/interpreter-case.js';
import { type OracleBits, type OracleCase, Reg, registerValue } from '../testing/oracle/index.js';
import { oracleForTests } from '../testing/oracle/oracle-for-tests.js';

/*
 * BMI1, BMI2, ADX (and TZCNT) against the host CPU, in 64- and 32-bit code:
 * registers, memory, RIP and the flags the SDM defines must match, and an
 * encoding the host rejects (VEX.L = 1, a prefix before VEX, a reserved map,
 * VEX.vvvv set where unused) must raise the same exception. Operands come
 * from arbitraries aimed at the edges: BEXTR start and length and BZHI
 * indexes past the operand size, PDEP/PEXT masks empty, full, single bits and
 * runs, shift counts of any size (masked by the instruction).
 */

const host = await oracleForTests({ suite: 'the BMI host-oracle tests' });
const hostFlags = new Set(existsSync('/proc/cpuinfo') ? (/^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '').trim().split(/\s+/) : []);
const decoder = new Decoder(buildOpcodeTable(), TSVIRT_MAX.features);
const runner = new InterpreterCaseRunner('tsvirt-max');

const sizeEdges = fc.oneof(fc.nat(70), fc.nat(255));
/** BEXTR control: start in bits 7:0 and length in 15:8 (often past the operand size), anything above. */
const fieldControl = (bits: OracleBits): fc.Arbitrary<bigint> =>
  fc.tuple(sizeEdges, sizeEdges, registerValue(bits)).map(([start, length, rest]) => BigInt.asUintN(bits, (rest & ~0xffffn) | (BigInt(length) << 8n) | BigInt(start)));
/** BZHI index in bits 7:0, anything above. */
const bitIndex = (bits: OracleBits): fc.Arbitrary<bigint> =>
  fc.tuple(sizeEdges, registerValue(bits)).map(([index, rest]) => BigInt.asUintN(bits, (rest & ~0xffn) | BigInt(index)));
/** PDEP/PEXT masks: empty, full, one bit, a run of bits, anything. */
const bitMask = (bits: OracleBits): fc.Arbitrary<bigint> =>
  fc.oneof(
    fc.constant(0n),
    fc.constant((1n << BigInt(bits)) - 1n),
    fc.nat(bits - 1).map((bit) => 1n << BigInt(bit)),
    fc.tuple(fc.nat(bits - 1), fc.nat(bits)).map(([from, length]) => BigInt.asUintN(bits, ((1n << BigInt(length)) - 1n) << BigInt(from))),
    registerValue(bits),
  );
/** Shift counts: small ones, counts past the width, anything. */
const shiftCount = (bits: OracleBits): fc.Arbitrary<bigint> => fc.oneof(fc.nat(140).map(BigInt), registerValue(bits));

const { rcx, rdx, rsi, r9, r10, r13 } = Reg;
const M = [rsi];

async function compare(cases: OracleCase[]): Promise<void> {
  await compareWithHost(host.require(), runner, decoder, cases);
}

const bmi1_64: IntegerTemplate[] = [
  { asm: 'andn rax, rbx, rcx' }, { asm: 'andn r9d, r10d, r11d' }, { asm: 'andn r8, r13, qword [rsi]', pointers: M },
  { asm: 'bextr rax, rbx, rcx', operands: [[rcx, fieldControl]] }, { asm: 'bextr eax, ebx, ecx', operands: [[rcx, fieldControl]] },
  { asm: 'bextr r9, qword [rsi], r10', pointers: M, operands: [[r10, fieldControl]] },
  { asm: 'blsi rax, rbx' }, { asm: 'blsi ecx, dword [rsi]', pointers: M }, { asm: 'blsmsk r8, r9' }, { asm: 'blsmsk eax, ebx' },
  { asm: 'blsr rax, rbx' }, { asm: 'blsr r13d, dword [rsi]', pointers: M },
  { asm: 'tzcnt rax, rbx' }, { asm: 'tzcnt ecx, edx' }, { asm: 'tzcnt si, di' }, { asm: 'tzcnt r9, qword [rsi]', pointers: M },
];
const bmi2_64: IntegerTemplate[] = [
  { asm: 'bzhi rax, rbx, rcx', operands: [[rcx, bitIndex]] }, { asm: 'bzhi eax, ebx, ecx', operands: [[rcx, bitIndex]] },
  { asm: 'bzhi r8, qword [rsi], r9', pointers: M, operands: [[r9, bitIndex]] },
  { asm: 'mulx rax, rbx, rcx' }, { asm: 'mulx eax, ebx, ecx' }, { asm: 'mulx rax, rax, rcx' }, { asm: 'mulx r8, r9, qword [rsi]', pointers: M },
  { asm: 'mulx rbx, rcx, rdx' },
  { asm: 'pdep rax, rbx, rcx', operands: [[rcx, bitMask]] }, { asm: 'pdep eax, ebx, ecx', operands: [[rcx, bitMask]] }, { asm: 'pdep r9, r10, qword [rsi]', pointers: M },
  { asm: 'pext rax, rbx, rcx', operands: [[rcx, bitMask]] }, { asm: 'pext eax, ebx, ecx', operands: [[rcx, bitMask]] }, { asm: 'pext r9, r10, qword [rsi]', pointers: M },
  ...[0, 1, 31, 32, 45, 63, 64, 200].map((count) => ({ asm: `rorx rax, rbx, ${count}` })),
  ...[0, 5, 31, 32, 255].map((count) => ({ asm: `rorx ecx, edx, ${count}` })), { asm: 'rorx r8, qword [rsi], 17', pointers: M },
  ...['sarx', 'shlx', 'shrx'].flatMap((op) => [
    { asm: `${op} rax, rbx, rcx`, operands: [[rcx, shiftCount]] as const }, { asm: `${op} eax, ebx, ecx`, operands: [[rcx, shiftCount]] as const },
    { asm: `${op} r8, qword [rsi], r13`, pointers: M, operands: [[r13, shiftCount]] as const },
  ]),
];
const adx64: IntegerTemplate[] = [
  { asm: 'adcx rax, rbx' }, { asm: 'adcx ecx, edx' }, { asm: 'adox rax, rbx' }, { asm: 'adox r9d, dword [rsi]', pointers: M },
  { asm: 'adcx r8, qword [rsi]', pointers: M }, { asm: 'adcx rax, rbx\nadox rcx, rdx\nadcx r8, r9\nadox r10, r11' },
];
/** Encodings the host rejects (#UD) or treats specially, written as bytes NASM would not produce. */
const encodings64: IntegerTemplate[] = [
  { asm: 'db 0xc4, 0xe2, 0xe4, 0xf2, 0xc1' }, // ANDN with VEX.L = 1
  ...[0x66, 0xf2, 0xf3, 0xf0, 0x48, 0x40].map((prefix) => ({ asm: `db 0x${prefix.toString(16)}, 0xc4, 0xe2, 0xe0, 0xf2, 0xc1` })), // a prefix before VEX
  { asm: 'db 0xc4, 0xe0, 0xe0, 0xf2, 0xc1' }, { asm: 'db 0xc4, 0xe4, 0xe0, 0xf2, 0xc1' }, // VEX.mmmmm 0 and 4
  { asm: 'db 0xc4, 0xe3, 0xf3, 0xf0, 0xc3, 0x05' }, // RORX with VEX.vvvv != 1111b
  { asm: 'db 0xc4, 0xe2, 0xe0, 0xf3, 0xc3' }, // group 17 /0
  { asm: 'db 0xc4, 0xe2, 0xe1, 0xf5, 0xc3' }, // 0F38 F5 with VEX.pp = 66
  { asm: 'db 0x0f, 0x38, 0xf6, 0xc3' }, { asm: 'db 0xf2, 0x0f, 0x38, 0xf6, 0xc3' }, // 0F 38 F6 without 66/F3
  { asm: 'db 0x67, 0xc4, 0xe2, 0xe0, 0xf2, 0x06', pointers: M }, // 32-bit addressing: andn rax, rbx, [esi]
  { asm: 'db 0x2e, 0xc4, 0xe2, 0x60, 0xf2, 0xc1' }, // a segment prefix is allowed
  { asm: 'db 0xc4, 0x42, 0x20, 0xf2, 0xc9' }, // ANDN r9d, r11d, r9d: VEX.R, B and vvvv[3] select r8–r15
];

const bmi32: IntegerTemplate[] = [
  { asm: 'andn eax, ebx, ecx' }, { asm: 'andn edx, esi, dword [esi]', pointers: M },
  { asm: 'bextr eax, ebx, ecx', operands: [[rcx, fieldControl]] }, { asm: 'bextr edi, dword [esi], edx', pointers: M, operands: [[rdx, fieldControl]] },
  { asm: 'blsi eax, ebx' }, { asm: 'blsmsk ecx, dword [esi]', pointers: M }, { asm: 'blsr edx, edi' },
  { asm: 'tzcnt eax, ebx' }, { asm: 'tzcnt cx, dx' },
  { asm: 'bzhi eax, ebx, ecx', operands: [[rcx, bitIndex]] }, { asm: 'bzhi eax, dword [esi], edx', pointers: M, operands: [[rdx, bitIndex]] },
  { asm: 'mulx eax, ebx, ecx' }, { asm: 'mulx edi, edi, dword [esi]', pointers: M },
  { asm: 'pdep eax, ebx, ecx', operands: [[rcx, bitMask]] }, { asm: 'pext edi, ebx, edx', operands: [[rdx, bitMask]] },
  { asm: 'rorx eax, ebx, 7' }, { asm: 'rorx eax, dword [esi], 32', pointers: M },
  { asm: 'sarx eax, ebx, ecx', operands: [[rcx, shiftCount]] }, { asm: 'shlx eax, dword [esi], ecx', pointers: M, operands: [[rcx, shiftCount]] },
  { asm: 'shrx edi, ebx, edx', operands: [[rdx, shiftCount]] },
  { asm: 'adcx eax, ebx' }, { asm: 'adox ecx, dword [esi]', pointers: M }, { asm: 'adcx eax, ebx\nadox ecx, edx\nadcx edi, eax' },
];
const encodings32: IntegerTemplate[] = [
  { asm: 'db 0xc4, 0xe2, 0xe0, 0xf2, 0xc1' }, // VEX.W1 is ignored outside 64-bit mode: andn eax, ebx, ecx
  { asm: 'db 0xc4, 0xe2, 0x20, 0xf2, 0xc1' }, // VEX.vvvv[3] is ignored
  { asm: 'db 0xc4, 0xc2, 0x60, 0xf2, 0xc1' }, // VEX.B is ignored
  { asm: 'db 0xc4, 0xe2, 0x64, 0xf2, 0xc1' }, // VEX.L = 1
  { asm: 'db 0x66, 0xc4, 0xe2, 0x60, 0xf2, 0xc1' }, { asm: 'db 0xf3, 0xc4, 0xe2, 0x60, 0xf2, 0xc1' },
  { asm: 'db 0xc4, 0xe3, 0x73, 0xf0, 0xc3, 0x05' }, // RORX with VEX.vvvv != 1111b
];

const GROUPS: Array<[name: string, feature: string, bits: OracleBits, templates: IntegerTemplate[]]> = [
  ['BMI1 and TZCNT, 64-bit', 'bmi1', 64, bmi1_64],
  ['BMI2, 64-bit', 'bmi2', 64, bmi2_64],
  ['ADX, 64-bit', 'adx', 64, adx64],
  ['VEX encodings and prefixes, 64-bit', 'bmi2', 64, encodings64],
  ['BMI1, BMI2 and ADX, 32-bit', 'adx', 32, bmi32],
  ['VEX encodings, 32-bit', 'bmi2', 32, encodings32],
];

describe.skipIf(host.skip)('BMI1, BMI2 and ADX against the host CPU', () => {
  for (const [name, feature, bits, templates] of GROUPS) {
    // The 32-bit group needs all three features; CI machines have them (a missing one fails there).
    const present = bits === 32 ? ['bmi1', 'bmi2', 'adx'].every((flag) => hostFlags.has(flag)) : hostFlags.has(feature) && hostFlags.has('bmi1');
    const title = present ? name : `${name} (skipped: the host CPU lacks ${feature} in /proc/cpuinfo)`;
    describe.skipIf((!present && !process.env.CI) || (bits === 32 && host.skip32))(title, () => {
      test.prop([templateCases(bits, templates, 80)], { numRuns: 4, endOnFailure: true })('matches the host', async (cases) => {
        await compare(cases);
      });
    });
  }
});
