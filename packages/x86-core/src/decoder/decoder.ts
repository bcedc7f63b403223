import { EntryFlag, type Feature, type OpcodeEntry, type Slot } from './opcode-entry.js';
import type { OpcodeTable } from './opcode-table.js';
import { CodeMode, HIGH_BYTE_REGISTER, Instruction, type InstructionRun, OpcodeMap, OperandKind, Repeat, RIP_BASE } from './instruction.js';

/** Supplies instruction bytes; `offset` counts from the instruction's first byte. May throw a guest fault. */
export interface CodeSource {
  byteAt(offset: number): number;
}

const MAX_LENGTH = 15;
const SEGMENT_PREFIX: Record<number, number> = { 0x26: 0, 0x2e: 1, 0x36: 2, 0x3e: 3, 0x64: 4, 0x65: 5 };
const REGISTER_16_BASE = [3, 3, 5, 5, 6, 7, 5, 3];
const REGISTER_16_INDEX = [6, 7, 6, 7, -1, -1, -1, -1];

/**
 * Turns bytes into {@link Instruction}s using the opcode table. Unknown or
 * disallowed encodings decode to the table's invalid entry (#UD when run);
 * the decoder itself never throws except for faults the code source raises.
 */
export class Decoder {
  private position = 0;
  private source!: CodeSource;
  private tooLong = false;
  private immediateSeen = false;
  /** A strict prefix choice consumed the 66 prefix: it does not change the operand size. */
  private operandSizeConsumed = false;
  /** VEX.pp (0 none, 1 66, 2 F3, 3 F2) and VEX.L of the instruction being decoded. */
  private vexPrefix = 0;
  private vexLength = 0;

  constructor(
    private readonly table: OpcodeTable,
    private readonly features: ReadonlySet<Feature>,
    private readonly link: (entry: OpcodeEntry, instruction: Instruction) => InstructionRun = () => noRun,
  ) {}

