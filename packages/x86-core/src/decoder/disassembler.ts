import { SEGMENT_NAMES } from '../state/registers.js';
import { CodeMode, type Instruction, OperandKind, Repeat, RIP_BASE } from './instruction.js';

const NAMES_64 = ['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'];
const NAMES_32 = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi', 'r8d', 'r9d', 'r10d', 'r11d', 'r12d', 'r13d', 'r14d', 'r15d'];
const NAMES_16 = ['ax', 'cx', 'dx', 'bx', 'sp', 'bp', 'si', 'di', 'r8w', 'r9w', 'r10w', 'r11w', 'r12w', 'r13w', 'r14w', 'r15w'];
const NAMES_8 = ['al', 'cl', 'dl', 'bl', 'spl', 'bpl', 'sil', 'dil', 'r8b', 'r9b', 'r10b', 'r11b', 'r12b', 'r13b', 'r14b', 'r15b', 'ah', 'ch', 'dh', 'bh'];
const SIZE_NAMES: Record<number, string> = { 1: 'byte', 2: 'word', 4: 'dword', 8: 'qword', 10: 'tword', 16: 'oword' };

/** The name of general-purpose register `register` at `size` bytes (byte numbers 16–19 are AH–BH). */
export function registerName(register: number, size: number): string {
  const names = size === 8 ? NAMES_64 : size === 4 ? NAMES_32 : size === 2 ? NAMES_16 : NAMES_8;
  return names[register] ?? `r?${register}`;
}

/** Mnemonics whose spelling follows the operand size. */
const SIZED_MNEMONICS: Record<string, readonly [string, string, string]> = {
  cbw: ['cbw', 'cwde', 'cdqe'],
  cwd: ['cwd', 'cdq', 'cqo'],
  movs: ['movsw', 'movsd', 'movsq'],
  cmps: ['cmpsw', 'cmpsd', 'cmpsq'],
  stos: ['stosw', 'stosd', 'stosq'],
  lods: ['lodsw', 'lodsd', 'lodsq'],
  scas: ['scasw', 'scasd', 'scasq'],
  ins: ['insw', 'insd', 'insd'],
  outs: ['outsw', 'outsd', 'outsd'],
  iret: ['iret', 'iretd', 'iretq'],
  pusha: ['pushaw', 'pushad', 'pushad'],
  popa: ['popaw', 'popad', 'popad'],
  pushf: ['pushfw', 'pushfd', 'pushfq'],
  popf: ['popfw', 'popfd', 'popfq'],
  cmpxchg8b: ['cmpxchg8b', 'cmpxchg8b', 'cmpxchg16b'],
  retf: ['retf', 'retf', 'retfq'],
  movd: ['movd', 'movd', 'movq'],
  pextrd: ['pextrd', 'pextrd', 'pextrq'],
  pinsrd: ['pinsrd', 'pinsrd', 'pinsrq'],
  xsave: ['xsave', 'xsave', 'xsave64'],
  xrstor: ['xrstor', 'xrstor', 'xrstor64'],
  xsaveopt: ['xsaveopt', 'xsaveopt', 'xsaveopt64'],
};

function hex(value: number): string {
  return `0x${value.toString(16)}`;
}

/** Hex of a 64-bit value from halves. */
function hex64(low: number, high: number): string {
  if (high === 0) return hex(low >>> 0);
  return `0x${(high >>> 0).toString(16)}${(low >>> 0).toString(16).padStart(8, '0')}`;
}

/**
 * Formats a decoded instruction in Intel syntax as NASM accepts it, so a
 * listing can be assembled again. Relative branch targets are written as
 * `$+n` (from the instruction's first byte).
 */
