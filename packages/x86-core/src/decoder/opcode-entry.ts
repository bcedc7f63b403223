import { Flag } from '../state/registers.js';

/**
 * The semantic routine an opcode runs. The interpreter maps every name to a
 * function; the disassembler and test generators only need the table.
 */
export type HandlerName =
  | 'alu' | 'test' | 'inc' | 'dec' | 'not' | 'neg' | 'mul' | 'imulOne' | 'imul' | 'div' | 'idiv'
  | 'shift' | 'shld' | 'shrd' | 'mov' | 'movFromSeg' | 'movToSeg' | 'lea' | 'movzx' | 'movsx' | 'movsxd'
  | 'cmov' | 'setcc' | 'xchg' | 'xadd' | 'cmpxchg' | 'cmpxchgPair' | 'bswap' | 'convert' | 'convertDouble'
  | 'push' | 'pop' | 'pushSeg' | 'popSeg' | 'pusha' | 'popa' | 'pushf' | 'popf' | 'enter' | 'leave' | 'lahf' | 'sahf'
  | 'jcc' | 'jmp' | 'jmpIndirect' | 'call' | 'callIndirect' | 'ret' | 'jmpFar' | 'jmpFarIndirect' | 'callFar'
  | 'callFarIndirect' | 'retFar' | 'loop' | 'jcxz' | 'int3' | 'int' | 'into' | 'int1' | 'iret' | 'hlt'
  | 'flagOp' | 'nop' | 'ud' | 'movs' | 'cmps' | 'stos' | 'lods' | 'scas' | 'ins' | 'outs' | 'in' | 'out' | 'xlat'
  | 'daa' | 'das' | 'aaa' | 'aas' | 'aam' | 'aad' | 'salc' | 'bitTest' | 'bsf' | 'bsr' | 'popcnt' | 'lzcnt' | 'tzcnt'
  | 'cpuid' | 'rdtsc' | 'rdtscp' | 'rdmsr' | 'wrmsr' | 'rdpmc' | 'descriptorTable' | 'lldt' | 'sldt' | 'ltr' | 'str'
  | 'lmsw' | 'smsw' | 'invlpg' | 'clts' | 'movFromCr' | 'movToCr' | 'movFromDr' | 'movToDr' | 'lar' | 'lsl'
  | 'verr' | 'verw' | 'arpl' | 'syscall' | 'sysret' | 'sysenter' | 'sysexit' | 'swapgs' | 'loadFarPointer'
  | 'bound' | 'fpuEscape' | 'movbe' | 'privilegedNop' | 'tooLong'
  | 'simdInteger' | 'simdShift' | 'simdShuffle' | 'simdMove' | 'simdInsert' | 'simdExtract' | 'simdSpecial' | 'simdExtend' | 'maskedMove' | 'emms' | 'stringCompare' | 'crc32'
  | 'x87Wait' | 'x87Control' | 'x87Load' | 'x87Store' | 'x87Exchange' | 'x87Arithmetic' | 'x87CompareRegister' | 'x87CompareFlags' | 'x87Unary' | 'x87Transcendental' | 'x87Environment' | 'fxsave'
  | 'mxcsr' | 'sseMove' | 'sseMoveScalar' | 'ssePartialMove' | 'sseArithmetic' | 'sseCompare' | 'sseCompareFlags' | 'sseHorizontal'
  | 'sseApproximate' | 'sseLogic' | 'sseShuffle' | 'sseMoveMask' | 'sseExtract' | 'sseConvert' | 'sseRound' | 'sseDotProduct'
  | 'xgetbv' | 'xsetbv' | 'xsave' | 'accessFlag' | 'protectionKeyRights'
  | 'andn' | 'bitFieldExtract' | 'lowestSetBit' | 'zeroHighBits' | 'multiplyFlagless' | 'parallelBits' | 'rotateFlagless' | 'shiftFlagless' | 'addCarryFlag';

/** CPUID features that gate an opcode (named as Linux's /proc/cpuinfo does). */
export type Feature =
  | 'popcnt' | 'lzcnt' | 'bmi1' | 'bmi2' | 'adx' | 'cx8' | 'cx16' | 'rdtscp' | 'movbe' | 'syscall' | 'sep' | 'msr' | 'tsc' | 'cmov' | 'lm' | 'fxsr'
  | 'mmx' | 'sse' | 'sse2' | 'sse3' | 'ssse3' | 'sse4_1' | 'sse4_2' | 'clflush' | 'monitor'
  | 'xsave' | 'xsaveopt' | 'smap' | 'pku';