  /** Decodes one instruction into `out` (every field is overwritten). */
  decode(source: CodeSource, mode: CodeMode, out: Instruction): Instruction {
    this.source = source;
    this.position = 0;
    this.tooLong = false;
    this.immediateSeen = false;
    this.operandSizeConsumed = false;
    reset(out, mode);
    const long = mode === CodeMode.Bits64;
    let operandSizePrefix = false;
    let addressSizePrefix = false;
    let byte = this.next();
    for (;;) {
      if (byte === 0x66) operandSizePrefix = true;
      else if (byte === 0x67) addressSizePrefix = true;
      else if (byte === 0xf0) out.lock = true;
      else if (byte === 0xf2) out.repeat = Repeat.RepeatNot;
      else if (byte === 0xf3) out.repeat = Repeat.Repeat;
      else if (SEGMENT_PREFIX[byte] !== undefined) {
        const segment = SEGMENT_PREFIX[byte]!;
        // In 64-bit mode only FS and GS overrides mean anything.
        if (!long || segment >= 4) out.segmentOverride = segment;
      } else if (long && (byte & 0xf0) === 0x40) {
        out.rex = byte;
        byte = this.next();
        // A REX prefix counts only immediately before the opcode.
        if ((byte & 0xf0) === 0x40 || isLegacyPrefix(byte)) {
          out.rex = 0;
          continue;
        }
        break;
      } else break;
      byte = this.next();
    }
    out.operandSizePrefix = operandSizePrefix;
    let map = 0;
    // VEX (SDM vol. 2, 2.3.5). Outside 64-bit mode C4/C5 are LES/LDS unless the next byte looks like ModRM.mod = 3.
    if ((byte === 0xc4 || byte === 0xc5) && (long || this.peek() >= 0xc0)) {
      // 66, F2, F3, LOCK or REX before VEX: #UD.
      const badPrefix = out.rex !== 0 || operandSizePrefix || out.repeat !== Repeat.None || out.lock;
      map = this.decodeVex(out, byte === 0xc4, long);
      byte = this.next();
      if (badPrefix || map < 0) return this.finish(out, this.table.invalid);
      // VEX.pp is the mandatory prefix; it never changes the operand size.
      operandSizePrefix = this.vexPrefix === 1;
      out.repeat = this.vexPrefix === 2 ? Repeat.Repeat : this.vexPrefix === 3 ? Repeat.RepeatNot : Repeat.None;
      this.operandSizeConsumed = true;
    } else if (byte === 0x0f) {
      byte = this.next();
      if (byte === 0x38) { map = 2; byte = this.next(); }
      else if (byte === 0x3a) { map = 3; byte = this.next(); }
      else map = 1;
    }
    out.map = map;
    out.opcode = byte;
    let slot: Slot | undefined = this.table.maps[map]![byte];
    if (map === 0 && byte === 0x90 && (out.rex & 1) !== 0) slot = this.table.exchangeWithAccumulator;
    let modrm = -1;
    let found: OpcodeEntry | undefined;
    while (slot !== undefined && found === undefined) {
      switch (slot.kind) {
        case 'entry': found = slot; break;
        case 'mode': slot = long ? slot.long : slot.legacy; break;
        case 'prefix': slot = this.choosePrefixed(slot, out, operandSizePrefix); break;
        case 'group':
          if (modrm < 0) modrm = this.next();
          slot = (modrm >> 6 === 3 && slot.registerForm !== undefined ? slot.registerForm : slot.memory)[(modrm >> 3) & 7];
          break;
        case 'rm':
          slot = slot.byRm[modrm & 7];
          break;
        case 'mod':
          if (modrm < 0) modrm = this.next();
          slot = modrm >> 6 === 3 ? slot.register : slot.memory;
          break;
      }
    }
    let chosen = found ?? this.table.invalid;
    if (chosen.feature !== undefined && !this.features.has(chosen.feature)) chosen = this.table.invalid;
    if ((chosen.flags & EntryFlag.Invalid64) !== 0 && long) chosen = this.table.invalid;
    if ((chosen.flags & EntryFlag.Only64) !== 0 && !long) chosen = this.table.invalid;
    // VEX.L must be 0 for the LZ forms, and VEX.vvvv must be 1111b (register 0 here) when no operand uses it.
    if (out.vex && (((chosen.flags & EntryFlag.VexLZ) !== 0 && this.vexLength !== 0) || (out.vexRegister !== 0 && !chosen.operands.includes('By')))) {
      chosen = this.table.invalid;
    }
    if (chosen === this.table.invalid) {
      return this.finish(out, chosen);
    }
    // Sizes.
    const defaultWide = mode !== CodeMode.Bits16;
    const rexW = (out.rex & 8) !== 0;
    let size: number;
    const flags = chosen.flags;
    if (this.operandSizeConsumed) operandSizePrefix = false;
    if ((flags & EntryFlag.SizeY) !== 0) size = long && rexW ? 8 : 4;
    else if (long && (flags & EntryFlag.Force64) !== 0) size = 8;
    else if (long && (flags & EntryFlag.Default64) !== 0) size = rexW || !operandSizePrefix ? 8 : 2;
    else if (rexW) size = 8;
    else size = defaultWide !== operandSizePrefix ? 4 : 2;
    if ((flags & EntryFlag.Size32or64) !== 0) size = long ? 8 : 4;
    out.wideSize = size;
    out.operandSize = (flags & EntryFlag.Byte) !== 0 ? 1 : size;
    out.addressSize = long ? (addressSizePrefix ? 4 : 8) : defaultWide !== addressSizePrefix ? 4 : 2;
    // ModRM and operands.
    const operands = chosen.operands;
    const needsModRM = modrm >= 0 || operands.some(usesModRM);
    if (needsModRM) {
      if (modrm < 0) modrm = this.next();
      out.hasModRM = true;
      out.mod = modrm >> 6;
      out.regField = ((modrm >> 3) & 7) | ((out.rex & 4) << 1);
      out.rmField = (modrm & 7) | ((out.rex & 1) << 3);
      const forceRegister = (flags & EntryFlag.ForceRegister) !== 0;
      if (out.mod !== 3 && !forceRegister) {
        this.decodeMemory(out, modrm, long);
        out.displacementHigh = out.displacement >> 31;
      }
      else if ((flags & EntryFlag.MemoryOnly) !== 0) return this.finish(out, this.table.invalid);
      if (out.mod !== 3 && (flags & EntryFlag.RegisterOnly) !== 0) return this.finish(out, this.table.invalid);
    }
    // Only six segment registers exist (REX.R does not extend the Sreg field).
    if (operands.includes('Sw')) {
      out.regField &= 7;
      if (out.regField > 5) return this.finish(out, this.table.invalid);
    }
    if (out.lock && ((flags & EntryFlag.Lockable) === 0 || !out.hasMemory)) return this.finish(out, this.table.invalid);
    for (let i = 0; i < operands.length; i++) this.decodeOperand(out, operands[i]!, i);
    if (out.segmentOverride >= 0) out.segment = out.segmentOverride;
    return this.finish(out, chosen);
  }