export function disassemble(instruction: Instruction): string {
  const entry = instruction.entry;
  let mnemonic = entry.mnemonic;
  const sized = SIZED_MNEMONICS[mnemonic];
  const wide = instruction.wideSize;
  if (sized !== undefined && !(mnemonic === 'pushf' || mnemonic === 'popf' || mnemonic === 'iret' || mnemonic === 'retf') ) {
    mnemonic = sized[wide === 2 ? 0 : wide === 4 ? 1 : 2];
  } else if (sized !== undefined && defaultWide(instruction) !== wide) {
    mnemonic = sized[wide === 2 ? 0 : wide === 4 ? 1 : 2];
  }
  if (entry.handler === 'ud' || entry.handler === 'tooLong') return mnemonic;
  const prefixes: string[] = [];
  if (instruction.lock) prefixes.push('lock');
  const repeatable = entry.handler === 'movs' || entry.handler === 'stos' || entry.handler === 'lods' || entry.handler === 'ins' || entry.handler === 'outs';
  const compares = entry.handler === 'cmps' || entry.handler === 'scas';
  if (instruction.repeat === Repeat.Repeat && (repeatable || compares)) prefixes.push(compares ? 'repe' : 'rep');
  if (instruction.repeat === Repeat.RepeatNot && compares) prefixes.push('repne');
  const stringOp = repeatable || compares || entry.handler === 'xlat';
  if (stringOp) {
    if (instruction.addressSize !== defaultAddress(instruction)) prefixes.push(`a${instruction.addressSize * 8}`);
    if (instruction.segmentOverride >= 0) prefixes.push(SEGMENT_NAMES[instruction.segmentOverride]!);
  }
  if ((entry.handler === 'jcxz' || entry.handler === 'loop') && instruction.addressSize !== defaultAddress(instruction)) {
    if (entry.handler === 'jcxz') mnemonic = instruction.addressSize === 2 ? 'jcxz' : instruction.addressSize === 4 ? 'jecxz' : 'jrcxz';
    else prefixes.push(`a${instruction.addressSize * 8}`);
  } else if (entry.handler === 'jcxz') {
    mnemonic = instruction.addressSize === 2 ? 'jcxz' : instruction.addressSize === 4 ? 'jecxz' : 'jrcxz';
  }
  const operands = entry.operands.map((spec, index) => formatOperand(instruction, spec, index)).filter((text) => text !== '');
  // XCHG is symmetric; NASM puts its first operand in ModRM.reg, so the register is written first.
  if (entry.handler === 'xchg' && entry.operands[1]?.startsWith('G')) operands.reverse();
  const head = [...prefixes, mnemonic].join(' ');
  return operands.length === 0 ? head : `${head} ${operands.join(', ')}`;
}

function defaultWide(instruction: Instruction): number {
  return instruction.mode === CodeMode.Bits64 ? 8 : instruction.mode === CodeMode.Bits32 ? 4 : 2;
}
function defaultAddress(instruction: Instruction): number {
  return defaultWide(instruction);
}

function formatOperand(instruction: Instruction, spec: string, index: number): string {
  const size = operandSizeOf(instruction, spec);
  // A third ModRM.rm operand (VEX forms: ANDN r, r, r/m) is not kept in kind0/kind1.
  const thirdRm = index > 1 && spec.charAt(0) === 'E';
  const kind = index === 0 ? instruction.kind0 : index === 1 ? instruction.kind1 : thirdRm ? (instruction.hasMemory ? OperandKind.Memory : OperandKind.Register) : OperandKind.None;
  const register = index === 0 ? instruction.register0 : index === 1 ? instruction.register1 : instruction.rmField;
  switch (spec) {
    case 'AL': return 'al';
    case 'CL': return 'cl';
    case 'DX': return 'dx';
    case '1': return '1';
    case 'st0': return 'st0';
    case 'sti': return `st${instruction.rmField & 7}`;
    case 'ax': return 'ax';
    case 'xmm0': return 'xmm0';
    case 'rAX': case 'eAX': return registerName(0, spec === 'eAX' && instruction.wideSize === 8 ? 4 : instruction.wideSize);
    case 'ES': case 'CS': case 'SS': case 'DS': case 'FS': case 'GS': return spec.toLowerCase();
    case 'Sw': return SEGMENT_NAMES[instruction.regField] ?? `sreg${instruction.regField}`;
    case 'Cd': return `cr${instruction.regField}`;
    case 'Dd': return `dr${instruction.regField}`;
    case 'Rd': return registerName(instruction.rmField, instruction.operandSize);
    case 'By': return registerName(instruction.vexRegister, size);
    case 'Jb': case 'Jz': return `$+${hex(instruction.length + instruction.immediate)}`.replace('+0x-', '-0x').replace('+-', '-');
    case 'Ap': return `${hex(instruction.immediate2)}:${hex(instruction.immediate >>> 0)}`;
    case 'Ib': case 'Iw': return hex(index === 1 && instruction.entry.operands[0]!.startsWith('I') ? instruction.immediate2 : (spec === 'Ib' && instruction.entry.operands.length > 2 && index === 2) ? instruction.immediate & 0xff : immediateOf(instruction, index) & (spec === 'Ib' ? 0xff : 0xffff));
    case 'Ibs': case 'Iz': case 'Iv': return formatImmediate(instruction, spec === 'Iv' || spec === 'Iz' ? (instruction.operandSize === 8 ? 8 : size) : instruction.operandSize);
    default: break;
  }
  if (kind === OperandKind.Register) {
    const first = spec.charAt(0);
    if (first === 'V' || first === 'W' || first === 'U') return `xmm${register}`;
    if (first === 'P' || first === 'Q' || first === 'N') return `mm${register}`;
    return registerName(register, size);
  }
  if (spec.startsWith('O') || kind === OperandKind.Memory) return formatMemory(instruction, spec, size);
  return '';
}

