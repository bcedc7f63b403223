import { x87Escapes } from './table-x87.js';
import { EntryFlag as F, UndefinedFlags as U, byMode, byPrefix, entry, group, type Slot } from './opcode-entry.js';

const ALU_NAMES = ['add', 'or', 'adc', 'sbb', 'and', 'sub', 'xor', 'cmp'] as const;
// /6 is an alias of SHL (documented as SAL); it disassembles as shl.
const SHIFT_NAMES = ['rol', 'ror', 'rcl', 'rcr', 'shl', 'shr', 'shl', 'sar'] as const;
export const CONDITION_NAMES = ['o', 'no', 'b', 'ae', 'e', 'ne', 'be', 'a', 's', 'ns', 'p', 'np', 'l', 'ge', 'le', 'g'] as const;

function aluUndefined(op: number): number {
  // AND/OR/XOR leave AF undefined.
  return op === 1 || op === 4 || op === 6 ? U.logic : 0;
}
function aluFlags(op: number): number {
  return op === 7 ? 0 : F.Lockable;
}

function shiftGroup(operands: string): Slot {
  return group(SHIFT_NAMES.map((name, index) => entry(name, operands, 'shift', { sub: index, undefinedFlags: index < 4 ? U.rotate : U.shift })));
}

/** The one-byte opcode map (Intel SDM vol. 2, table A-2). */
export function oneByteMap(): Array<Slot | undefined> {
  const map: Array<Slot | undefined> = new Array<Slot | undefined>(256).fill(undefined);
  for (let op = 0; op < 8; op++) {
    const name = ALU_NAMES[op]!;
    const options = { sub: op, undefinedFlags: aluUndefined(op) };
    map[op * 8] = entry(name, 'Eb,Gb', 'alu', { ...options, flags: aluFlags(op) });
    map[op * 8 + 1] = entry(name, 'Ev,Gv', 'alu', { ...options, flags: aluFlags(op) });
    map[op * 8 + 2] = entry(name, 'Gb,Eb', 'alu', options);
    map[op * 8 + 3] = entry(name, 'Gv,Ev', 'alu', options);
    map[op * 8 + 4] = entry(name, 'AL,Ib', 'alu', options);
    map[op * 8 + 5] = entry(name, 'rAX,Iz', 'alu', options);
  }
  map[0x06] = entry('push', 'ES', 'pushSeg', { sub: 0, flags: F.Invalid64 });
  map[0x07] = entry('pop', 'ES', 'popSeg', { sub: 0, flags: F.Invalid64 });
  map[0x0e] = entry('push', 'CS', 'pushSeg', { sub: 1, flags: F.Invalid64 });
  map[0x16] = entry('push', 'SS', 'pushSeg', { sub: 2, flags: F.Invalid64 });
  map[0x17] = entry('pop', 'SS', 'popSeg', { sub: 2, flags: F.Invalid64 });
  map[0x1e] = entry('push', 'DS', 'pushSeg', { sub: 3, flags: F.Invalid64 });
  map[0x1f] = entry('pop', 'DS', 'popSeg', { sub: 3, flags: F.Invalid64 });
  map[0x27] = entry('daa', '', 'daa', { flags: F.Invalid64, undefinedFlags: U.decimalAdjust });
  map[0x2f] = entry('das', '', 'das', { flags: F.Invalid64, undefinedFlags: U.decimalAdjust });
  map[0x37] = entry('aaa', '', 'aaa', { flags: F.Invalid64, undefinedFlags: U.asciiAdjust });
  map[0x3f] = entry('aas', '', 'aas', { flags: F.Invalid64, undefinedFlags: U.asciiAdjust });
  for (let r = 0; r < 8; r++) {
    // 40–4F are REX prefixes in 64-bit mode; the decoder never looks them up there.
    map[0x40 + r] = entry('inc', 'Zv', 'inc', { flags: F.Invalid64 });
    map[0x48 + r] = entry('dec', 'Zv', 'dec', { flags: F.Invalid64 });
    map[0x50 + r] = entry('push', 'Zv', 'push', { flags: F.Default64 });
    map[0x58 + r] = entry('pop', 'Zv', 'pop', { flags: F.Default64 });
    map[0x91 + r] = r < 7 ? entry('xchg', 'Zv,rAX', 'xchg') : undefined;
    map[0xb0 + r] = entry('mov', 'Zb,Ib', 'mov');
    map[0xb8 + r] = entry('mov', 'Zv,Iv', 'mov');
  }
  map[0x60] = entry('pusha', '', 'pusha', { flags: F.Invalid64 });
  map[0x61] = entry('popa', '', 'popa', { flags: F.Invalid64 });
  map[0x62] = entry('bound', 'Gv,M', 'bound', { flags: F.Invalid64 | F.MemoryOnly });
  map[0x63] = byMode(entry('arpl', 'Ew,Gw', 'arpl'), entry('movsxd', 'Gv,Ed', 'movsxd'));
  map[0x68] = entry('push', 'Iz', 'push', { flags: F.Default64 });
  map[0x69] = entry('imul', 'Gv,Ev,Iz', 'imul', { undefinedFlags: U.multiply });
  map[0x6a] = entry('push', 'Ibs', 'push', { flags: F.Default64 });
  map[0x6b] = entry('imul', 'Gv,Ev,Ibs', 'imul', { undefinedFlags: U.multiply });
  map[0x6c] = entry('insb', '', 'ins', { flags: F.Repeatable | F.Byte });
  map[0x6d] = entry('ins', '', 'ins', { flags: F.Repeatable });
  map[0x6e] = entry('outsb', '', 'outs', { flags: F.Repeatable | F.Byte });
  map[0x6f] = entry('outs', '', 'outs', { flags: F.Repeatable });
  for (let cc = 0; cc < 16; cc++) map[0x70 + cc] = entry(`j${CONDITION_NAMES[cc]!}`, 'Jb', 'jcc', { sub: cc, flags: F.Force64 });
  const aluGroup = (operands: string, extra = 0): Slot =>
    group(ALU_NAMES.map((name, op) => entry(name, operands, 'alu', { sub: op, flags: aluFlags(op) | extra, undefinedFlags: aluUndefined(op) })));
  map[0x80] = aluGroup('Eb,Ib');
  map[0x81] = aluGroup('Ev,Iz');
  map[0x82] = aluGroup('Eb,Ib', F.Invalid64);
  map[0x83] = aluGroup('Ev,Ibs');
  map[0x84] = entry('test', 'Eb,Gb', 'test', { undefinedFlags: U.logic });
  map[0x85] = entry('test', 'Ev,Gv', 'test', { undefinedFlags: U.logic });
  map[0x86] = entry('xchg', 'Eb,Gb', 'xchg', { flags: F.Lockable });
  map[0x87] = entry('xchg', 'Ev,Gv', 'xchg', { flags: F.Lockable });
  map[0x88] = entry('mov', 'Eb,Gb', 'mov');
  map[0x89] = entry('mov', 'Ev,Gv', 'mov');
  map[0x8a] = entry('mov', 'Gb,Eb', 'mov');
  map[0x8b] = entry('mov', 'Gv,Ev', 'mov');
  map[0x8c] = entry('mov', 'Ev,Sw', 'movFromSeg');
  map[0x8d] = entry('lea', 'Gv,M', 'lea', { flags: F.MemoryOnly });
  map[0x8e] = entry('mov', 'Sw,Ew', 'movToSeg');
  map[0x8f] = group([entry('pop', 'Ev', 'pop', { flags: F.Default64 })]);
  map[0x90] = byPrefix({ none: entry('nop', '', 'nop'), operandSize: entry('nop', '', 'nop'), repeat: entry('pause', '', 'nop') });
  map[0x98] = entry('cbw', '', 'convert');
  map[0x99] = entry('cwd', '', 'convertDouble');
  map[0x9a] = entry('call', 'Ap', 'callFar', { flags: F.Invalid64 });
  map[0x9b] = entry('fwait', '', 'x87Wait');
  map[0x9c] = entry('pushf', '', 'pushf', { flags: F.Default64 });
  map[0x9d] = entry('popf', '', 'popf', { flags: F.Default64 });
  map[0x9e] = entry('sahf', '', 'sahf');
  map[0x9f] = entry('lahf', '', 'lahf');
  map[0xa0] = entry('mov', 'AL,Ob', 'mov');
  map[0xa1] = entry('mov', 'rAX,Ov', 'mov');
  map[0xa2] = entry('mov', 'Ob,AL', 'mov');
  map[0xa3] = entry('mov', 'Ov,rAX', 'mov');
  map[0xa4] = entry('movsb', '', 'movs', { flags: F.Repeatable | F.Byte });
  map[0xa5] = entry('movs', '', 'movs', { flags: F.Repeatable });
  map[0xa6] = entry('cmpsb', '', 'cmps', { flags: F.Repeatable | F.Byte });
  map[0xa7] = entry('cmps', '', 'cmps', { flags: F.Repeatable });
  map[0xa8] = entry('test', 'AL,Ib', 'test', { undefinedFlags: U.logic });
  map[0xa9] = entry('test', 'rAX,Iz', 'test', { undefinedFlags: U.logic });
  map[0xaa] = entry('stosb', '', 'stos', { flags: F.Repeatable | F.Byte });
  map[0xab] = entry('stos', '', 'stos', { flags: F.Repeatable });
  map[0xac] = entry('lodsb', '', 'lods', { flags: F.Repeatable | F.Byte });
  map[0xad] = entry('lods', '', 'lods', { flags: F.Repeatable });
  map[0xae] = entry('scasb', '', 'scas', { flags: F.Repeatable | F.Byte });
  map[0xaf] = entry('scas', '', 'scas', { flags: F.Repeatable });
  map[0xc0] = shiftGroup('Eb,Ib');
  map[0xc1] = shiftGroup('Ev,Ib');
  map[0xc2] = entry('ret', 'Iw', 'ret', { flags: F.Force64 });
  map[0xc3] = entry('ret', '', 'ret', { flags: F.Force64 });
  map[0xc4] = entry('les', 'Gz,Mp', 'loadFarPointer', { sub: 0, flags: F.Invalid64 | F.MemoryOnly });
  map[0xc5] = entry('lds', 'Gz,Mp', 'loadFarPointer', { sub: 3, flags: F.Invalid64 | F.MemoryOnly });
  map[0xc6] = group([entry('mov', 'Eb,Ib', 'mov')]);
  map[0xc7] = group([entry('mov', 'Ev,Iz', 'mov')]);
  map[0xc8] = entry('enter', 'Iw,Ib', 'enter', { flags: F.Default64 });
  map[0xc9] = entry('leave', '', 'leave', { flags: F.Default64 });
  map[0xca] = entry('retf', 'Iw', 'retFar');
  map[0xcb] = entry('retf', '', 'retFar');
  map[0xcc] = entry('int3', '', 'int3');
  map[0xcd] = entry('int', 'Ib', 'int');
  map[0xce] = entry('into', '', 'into', { flags: F.Invalid64 });
  map[0xcf] = entry('iret', '', 'iret');
  map[0xd0] = shiftGroup('Eb,1');
  map[0xd1] = shiftGroup('Ev,1');
  map[0xd2] = shiftGroup('Eb,CL');
  map[0xd3] = shiftGroup('Ev,CL');
  map[0xd4] = entry('aam', 'Ib', 'aam', { flags: F.Invalid64, undefinedFlags: U.asciiMultiply });
  map[0xd5] = entry('aad', 'Ib', 'aad', { flags: F.Invalid64, undefinedFlags: U.asciiMultiply });
  map[0xd6] = entry('salc', '', 'salc', { flags: F.Invalid64 });
  map[0xd7] = entry('xlat', '', 'xlat');
  x87Escapes().forEach((slot, index) => { map[0xd8 + index] = slot; });
  map[0xe0] = entry('loopne', 'Jb', 'loop', { sub: 0, flags: F.Force64 });
  map[0xe1] = entry('loope', 'Jb', 'loop', { sub: 1, flags: F.Force64 });
  map[0xe2] = entry('loop', 'Jb', 'loop', { sub: 2, flags: F.Force64 });
  map[0xe3] = entry('jcxz', 'Jb', 'jcxz', { flags: F.Force64 });
  map[0xe4] = entry('in', 'AL,Ib', 'in');
  map[0xe5] = entry('in', 'eAX,Ib', 'in');
  map[0xe6] = entry('out', 'Ib,AL', 'out');
  map[0xe7] = entry('out', 'Ib,eAX', 'out');
  map[0xe8] = entry('call', 'Jz', 'call', { flags: F.Force64 });
  map[0xe9] = entry('jmp', 'Jz', 'jmp', { flags: F.Force64 });
  map[0xea] = entry('jmp', 'Ap', 'jmpFar', { flags: F.Invalid64 });
  map[0xeb] = entry('jmp', 'Jb', 'jmp', { flags: F.Force64 });
  map[0xec] = entry('in', 'AL,DX', 'in');
  map[0xed] = entry('in', 'eAX,DX', 'in');
  map[0xee] = entry('out', 'DX,AL', 'out');
  map[0xef] = entry('out', 'DX,eAX', 'out');
  map[0xf1] = entry('int1', '', 'int1');
  map[0xf4] = entry('hlt', '', 'hlt', { flags: F.Privileged });
  map[0xf5] = entry('cmc', '', 'flagOp', { sub: 0 });
  map[0xf6] = group([
    entry('test', 'Eb,Ib', 'test', { undefinedFlags: U.logic }),
    entry('test', 'Eb,Ib', 'test', { undefinedFlags: U.logic }),
    entry('not', 'Eb', 'not', { flags: F.Lockable }),
    entry('neg', 'Eb', 'neg', { flags: F.Lockable }),
    entry('mul', 'Eb', 'mul', { undefinedFlags: U.multiply }),
    entry('imul', 'Eb', 'imulOne', { undefinedFlags: U.multiply }),
    entry('div', 'Eb', 'div', { undefinedFlags: U.divide }),
    entry('idiv', 'Eb', 'idiv', { undefinedFlags: U.divide }),
  ]);
  map[0xf7] = group([
    entry('test', 'Ev,Iz', 'test', { undefinedFlags: U.logic }),
    entry('test', 'Ev,Iz', 'test', { undefinedFlags: U.logic }),
    entry('not', 'Ev', 'not', { flags: F.Lockable }),
    entry('neg', 'Ev', 'neg', { flags: F.Lockable }),
    entry('mul', 'Ev', 'mul', { undefinedFlags: U.multiply }),
    entry('imul', 'Ev', 'imulOne', { undefinedFlags: U.multiply }),
    entry('div', 'Ev', 'div', { undefinedFlags: U.divide }),
    entry('idiv', 'Ev', 'idiv', { undefinedFlags: U.divide }),
  ]);
  map[0xf8] = entry('clc', '', 'flagOp', { sub: 1 });
  map[0xf9] = entry('stc', '', 'flagOp', { sub: 2 });
  map[0xfa] = entry('cli', '', 'flagOp', { sub: 3 });
  map[0xfb] = entry('sti', '', 'flagOp', { sub: 4 });
  map[0xfc] = entry('cld', '', 'flagOp', { sub: 5 });
  map[0xfd] = entry('std', '', 'flagOp', { sub: 6 });
  map[0xfe] = group([entry('inc', 'Eb', 'inc', { flags: F.Lockable }), entry('dec', 'Eb', 'dec', { flags: F.Lockable })]);
  map[0xff] = group([
    entry('inc', 'Ev', 'inc', { flags: F.Lockable }),
    entry('dec', 'Ev', 'dec', { flags: F.Lockable }),
    entry('call', 'Ev', 'callIndirect', { flags: F.Force64 }),
    entry('call far', 'Mp', 'callFarIndirect', { flags: F.MemoryOnly }),
    entry('jmp', 'Ev', 'jmpIndirect', { flags: F.Force64 }),
    entry('jmp far', 'Mp', 'jmpFarIndirect', { flags: F.MemoryOnly }),
    entry('push', 'Ev', 'push', { flags: F.Default64 }),
  ]);
  return map;
}