  /**
   * Reads the rest of a VEX prefix (the C4/C5 byte is consumed): sets REX's bits (64-bit mode only),
   * `vex` and `vexRegister`, and `vexPrefix`/`vexLength`; returns the opcode map, or -1 for a reserved VEX.mmmmm.
   */
  private decodeVex(out: Instruction, threeByte: boolean, long: boolean): number {
    const first = this.next();
    // R, X, B and vvvv are stored inverted. Outside 64-bit mode R and X are 1 (checked above), B and vvvv[3] are ignored.
    let rex = ((~first >> 5) & 4);
    let map = 1;
    let last = first;
    if (threeByte) {
      rex |= (~first >> 5) & 3;
      map = first & 0x1f;
      last = this.next();
      rex |= (last >> 4) & 8;
    }
    out.vex = true;
    out.rex = long ? 0x40 | rex : 0;
    out.vexRegister = (~last >> 3) & (long ? 15 : 7);
    this.vexLength = (last >> 2) & 1;
    this.vexPrefix = last & 3;
    return map >= 1 && map <= 3 ? OpcodeMap.Vex0F + map - 1 : -1;
  }

  private finish(out: Instruction, chosen: OpcodeEntry): Instruction {
    if (this.tooLong) chosen = this.table.tooLong;
    out.entry = chosen;
    out.sub = chosen.sub;
    out.length = Math.min(this.position, MAX_LENGTH);
    out.run = this.link(chosen, out);
    return out;
  }

  private choosePrefixed(slot: Extract<Slot, { kind: 'prefix' }>, out: Instruction, operandSizePrefix: boolean): Slot | undefined {
    let choice: Slot | undefined;
    if (slot.strict) {
      if (out.repeat === Repeat.Repeat) choice = slot.repeat;
      else if (out.repeat === Repeat.RepeatNot) choice = slot.repeatNot;
      else if (operandSizePrefix) {
        choice = slot.operandSize;
        this.operandSizeConsumed = true;
      } else choice = slot.none;
      out.repeat = Repeat.None;
      return choice;
    }
    if (out.repeat === Repeat.Repeat && slot.repeat !== undefined) {
      choice = slot.repeat;
      if (choice.kind === 'entry' && choice.feature !== undefined && !this.features.has(choice.feature) && slot.none !== undefined) {
        choice = slot.none;
      } else {
        out.repeat = Repeat.None;
        return choice;
      }
    } else if (out.repeat === Repeat.RepeatNot && slot.repeatNot !== undefined) {
      choice = slot.repeatNot;
    } else if (operandSizePrefix && slot.operandSize !== undefined) choice = slot.operandSize;
    else choice = slot.none;
    return choice;
  }

