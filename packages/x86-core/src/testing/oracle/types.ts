/** Execution mode of a case: 64-bit (long mode) or 32-bit (compatibility mode, like an i386 process). */
export type OracleBits = 64 | 32;

/** Address of the case's memory page (below 2 GiB, so 32-bit and 64-bit code can both reach it). */
export const ORACLE_MEMORY_BASE = 0x1000_0000;
/** Size of the memory page; the pages before and after it are unmapped, so accesses past it fault (#PF). */
export const ORACLE_MEMORY_SIZE = 4096;
/** Address where the case's code starts; RIP of the first instruction. */
export const ORACLE_CODE_ADDRESS = 0x2000_0000;
/** Longest code sequence a case may carry. */
export const ORACLE_MAX_CODE_LENGTH = 255;

/** RFLAGS bits. */
export enum Flag {
  CF = 0x1,
  PF = 0x4,
  AF = 0x10,
  ZF = 0x40,
  SF = 0x80,
  TF = 0x100,
  IF = 0x200,
  DF = 0x400,
  OF = 0x800,
  RF = 0x1_0000,
}

/** The six arithmetic status flags (CF PF AF ZF SF OF). */
export const ARITHMETIC_FLAGS = Flag.CF | Flag.PF | Flag.AF | Flag.ZF | Flag.SF | Flag.OF;
/** The flags a case may set: the arithmetic flags and DF. Other input bits are ignored. */
export const SETTABLE_FLAGS = ARITHMETIC_FLAGS | Flag.DF;

/** General-purpose register indices, in x86 encoding order (the order of `registers` arrays). */
export enum Reg {
  rax = 0,
  rcx = 1,
  rdx = 2,
  rbx = 3,
  rsp = 4,
  rbp = 5,
  rsi = 6,
  rdi = 7,
  r8 = 8,
  r9 = 9,
  r10 = 10,
  r11 = 11,
  r12 = 12,
  r13 = 13,
  r14 = 14,
  r15 = 15,
}

export const REGISTER_NAMES_64 = [
  'rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi',
  'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15',
] as const;
export const REGISTER_NAMES_32 = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi'] as const;

/** Number of registers in a case or result of the given mode: 16 for 64-bit, 8 for 32-bit. */
export function registerCount(bits: OracleBits): 16 | 8 {
  return bits === 64 ? 16 : 8;
}

/** One instruction sequence and the state to run it from. */
export interface OracleCase {
  readonly bits: OracleBits;
  /**
   * Straight-line machine code, at most ORACLE_MAX_CODE_LENGTH bytes, placed at
   * ORACLE_CODE_ADDRESS. Execution falls off its end. No control transfer out,
   * no system calls (see README).
   */
  readonly code: Uint8Array;
  /**
   * Register values in encoding order (see `Reg`): 16 for 64-bit, 8 for 32-bit.
   * Any bigint; it is truncated to the register width (two's complement), so -1n
   * is all ones. Every register, RSP included, may be chosen freely.
   */
  readonly registers: readonly bigint[];
  /** Initial RFLAGS; only SETTABLE_FLAGS bits count (IF is always 1). Default 0. */
  readonly rflags?: number;
  /** Initial content of the memory page from ORACLE_MEMORY_BASE (at most 4096 bytes; the rest is zero). */
  readonly memory?: Uint8Array;
  /**
   * Initial XMM0–XMM15, 16 bytes each little endian (exactly ORACLE_XMM_SIZE
   * bytes; 32-bit code sees XMM0–XMM7). Giving `xmm` or `mxcsr` makes this an
   * SSE case: its result carries `xmm` and `mxcsr`. Default all zero.
   */
  readonly xmm?: Uint8Array;
  /** Initial MXCSR (reserved bits must be clear). Default 0x1F80. */
  readonly mxcsr?: number;
}

/** Size of the XMM register image of an SSE case: 16 registers of 16 bytes. */
export const ORACLE_XMM_SIZE = 256;

/** How a case stopped when it did not run to its end. */
export type OracleFaultKind =
  /** A CPU exception in the case's code: `vector` says which; state is as at the exception. */
  | 'exception'
  /** An exception with RIP outside the code page: the code transferred control elsewhere (out of scope). */
  | 'outside-code'
  /** The case ran longer than two seconds (a loop). */
  | 'timeout'
  /** The harness process died during this case (the code corrupted it); it was restarted for the rest. */
  | 'crash';

export interface OracleFault {
  readonly kind: OracleFaultKind;
  /** x86 exception vector as the kernel saw it (trap number), e.g. 0 for #DE, 14 for #PF; -1 if none. */
  readonly vector: number;
  /** Mnemonic of the vector ('#DE', '#UD', '#GP', '#PF', ...), or the kind for non-exceptions. */
  readonly name: string;
  /** Host signal name ('SIGFPE', 'SIGSEGV', ...). */
  readonly signal: string;
  /** siginfo si_code (e.g. FPE_INTDIV = 1, SEGV_MAPERR = 1, SEGV_ACCERR = 2). */
  readonly signalCode: number;
  /** Error code pushed by the exception (the page-fault error code for #PF; 0 when none). */
  readonly errorCode: number;
  /** Faulting data address for #PF (CR2); 0 for most other exceptions. */
  readonly address: bigint;
  /** Details for 'crash' (exit status and harness stderr). */
  readonly detail?: string;
}

/** State after a case. */
export interface OracleResult {
  /** Registers in encoding order, unsigned: 16 (64-bit) or 8 (32-bit) values. */
  readonly registers: bigint[];
  /**
   * RFLAGS as the CPU left them (IF and bit 1 set). After an exception the
   * kernel's saved copy may also have RF (0x10000) set; compare under a mask.
   */
  readonly rflags: number;
  /** Address of the next instruction: ORACLE_CODE_ADDRESS + code length, or the faulting instruction (after it for traps such as int3). */
  readonly rip: bigint;
  /** The memory page's first `memory.length` bytes after the run (same length as the case's memory). */
  readonly memory: Uint8Array;
  /** Set when the case did not run to its end. */
  readonly fault: OracleFault | undefined;
  /** SSE cases only: XMM0–XMM15 after the run or at the fault (32-bit cases: XMM8–XMM15 zero). */
  readonly xmm?: Uint8Array;
  /** SSE cases only: MXCSR after the run or at the fault (a #XM leaves the exception flags set). */
  readonly mxcsr?: number;
}

/** True when the case carries SSE state (and its result will). */
export function isSseCase(testCase: OracleCase): boolean {
  return testCase.xmm !== undefined || testCase.mxcsr !== undefined;
}

/** Splits a register value into its unsigned 32-bit halves [low, high], as the interpreter stores them. */
export function toHalves(value: bigint): [low: number, high: number] {
  const unsigned = BigInt.asUintN(64, value);
  return [Number(unsigned & 0xffff_ffffn), Number(unsigned >> 32n)];
}

/** Joins two 32-bit halves (either signed or unsigned numbers) into an unsigned 64-bit value. */
export function fromHalves(low: number, high: number): bigint {
  return (BigInt(high >>> 0) << 32n) | BigInt(low >>> 0);
}