function immediateOf(instruction: Instruction, _index: number): number {
  return instruction.immediate;
}

function formatImmediate(instruction: Instruction, size: number): string {
  if (size === 8) return hex64(instruction.immediate, instruction.immediateHigh);
  const mask = size === 1 ? 0xff : size === 2 ? 0xffff : 0xffffffff;
  return hex((instruction.immediate & mask) >>> 0);
}

/** Memory sizes of the SIMD operand suffixes (SDM vol. 2, A.2.2). */
const SIMD_SIZES: Readonly<Record<string, number>> = { ps: 16, pd: 16, dq: 16, x: 16, ss: 4, sd: 8, q: 8, d: 4, w: 2, b: 1 };

function operandSizeOf(instruction: Instruction, spec: string): number {
  const last = spec.charAt(spec.length - 1);
  if ('VWUPQN'.includes(spec.charAt(0)) || (spec.length === 3 && spec.charAt(0) === 'M')) return SIMD_SIZES[spec.slice(1)] ?? 16;
  if (spec.length === 2 || spec.length === 3) {
    switch (last) {
      case 'b': return 1;
      case 'w': return 2;
      case 'd': return spec.charAt(0) === 'R' || spec.charAt(0) === 'C' ? instruction.operandSize : 4;
      case 't': return 10;
      case 'q': return instruction.entry.handler === 'cmpxchgPair' && instruction.operandSize === 8 ? 16 : 8;
      case 'z': return instruction.operandSize === 8 ? 4 : instruction.operandSize;
      case 'y': return instruction.operandSize === 8 ? 8 : 4;
      default: return instruction.operandSize;
    }
  }
  return instruction.operandSize;
}

function formatMemory(instruction: Instruction, spec: string, size: number): string {
  const parts: string[] = [];
  const names = instruction.addressSize === 8 ? NAMES_64 : instruction.addressSize === 4 ? NAMES_32 : NAMES_16;
  if (instruction.base === RIP_BASE) parts.push(instruction.addressSize === 8 ? 'rip' : 'eip');
  else if (instruction.base >= 0) parts.push(names[instruction.base]!);
  // A lone index keeps its scale (even *1) so it stays an index in the SIB encoding.
  if (instruction.index >= 0) parts.push(instruction.scale === 0 && instruction.base >= 0 ? names[instruction.index]! : `${names[instruction.index]!}*${1 << instruction.scale}`);
  let text = parts.join('+');
  // NASM would turn a lone scaled index (rsi*2) into base+index; nosplit keeps the encoding.
  if (instruction.base < 0 && instruction.index >= 0) text = `nosplit ${text}`;
  const displacement = instruction.displacement;
  if (spec.startsWith('O') && instruction.addressSize === 8) text = `qword ${hex64(displacement, instruction.displacementHigh)}`;
  else if (parts.length === 0) text = hex(instruction.addressSize === 2 ? displacement & 0xffff : displacement >>> 0);
  else if (displacement !== 0) {
    const signed = instruction.addressSize === 2 ? (displacement << 16) >> 16 : displacement | 0;
    text += signed < 0 ? `-${hex(-signed)}` : `+${hex(signed)}`;
  }
  if (instruction.addressSize === 2 && parts.length === 0) text = `word ${text}`;
  else if (instruction.addressSize !== defaultAddress(instruction) && instruction.base !== 16 && parts.length === 0) text = `${instruction.addressSize === 4 ? 'dword' : 'qword'} ${text}`;
  if (instruction.base === RIP_BASE) {
    // NASM writes RIP-relative operands as `rel` plus the target relative to the instruction's start.
    const fromStart = instruction.length + (displacement | 0);
    text = `rel $${fromStart < 0 ? `-${hex(-fromStart)}` : `+${hex(fromStart)}`}`;
  }
  const segment = instruction.segmentOverride >= 0 ? `${SEGMENT_NAMES[instruction.segmentOverride]!}:` : '';
  const memory = `[${segment}${text}]`;
  if (instruction.entry.handler === 'movFromSeg' || instruction.entry.handler === 'movToSeg') return `word ${memory}`;
  if (spec === 'M' || spec === 'Mp') return spec === 'Mp' && instruction.entry.handler !== 'loadFarPointer' ? `far ${memory}` : memory;
  // A SIMD operand's size follows from the instruction; NASM refuses an explicit one for several (PSUBQ, PSHUFD, PBLENDVB…).
  if ('WQ'.includes(spec.charAt(0))) return memory;
  return `${SIZE_NAMES[size] ?? ''} ${memory}`.trim();
}