export enum EntryFlag {
  /** Default operand size 64 in 64-bit mode (PUSH, POP, …); 66 selects 16. */
  Default64 = 1 << 0,
  /** Operand size always 64 in 64-bit mode (near branches). */
  Force64 = 1 << 1,
  /** Invalid in 64-bit mode. */
  Invalid64 = 1 << 2,
  /** Valid only in 64-bit mode. */
  Only64 = 1 << 3,
  /** The ModRM operand must be memory (#UD for a register). */
  MemoryOnly = 1 << 4,
  /** LOCK is allowed (with a memory destination). */
  Lockable = 1 << 5,
  /** Privileged: needs CPL 0 (checked by the handler, listed here for tests and docs). */
  Privileged = 1 << 6,
  /** The ModRM.mod field is ignored: always a register (MOV to/from CRn/DRn). */
  ForceRegister = 1 << 7,
  /** Operand size is fixed at 32 bits outside 64-bit mode and 64 in it (MOV CRn). */
  Size32or64 = 1 << 8,
  /** A REP prefix on this opcode means repetition (string instructions). */
  Repeatable = 1 << 9,
  /** Operand size 8 bits (byte form). */
  Byte = 1 << 10,
  /** A general-purpose operand of size `y` (Ey, Gy): 64 bits with REX.W in 64-bit mode, else 32 (the 66 prefix does not count). */
  SizeY = 1 << 11,
  /** A register-only SIMD operand (U, N): a memory ModRM is #UD. */
  RegisterOnly = 1 << 12,
  /**
   * A legacy SSE instruction whose 16-byte memory operand must be 16-byte aligned (#GP(0) otherwise):
   * every packed memory operand except the unaligned moves (MOVUPS, MOVDQU, LDDQU, …).
   */
  Aligned = 1 << 13,
  /** A VEX-encoded instruction that needs VEX.L = 0 ("LZ" in the SDM): #UD otherwise. */
  VexLZ = 1 << 14,
}

/** One decodable instruction form. */
export interface OpcodeEntry {
  readonly kind: 'entry';
  readonly mnemonic: string;
  /** Operand specifications in the Intel SDM's notation (Appendix A): Eb, Gv, Iz, Jb, rAX, Zv, … */
  readonly operands: readonly string[];
  readonly handler: HandlerName;
  /** Extra selector for the handler: ALU operation, condition code, segment register, … */
  readonly sub: number;
  readonly flags: number;
  readonly feature: Feature | undefined;
  /** RFLAGS bits the instruction may leave architecturally undefined (masked when compared with hardware). */
  readonly undefinedFlags: number;
}

/** Choice by ModRM.reg; `registerForm` replaces it when ModRM.mod is 3. */
export interface GroupSlot {
  readonly kind: 'group';
  readonly memory: ReadonlyArray<Slot | undefined>;
  readonly registerForm: ReadonlyArray<Slot | undefined> | undefined;
}
/** Choice by ModRM.rm (register forms of 0F 01 and friends). */
export interface RmSlot {
  readonly kind: 'rm';
  readonly byRm: ReadonlyArray<Slot | undefined>;
}
/**
 * Choice by mandatory prefix. A strict choice (SSE and MMX opcodes) has no
 * fallback: a 66, F3 or F2 prefix without a form of its own makes the opcode
 * invalid, F2/F3 take precedence over 66, and the chosen prefix is consumed
 * (66 then does not change the operand size).
 */
export interface PrefixSlot {
  readonly kind: 'prefix';
  readonly none: Slot | undefined;
  readonly operandSize: Slot | undefined;
  readonly repeat: Slot | undefined;
  readonly repeatNot: Slot | undefined;
  readonly strict: boolean;
}
/** Choice by ModRM.mod: memory (0–2) or register (3) forms (MOVLPS and MOVHLPS share 0F 12). */
export interface ModSlot {
  readonly kind: 'mod';
  readonly memory: Slot | undefined;
  readonly register: Slot | undefined;
}
/** Choice by processor mode (63: ARPL outside 64-bit mode, MOVSXD in it). */
export interface ModeSlot {
  readonly kind: 'mode';
  readonly legacy: Slot | undefined;
  readonly long: Slot | undefined;
}
export type Slot = OpcodeEntry | GroupSlot | RmSlot | PrefixSlot | ModeSlot | ModSlot;

