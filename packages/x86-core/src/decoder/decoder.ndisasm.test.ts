import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fc } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { TSVIRT_MAX } from '../cpuid/models.js';
import { nasmAvailable } from '../testing/assemble.js';
import { Decoder } from './decoder.js';
import { CodeMode, Instruction } from './instruction.js';
import { buildOpcodeTable } from './opcode-table.js';

/**
 * Instruction lengths against an independent decoder: NASM's ndisasm. A wrong
 * length is the worst decoder bug there is (the next instruction starts in
 * the middle of this one), and it hides well — PUSH SS once took a ModRM
 * byte and the Linux i386 page-fault entry ran three bytes of garbage.
 */
const decoder = new Decoder(buildOpcodeTable(), TSVIRT_MAX.features);
const SLOT = 16;
const MODES = [
  { mode: CodeMode.Bits16, bits: 16 },
  { mode: CodeMode.Bits32, bits: 32 },
  { mode: CodeMode.Bits64, bits: 64 },
] as const;

/** Bytes that make decoding interesting: prefixes, escapes, ModRM forms that take SIB and displacements. */
const interestingByte = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 255 }) },
  { weight: 2, arbitrary: fc.constantFrom(0x66, 0x67, 0xf2, 0xf3, 0xf0, 0x2e, 0x26, 0x64, 0x48, 0x41, 0x0f, 0x38, 0x3a) },
  { weight: 1, arbitrary: fc.constantFrom(0x04, 0x05, 0x44, 0x84, 0x24, 0x25, 0x06, 0x16, 0x17, 0x1e, 0x1f, 0x07) },
);

/** ndisasm's length for the instruction at each slot start ("db" lines are what it cannot decode). */
function ndisasmLengths(bytes: Uint8Array, bits: number, count: number): Array<number | undefined> {
  const directory = mkdtempSync(path.join(tmpdir(), 'tsvirt-ndisasm-'));
  try {
    const file = path.join(directory, 'code.bin');
    writeFileSync(file, bytes);
    const syncs = Array.from({ length: count }, (_, index) => ['-s', String(index * SLOT)]).flat();
    const listing = execFileSync('ndisasm', ['-b', String(bits), ...syncs, file], { encoding: 'utf8', maxBuffer: 64 << 20 });
    const lengths = new Array<number | undefined>(count).fill(undefined);
    let current = -1;
    for (const line of listing.split('\n')) {
      // Long encodings continue on the next line as "   -FE13".
      const continuation = /^\s+-([0-9A-F]+)$/.exec(line);
      if (continuation !== null) {
        if (current >= 0 && lengths[current] !== undefined) lengths[current]! += continuation[1]!.length / 2;
        continue;
      }
      const match = /^([0-9A-F]{8})\s+([0-9A-F]+)\s+(.*)$/.exec(line);
      if (match === null) continue;
      const offset = Number.parseInt(match[1]!, 16);
      current = offset % SLOT === 0 ? offset / SLOT : -1;
      if (current < 0) continue;
      const text = match[3]!;
      // "db" is what ndisasm cannot decode; a lone prefix ("fs", "rep") means it gave up on the opcode after it;
      // it folds WAIT into the next x87 instruction, which the CPU executes as two.
      const undecoded = text.startsWith('db ') || !text.includes(' ') && match[2]!.length === 2 || /^(66|67|F2|F3|F0|2E|36|3E|26|64|65|4[0-9A-F])*9B/.test(match[2]!);
      lengths[current] = undecoded ? undefined : match[2]!.length / 2;
    }
    return lengths;
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

describe('decoder lengths against ndisasm', () => {
  it.skipIf(!nasmAvailable() && !process.env.CI)('agree for random byte sequences in 16-, 32- and 64-bit code (needs nasm, which has ndisasm)', () => {
    const cases = fc.sample(fc.uint8Array({ minLength: SLOT, maxLength: SLOT }).chain((tail) => fc.array(interestingByte, { minLength: 1, maxLength: 4 }).map((head) => Uint8Array.from([...head, ...tail]).subarray(0, SLOT))), { numRuns: 20_000, seed: Number(process.env.FC_SEED ?? 0) });
    let compared = 0;
    const mismatches: string[] = [];
    for (const { mode, bits } of MODES) {
      const image = new Uint8Array(cases.length * SLOT);
      cases.forEach((bytes, index) => image.set(bytes, index * SLOT));
      const reference = ndisasmLengths(image, bits, cases.length);
      cases.forEach((bytes, index) => {
        const instruction = decoder.decode({ byteAt: (offset) => bytes[offset] ?? 0 }, mode, new Instruction());
        const theirs = reference[index];
        // Compare only what both decode: ndisasm knows VEX/3DNow!/AVX forms we reject with #UD, and we know a few it prints as db.
        if (theirs === undefined || instruction.entry.handler === 'ud' || instruction.entry.handler === 'tooLong') return;
        compared++;
        if (instruction.length !== theirs) mismatches.push(`${bits}-bit ${Buffer.from(bytes).toString('hex')}: ours ${instruction.length}, ndisasm ${theirs}`);
      });
    }
    expect(mismatches.slice(0, 20)).toEqual([]);
    expect(compared).toBeGreaterThan(3000);
  });
});
