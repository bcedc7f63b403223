import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { TSVIRT_MAX } from '../cpuid/models.js';
import { assemble, nasmAvailable } from '../testing/assemble.js';
import { Decoder } from './decoder.js';
import { disassemble } from './disassembler.js';
import { CodeMode, Instruction } from './instruction.js';
import { buildOpcodeTable } from './opcode-table.js';

const decoder = new Decoder(buildOpcodeTable(), TSVIRT_MAX.features);
const BITS = { [CodeMode.Bits16]: 16, [CodeMode.Bits32]: 32, [CodeMode.Bits64]: 64 } as const;

function decodeBytes(bytes: Uint8Array, offset: number, mode: CodeMode): Instruction {
  return decoder.decode({ byteAt: (index) => bytes[offset + index] ?? 0 }, mode, new Instruction());
}

/** Disassembles each line's slot of 16 bytes (every instruction was padded to 16 by the assembler). */
function reassemble(lines: string[], mode: CodeMode): string[] {
  const code = assemble(`bits ${BITS[mode]}\n${lines.map((line) => `${line}\nalign 16, db 0x90`).join('\n')}\n`);
  return lines.map((_, index) => disassemble(decodeBytes(code, index * 16, mode)));
}

// Encodings NASM cannot express (MOVSXD with a 32/16-bit destination) or that have no disassembly to assemble.
function assemblable(instruction: Instruction): boolean {
  const handler = instruction.entry.handler;
  if (handler === 'ud' || handler === 'tooLong' || handler === 'fpuEscape') return false;
  return !(handler === 'movsxd' && instruction.operandSize !== 8);
}

const mode = fc.constantFrom(CodeMode.Bits16, CodeMode.Bits32, CodeMode.Bits64);

describe('decoder properties', () => {
  test.prop([fc.uint8Array({ minLength: 0, maxLength: 20 }), mode], { numRuns: 3000 })('random bytes never throw and stay within 15 bytes', (bytes, codeMode) => {
    const instruction = decodeBytes(bytes, 0, codeMode);
    expect(instruction.length).toBeGreaterThan(0);
    expect(instruction.length).toBeLessThanOrEqual(15);
    expect(typeof disassemble(instruction)).toBe('string');
  });

});

describe.skipIf(!nasmAvailable())('disassembler round trip through NASM', () => {
  test.prop([fc.array(fc.uint8Array({ minLength: 16, maxLength: 16 }), { minLength: 20, maxLength: 150 }), mode], { numRuns: 6 })(
    'disassembly assembles back to an instruction with the same disassembly',
    (samples, codeMode) => {
      const first = samples.map((bytes) => decodeBytes(bytes, 0, codeMode)).filter(assemblable).map(disassemble);
      const second = reassemble(first, codeMode);
      const third = reassemble(second, codeMode);
      // A fixed point after one round; the first round may only reorder XCHG's operands (NASM picks the short form).
      expect(third).toEqual(second);
      first.forEach((text, index) => {
        if (!text.startsWith('xchg ')) expect(second[index]).toBe(text);
      });
    },
  );
});