  private decodeMemory(out: Instruction, modrm: number, long: boolean): void {
    out.hasMemory = true;
    const mod = modrm >> 6;
    const rm = modrm & 7;
    if (out.addressSize === 2) {
      out.segment = 3;
      if (mod === 0 && rm === 6) {
        out.displacement = this.next() | (this.next() << 8);
        return;
      }
      out.base = REGISTER_16_BASE[rm]!;
      out.index = REGISTER_16_INDEX[rm]!;
      if (out.base === 5) out.segment = 2;
      if (mod === 1) out.displacement = (this.next() << 24) >> 24;
      else if (mod === 2) out.displacement = this.next() | (this.next() << 8);
      return;
    }
    const rexB = (out.rex & 1) << 3;
    out.segment = 3;
    if (rm === 4) {
      const sib = this.next();
      out.scale = sib >> 6;
      const index = ((sib >> 3) & 7) | ((out.rex & 2) << 2);
      out.index = index === 4 ? -1 : index;
      const base = sib & 7;
      if (base === 5 && mod === 0) {
        out.base = -1;
        out.displacement = this.next32();
        return;
      }
      out.base = base | rexB;
    } else if (rm === 5 && mod === 0) {
      out.base = long ? RIP_BASE : -1;
      out.displacement = this.next32();
      return;
    } else {
      out.base = rm | rexB;
    }
    if (out.base === 4 || out.base === 5) out.segment = 2;
    if (mod === 1) out.displacement = (this.next() << 24) >> 24;
    else if (mod === 2) out.displacement = this.next32();
  }

  private decodeOperand(out: Instruction, spec: string, position: number): void {
    let kind: number = OperandKind.None;
    let register = 0;
    const first = spec.charCodeAt(0);
    const isByte = spec.length === 2 && spec.charCodeAt(1) === 98; /* 'b' */
    switch (first) {
      case 69: /* E */ case 82: /* R */ case 77: /* M */
        if (out.hasMemory) kind = OperandKind.Memory;
        else { kind = OperandKind.Register; register = this.byteRegister(out, out.rmField, isByte); }
        break;
      case 71: /* G */
        kind = OperandKind.Register; register = this.byteRegister(out, out.regField, isByte);
        break;
      case 66: /* B: the general register VEX.vvvv names */
        kind = OperandKind.Register; register = out.vexRegister;
        break;
      // SIMD operands (SDM vol. 2, A.2.1): V/P the ModRM.reg XMM/MMX register, W/Q the ModRM.rm register or
      // memory, U/N the ModRM.rm register only. MMX registers ignore REX.R and REX.B.
      case 86: /* V */
        kind = OperandKind.Register; register = out.regField;
        break;
      case 80: /* P */
        kind = OperandKind.Register; register = out.regField & 7;
        break;
      case 87: /* W */ case 85: /* U */
        if (out.hasMemory) kind = OperandKind.Memory;
        else { kind = OperandKind.Register; register = out.rmField; }
        break;
      case 81: /* Q */ case 78: /* N */
        if (out.hasMemory) kind = OperandKind.Memory;
        else { kind = OperandKind.Register; register = out.rmField & 7; }
        break;
      case 90: /* Z */
        kind = OperandKind.Register; register = this.byteRegister(out, (out.opcode & 7) | ((out.rex & 1) << 3), isByte);
        break;
      case 73: /* I */
        kind = OperandKind.Immediate;
        this.decodeImmediate(out, spec);
        break;
      case 74: /* J */
        kind = OperandKind.Immediate;
        out.immediate = spec === 'Jb' ? (this.next() << 24) >> 24 : out.operandSize === 2 ? (this.next16() << 16) >> 16 : this.next32();
        out.immediateHigh = out.immediate < 0 ? -1 : 0;
        break;
      case 79: /* O */
        kind = OperandKind.Memory;
        out.hasMemory = true;
        out.segment = 3;
        if (out.addressSize === 2) out.displacement = this.next16();
        else if (out.addressSize === 4) out.displacement = this.next32();
        else { out.displacement = this.next32(); out.displacementHigh = this.next32(); }
        break;
      case 65: /* A: AL / Ap */
        if (spec === 'Ap') {
          // Signed like every other immediate (farTransfer makes the offset unsigned): a field that
          // ever holds a number outside int32 is stored boxed, and every instruction's reads pay for it.
          out.immediate = out.operandSize === 2 ? this.next16() : this.next32();
          out.immediate2 = this.next16();
          kind = OperandKind.Immediate;
        } else kind = OperandKind.Register;
        break;
      case 114: /* rAX */ case 101: /* eAX */
        kind = OperandKind.Register;
        break;
      case 67: /* CL, CS, Cd */
        if (spec === 'CL') { kind = OperandKind.Register; register = 1; }
        break;
      case 49: /* 1 */
        kind = OperandKind.Immediate; out.immediate = 1;
        break;
      default:
        break;
    }
    if (position === 0) { out.kind0 = kind; out.register0 = register; }
    else if (position === 1) { out.kind1 = kind; out.register1 = register; }
  }

