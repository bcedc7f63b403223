import { entry, type OpcodeEntry, type Slot } from './opcode-entry.js';
import { oneByteMap } from './table-one-byte.js';
import { threeByte38Map, threeByte3AMap, twoByteMap } from './table-two-byte.js';
import { vexMaps } from './table-vex.js';

/**
 * The opcode table: one array of 256 slots per opcode map (one-byte, 0F,
 * 0F 38, 0F 3A, then the VEX maps 0F, 0F 38, 0F 3A: see {@link OpcodeMap}).
 * It is the single source for the decoder, the disassembler and generated tests.
 */
export interface OpcodeTable {
  readonly maps: ReadonlyArray<ReadonlyArray<Slot | undefined>>;
  /** XCHG r, rAX for 90 with REX.B (otherwise NOP). */
  readonly exchangeWithAccumulator: OpcodeEntry;
  /** What undefined encodings decode to. */
  readonly invalid: OpcodeEntry;
  /** What an instruction longer than 15 bytes decodes to (#GP). */
  readonly tooLong: OpcodeEntry;
}

export function buildOpcodeTable(): OpcodeTable {
  return {
    maps: [oneByteMap(), twoByteMap(), threeByte38Map(), threeByte3AMap(), ...vexMaps()],
    exchangeWithAccumulator: entry('xchg', 'Zv,rAX', 'xchg'),
    invalid: entry('(bad)', '', 'ud'),
    tooLong: entry('(too long)', '', 'tooLong'),
  };
}

/** Every entry reachable in the table, with where it sits (for tests and generators). */
export function* allEntries(table: OpcodeTable): Generator<{ map: number; opcode: number; entry: OpcodeEntry }> {
  const visit = function* (slot: Slot | undefined, map: number, opcode: number): Generator<{ map: number; opcode: number; entry: OpcodeEntry }> {
    if (slot === undefined) return;
    switch (slot.kind) {
      case 'entry': yield { map, opcode, entry: slot }; return;
      case 'group':
        for (const inner of slot.memory) yield* visit(inner, map, opcode);
        for (const inner of slot.registerForm ?? []) yield* visit(inner, map, opcode);
        return;
      case 'rm': for (const inner of slot.byRm) yield* visit(inner, map, opcode); return;
      case 'prefix':
        for (const inner of [slot.none, slot.operandSize, slot.repeat, slot.repeatNot]) yield* visit(inner, map, opcode);
        return;
      case 'mode': yield* visit(slot.legacy, map, opcode); yield* visit(slot.long, map, opcode); return;
      case 'mod': yield* visit(slot.memory, map, opcode); yield* visit(slot.register, map, opcode); return;
    }
  };
  for (let map = 0; map < table.maps.length; map++) {
    for (let opcode = 0; opcode < 256; opcode++) yield* visit(table.maps[map]![opcode], map, opcode);
  }
}