export interface EntryOptions {
  readonly sub?: number;
  readonly flags?: number;
  readonly feature?: Feature;
  readonly undefinedFlags?: number;
}

/** Builds an entry: `entry('add', 'Ev,Gv', 'alu', { sub: 0, flags: EntryFlag.Lockable })`. */
export function entry(mnemonic: string, operands: string, handler: HandlerName, options: EntryOptions = {}): OpcodeEntry {
  const list = operands === '' ? [] : operands.split(',');
  // Byte-sized when the destination is a byte (or the source is AL for OUT).
  const byte = (list.length > 0 && /^(E|G|Z|O|M)b$|^AL$/.test(list[0]!)) || list[1] === 'AL' ? EntryFlag.Byte : 0;
  const sizeY = list.some((spec) => /^[EG]y$/.test(spec)) ? EntryFlag.SizeY : 0;
  const registerOnly = list.some((spec) => /^[UN]/.test(spec)) ? EntryFlag.RegisterOnly : 0;
  return {
    kind: 'entry',
    mnemonic,
    operands: list,
    handler,
    sub: options.sub ?? 0,
    flags: (options.flags ?? 0) | byte | sizeY | registerOnly,
    feature: options.feature,
    undefinedFlags: options.undefinedFlags ?? 0,
  };
}

export function group(memory: ReadonlyArray<Slot | undefined>, registerForm?: ReadonlyArray<Slot | undefined>): GroupSlot {
  return { kind: 'group', memory, registerForm };
}
export function byRm(slots: ReadonlyArray<Slot | undefined>): RmSlot {
  return { kind: 'rm', byRm: slots };
}
export function byPrefix(choices: { none?: Slot; operandSize?: Slot; repeat?: Slot; repeatNot?: Slot }): PrefixSlot {
  return { kind: 'prefix', none: choices.none, operandSize: choices.operandSize, repeat: choices.repeat, repeatNot: choices.repeatNot, strict: false };
}
/** A strict mandatory-prefix choice for SSE/MMX opcodes (see {@link PrefixSlot}). */
export function mandatory(choices: { none?: Slot; operandSize?: Slot; repeat?: Slot; repeatNot?: Slot }): PrefixSlot {
  return { ...byPrefix(choices), strict: true };
}
export function byMod(memory: Slot | undefined, register: Slot | undefined): ModSlot {
  return { kind: 'mod', memory, register };
}
export function byMode(legacy: Slot | undefined, long: Slot | undefined): ModeSlot {
  return { kind: 'mode', legacy, long };
}

/** Flags commonly left undefined, for the table's `undefinedFlags`. */
export enum UndefinedFlags {
  logic = Flag.AF,
  multiply = Flag.SF | Flag.ZF | Flag.AF | Flag.PF,
  divide = Flag.CF | Flag.OF | Flag.SF | Flag.ZF | Flag.AF | Flag.PF,
  bitScan = Flag.CF | Flag.OF | Flag.SF | Flag.AF | Flag.PF,
  bitTest = Flag.OF | Flag.SF | Flag.AF | Flag.PF,
  shift = Flag.AF | Flag.OF,
  rotate = Flag.OF,
  doubleShift = Flag.AF | Flag.OF | Flag.CF,
  decimalAdjust = Flag.OF,
  asciiAdjust = Flag.OF | Flag.SF | Flag.ZF | Flag.PF,
  asciiMultiply = Flag.OF | Flag.AF | Flag.CF,
  countZeros = Flag.OF | Flag.SF | Flag.AF | Flag.PF,
  /** ANDN, BLSI, BLSMSK, BLSR, BZHI (SDM vol. 2: AF and PF undefined). */
  bitManipulation = Flag.AF | Flag.PF,
  /** BEXTR: only ZF is defined (CF and OF cleared). */
  bitFieldExtract = Flag.AF | Flag.SF | Flag.PF,
}