  private decodeImmediate(out: Instruction, spec: string): void {
    let value: number;
    let high = 0;
    switch (spec) {
      case 'Ib': value = this.next(); break;
      case 'Ibs': value = (this.next() << 24) >> 24; high = value < 0 ? -1 : 0; break;
      case 'Iw': value = this.next16(); break;
      case 'Iz': value = out.operandSize === 2 ? this.next16() : this.next32(); high = value < 0 && out.operandSize === 8 ? -1 : 0; break;
      default: /* Iv */
        if (out.operandSize === 2) value = this.next16();
        else if (out.operandSize === 8) { value = this.next32(); high = this.next32(); }
        else value = out.operandSize === 1 ? this.next() : this.next32();
        break;
    }
    // A second immediate (ENTER's nesting level) goes to immediate2.
    if (this.immediateSeen) {
      out.immediate2 = value;
    } else {
      this.immediateSeen = true;
      out.immediate = value;
      out.immediateHigh = high;
    }
  }

  private byteRegister(out: Instruction, register: number, isByte: boolean): number {
    return isByte && out.rex === 0 && register >= 4 && register < 8 ? HIGH_BYTE_REGISTER + register - 4 : register;
  }

  /** The next byte without consuming it (0 past the length limit). */
  private peek(): number {
    return this.position < MAX_LENGTH ? this.source.byteAt(this.position) & 0xff : 0;
  }

  private next(): number {
    if (this.position >= MAX_LENGTH) {
      this.tooLong = true;
      return 0;
    }
    return this.source.byteAt(this.position++) & 0xff;
  }

  private next16(): number {
    return this.next() | (this.next() << 8);
  }

  private next32(): number {
    return this.next() | (this.next() << 8) | (this.next() << 16) | (this.next() << 24);
  }
}

const noRun: InstructionRun = () => {};

function isLegacyPrefix(byte: number): boolean {
  return byte === 0x66 || byte === 0x67 || byte === 0xf0 || byte === 0xf2 || byte === 0xf3 || SEGMENT_PREFIX[byte] !== undefined;
}

function usesModRM(spec: string): boolean {
  // ES, SS, CS, DS, FS and GS name a fixed segment register: no ModRM despite the E/S/C/D initial.
  if (spec.length === 2 && spec.charCodeAt(1) === 83 /* S */) return false;
  const c = spec.charCodeAt(0);
  return c === 69 || c === 71 || c === 77 || c === 82 || c === 83 /* Sw */ || (c === 67 && spec === 'Cd') || (c === 68 && spec === 'Dd') ||
    /* N P Q U V W */ c === 78 || c === 80 || c === 81 || c === 85 || c === 86 || c === 87;
}

function reset(out: Instruction, mode: CodeMode): void {
  out.mode = mode;
  out.block = undefined;
  out.segmentOverride = -1;
  out.segment = 3;
  out.repeat = 0;
  out.lock = false;
  out.rex = 0;
  out.operandSizePrefix = false;
  out.vex = false;
  out.vexRegister = 0;
  out.hasModRM = false;
  out.mod = 0;
  out.regField = 0;
  out.rmField = 0;
  out.hasMemory = false;
  out.base = -1;
  out.index = -1;
  out.scale = 0;
  out.displacement = 0;
  out.displacementHigh = 0;
  out.kind0 = OperandKind.None;
  out.register0 = 0;
  out.kind1 = OperandKind.None;
  out.register1 = 0;
  out.immediate = 0;
  out.immediateHigh = 0;
  out.immediate2 = 0;
}
