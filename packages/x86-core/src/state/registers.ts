/** General-purpose register numbers as the encodings use them (REX extends to 8–15). */
export enum Reg {
  RAX = 0, RCX = 1, RDX = 2, RBX = 3, RSP = 4, RBP = 5, RSI = 6, RDI = 7,
  R8 = 8, R9 = 9, R10 = 10, R11 = 11, R12 = 12, R13 = 13, R14 = 14, R15 = 15,
}

/** Segment register numbers as ModRM.reg encodes them. */
export enum Seg { ES = 0, CS = 1, SS = 2, DS = 3, FS = 4, GS = 5 }
export const SEGMENT_NAMES = ['es', 'cs', 'ss', 'ds', 'fs', 'gs'] as const;

/** RFLAGS bits. */
export enum Flag {
  CF = 1 << 0, PF = 1 << 2, AF = 1 << 4, ZF = 1 << 6, SF = 1 << 7, TF = 1 << 8, IF = 1 << 9, DF = 1 << 10, OF = 1 << 11,
  IOPL = 3 << 12, NT = 1 << 14, RF = 1 << 16, VM = 1 << 17, AC = 1 << 18, VIF = 1 << 19, VIP = 1 << 20, ID = 1 << 21,
}
/** The six arithmetic flags the lazy-flag machinery computes. */
export const ARITHMETIC_FLAGS = Flag.CF | Flag.PF | Flag.AF | Flag.ZF | Flag.SF | Flag.OF;
/** Bit 1 of RFLAGS always reads as one. */
export const FLAGS_FIXED_ONE = 1 << 1;

export enum Cr0 {
  PE = 1 << 0, MP = 1 << 1, EM = 1 << 2, TS = 1 << 3, ET = 1 << 4, NE = 1 << 5, WP = 1 << 16, AM = 1 << 18, NW = 1 << 29, CD = 1 << 30, PG = 1 << 31,
}
export enum Cr4 {
  VME = 1 << 0, PVI = 1 << 1, TSD = 1 << 2, DE = 1 << 3, PSE = 1 << 4, PAE = 1 << 5, MCE = 1 << 6, PGE = 1 << 7, PCE = 1 << 8,
  OSFXSR = 1 << 9, OSXMMEXCPT = 1 << 10, UMIP = 1 << 11, FSGSBASE = 1 << 16, PCIDE = 1 << 17, OSXSAVE = 1 << 18, SMEP = 1 << 20, SMAP = 1 << 21,
  PKE = 1 << 22, PKS = 1 << 24,
}
export enum Efer { SCE = 1 << 0, LME = 1 << 8, LMA = 1 << 10, NXE = 1 << 11 }

/** Exception vectors. */
export enum Vector {
  DE = 0, DB = 1, NMI = 2, BP = 3, OF = 4, BR = 5, UD = 6, NM = 7, DF = 8, TS = 10, NP = 11, SS = 12, GP = 13, PF = 14, MF = 16, AC = 17, MC = 18, XM = 19,
}

/** Segment descriptor attribute bits as kept in a segment cache (access byte in 7:0, flags in 15:12). */
export enum SegAttr {
  ACCESSED = 1 << 0, WRITABLE = 1 << 1, READABLE = 1 << 1, EXPAND_DOWN = 1 << 2, CONFORMING = 1 << 2, CODE = 1 << 3,
  S = 1 << 4, DPL_SHIFT = 5, P = 1 << 7, AVL = 1 << 12, L = 1 << 13, DB = 1 << 14, G = 1 << 15,
}
