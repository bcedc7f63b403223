import {
  type GuestMemory,
  type InterruptController,
  type IrqLine,
  type LocalApicPort,
  type MmioBus,
  type Observer,
  type PioBus,
  type ProcessorSignals,
  ignoreEvents,
} from '@tsvirt/interfaces';
import { CPU_MODELS, type CpuModel, type CpuModelName } from './cpuid/models.js';
import { CodeCache } from './decoder/code-cache.js';
import { Decoder } from './decoder/decoder.js';
import { disassemble } from './decoder/disassembler.js';
import { Block, endsBlock, MAX_BLOCK_INSTRUCTIONS, MAX_INSTRUCTION_LENGTH } from './decoder/block.js';
import { CodeMode, Instruction, RIP_BASE, ZERO_REGISTER } from './decoder/instruction.js';
import { buildOpcodeTable } from './decoder/opcode-table.js';
import { FlagOp, LazyFlags } from './flags/lazy-flags.js';
import { selectHandler } from './instructions/index.js';
import { jcc, jmp } from './instructions/control-flow.js';
import {
  InlineHandler, aluImmediate, aluLoad, aluRegister, aluStore32, callRelative32, conditionalJump32, decrementRegister32, incrementRegister32, inlineHandlerOf, movImmediate32,
  jump32, movLoad8, movLoad32, movLoad64, movRegister32, movRegister64, movStore8, movStore32, movStore64, movzxLoad32, popRegister32, pushRegister32, return32, shiftRegister32, testRegister,
  conditionalMove32, imulRegister32, lea32, movzxRegister32, setConditionRegister, movLoad16, movStore16, movStoreImmediate32, aluRegister8, testByte,
  incrementMemory32, decrementMemory32, notRegister32, shiftRegister16,
} from './instructions/fast-paths.js';
import { Mmu } from './memory/mmu.js';
import { FpuState } from './fpu/fpu-state.js';
import { SseState } from './fpu/sse-state.js';
import { MsrFile } from './msr/msr-file.js';
import { KvmClock } from './paravirt/kvm-clock.js';
import { Cr0, Cr4, Efer, Flag, FLAGS_FIXED_ONE, Seg, SegAttr, Vector } from './state/registers.js';
import { GUEST_FAULT, exceptionClass } from './system/fault.js';
import type { DescriptorSlot } from './system/segmentation.js';
import { deliverEvent, EventKind } from './system/interrupts.js';
import { NullBus } from './system/null-bus.js';

/** Why `run` returned. */
export type StopReason =
  /** The instruction limit was reached. */
  | 'limit'
  /** HLT with no interrupt to wake it (call `run` again after raising one). */
  | 'halted'
  /** A triple fault or shutdown: the machine should reset. */
  | 'shutdown'
  /** An application processor after INIT, waiting for a start-up IPI. */
  | 'wait-for-sipi'
  /** `requestExit` was called (by a device or a clock the guest read): the run loop has something to do. */
  | 'exit-request'
  /** A bug in the emulator (never a guest action); `error` says what. */
  | 'internal-error';

export interface RunResult {
  readonly reason: StopReason;
  /** Instructions retired in this call (faulting instructions count toward the limit but not here). */
  readonly retired: number;
  readonly error?: unknown;
}

/** Events a CPU reports to its observer. */
export type CpuEvent =
  | { readonly kind: 'exception'; readonly vector: number; readonly errorCode: number | undefined; readonly rip: number; readonly instruction: string }
  | { readonly kind: 'triple-fault'; readonly rip: number }
  | { readonly kind: 'internal-error'; readonly error: unknown; readonly rip: number };

/** A segment register: selector and the hidden descriptor cache. */
export interface SegmentState {
  readonly selector: number;
  readonly base: number;
  readonly limit: number;
  /** Access byte in bits 7:0, descriptor flags (AVL, L, D/B, G) in bits 15:12. */
  readonly attributes: number;
}

export interface CpuOptions {
  readonly memory: GuestMemory;
  /** I/O ports (IN/OUT/INS/OUTS); unclaimed ports read all-ones. */
  readonly io?: PioBus;
  /** Physical addresses that are not RAM. */
  readonly mmio?: MmioBus;
  /** The interrupt controller (PIC or local APIC). A `LocalApicPort` also receives the APIC MSRs and CR8. */
  readonly interrupts?: InterruptController | LocalApicPort;
  /** CPU model (CPUID and optional instructions): `qemu64` (default) or `tsvirt-max`, or a custom model. */
  readonly model?: CpuModelName | CpuModel;
  /**
   * The time-stamp counter source in cycles. Defaults to the number of
   * retired instructions, which keeps runs deterministic.
   */
  readonly timeStampCounter?: () => number;
  /** How fast the time-stamp counter source counts (1 GHz by default); kvmclock converts with it. */
  readonly timeStampFrequencyHz?: number;
  /** Unix time in milliseconds at which the time-stamp counter source read 0: kvmclock's wall clock (0 by default). */
  readonly timeStampEpochMs?: number;
  /** Bootstrap processor (true by default); an AP waits for a SIPI after INIT. */
  readonly bootstrap?: boolean;
  readonly events?: Observer<CpuEvent>;
  /**
   * FERR#, the x87 error output of CR0.NE = 0 ("MS-DOS compatibility"): a PC
   * routes it to IRQ 13. Without it an unmasked x87 exception with NE = 0 is
   * simply ignored; with it the CPU raises this line and freezes at the next
   * waiting x87 instruction until an interrupt or IGNNE# (`ignoreNumericError`).
   */
  readonly floatingPointError?: IrqLine;
}

const TWO_32 = 4294967296;

/** The run loop's `previous` when no block of the current page ran last: it has no links and none are made from it. */
const UNLINKED = new Block();
/** faultVector of an instruction abandoned without an exception (an x87 freeze on FERR#). */
const FROZEN = -1;
/** DR6 status bits: single step, task switch (T bit); DR7.GD. */
const DR6_BS = 0x4000;
const DR6_BT = 0x8000;
const DR7_GD = 0x2000;

/** Fault-class exceptions (they restart the instruction; their frames carry RF = 1). */
function isFaultClass(vector: number): boolean {
  return vector === 0 || (vector >= 5 && vector <= 7) || (vector >= 10 && vector <= 14) || vector === 16 || vector === 17 || vector === 19 || vector === 20;
}

function isApic(controller: InterruptController | undefined): controller is LocalApicPort {
  return controller !== undefined && typeof (controller as Partial<LocalApicPort>).readMsr === 'function';
}

/**
 * The engine of one x86-64 logical processor (see {@link Cpu} for the
 * state-access API): an interpreter over a decoded-instruction
 * cache, with segmentation, paging, exceptions and interrupts.
 *
 * Registers are 64-bit values kept as two 32-bit halves (`low`/`high`);
 * RIP and linear addresses are plain numbers (canonical addresses are exactly
 * the signed values in [-2^47, 2^47)).
 */
export class CpuCore implements ProcessorSignals {
  readonly memory: GuestMemory;
  readonly io: PioBus;
  readonly mmio: MmioBus;
  readonly interrupts: InterruptController | undefined;
  readonly apic: LocalApicPort | undefined;
  readonly model: CpuModel;
  readonly mmu: Mmu;
  readonly msrs: MsrFile;
  readonly events: Observer<CpuEvent>;
  private readonly timeStampSource: (() => number) | undefined;
  readonly timeStampFrequencyHz: number;
  readonly timeStampEpochMs: number;
  readonly kvmClock: KvmClock;
  readonly bootstrap: boolean;
  /** FERR# (see CpuOptions.floatingPointError) and whether this CPU drives it high. */
  readonly floatingPointError: IrqLine | undefined;
  floatingPointErrorAsserted = false;
  /** The IGNNE# input: pending x87 errors are ignored while it is asserted. */
  ignoringNumericError = false;

  /** Low and high 32 bits of RAX…R15 (0–15); the slots up to ZERO_REGISTER only exist so that it reads zero. */
  readonly low = new Int32Array(ZERO_REGISTER + 1);
  readonly high = new Int32Array(ZERO_REGISTER + 1);
  /** The instruction pointer (next instruction while one executes). */
  rip = 0;
  /** Where the executing instruction starts (faults report it). */
  currentRip = 0;
  readonly flags = new LazyFlags();

  readonly segmentSelector = new Uint16Array(6);
  readonly segmentBase = new Float64Array(6);
  readonly segmentLimit = new Float64Array(6);
  readonly segmentAttributes = new Uint32Array(6);
  /** Per segment: 1 readable, 2 writable, 4 expand-down, 8 usable, 16 big (32-bit upper bound). */
  readonly segmentAccess = new Uint8Array(6);
  /**
   * Per segment: the last offset a read (write) may touch without the full checks of
   * `linearChecked`, or -1 when every access needs them (unusable or expand-down
   * segment, wrong type, data breakpoints armed). Kept by `refreshSegmentAccess`.
   */
  private readonly readLimit = new Float64Array(6);
  private readonly writeLimit = new Float64Array(6);
  /**
   * Bit `seg` set while that segment is flat (base 0, limit 4 GiB, readable and writable, no data
   * breakpoints): its linear address is the offset. Kept by `refreshSegmentAccess`.
   */
  private flatSegments = 0;
  gdtBase = 0;
  gdtLimit = 0xffff;
  idtBase = 0;
  idtLimit = 0xffff;
  ldtSelector = 0;
  ldtBase = 0;
  ldtLimit = 0xffff;
  trSelector = 0;
  trBase = 0;
  trLimit = 0xffff;
  trAttributes = 0x8b;

  cr0 = Cr0.ET | Cr0.CD | Cr0.NW;
  cr2 = 0;
  cr3 = 0;
  cr3High = 0;
  cr4 = 0;
  efer = 0;
  /** PKRU: access-disable (bit 2k) and write-disable (bit 2k + 1) for user pages of protection key k (CR4.PKE). */
  pkru = 0;
  /** CR8 when there is no local APIC. */
  taskPriority = 0;
  readonly debug = new Float64Array(8);
  /** The x87 registers, control/status/tag words and last-instruction pointers. */
  readonly fpu = new FpuState();
  /** XMM0–XMM15 and MXCSR. */
  readonly sse = new SseState();

  private privilege = 0;
  private accessPrivilege = 0;
  /** Scratch for descriptor reads (no allocation while running). */
  readonly descriptorScratch: DescriptorSlot = { low: 0, high: 0, address: 0 };
  /** Scratch for building a 64-bit interrupt frame. */
  readonly interruptFrame = new Float64Array(6);
  codeMode: CodeMode = CodeMode.Bits16;
  /** Stack pointer width in bytes (2, 4, 8). */
  stackSize = 2;
  halted = false;
  protected waitingForStartup = false;
  /** Interrupts stay blocked until this many instructions have retired (STI and MOV SS shadows). */
  inhibitUntil = 0;
  nmiPending = false;
  nmiBlocked = false;
  /** Instruction count when a single-step (TF) instruction started, or -1. */
  private singleStepFrom = -1;
  /** Debug traps (#DB) are held back until this many instructions have retired (the MOV SS / POP SS shadow). */
  debugInhibitUntil = 0;
  /** DR6 bits of debug traps raised by the current instruction (data and I/O breakpoints, B0–B3; BT), delivered after it. */
  pendingDebugTrap = 0;
  /** DR0–DR3 enabled in DR7 as instruction (bit n), data (bit n + 4) and I/O (bit n + 8) breakpoints; see `updateBreakpoints`. */
  breakpointMask = 0;
  /** `breakpointMask` bits 4–7: checked by `linear` (zero keeps memory accesses at one extra test). */
  dataBreakpointMask = 0;
  /** Set when something may need handling between instructions (interrupts, NMI, shadows). */
  attention = true;
  protected shutdownRequested = false;
  /** Set by `requestExit`: `run` returns at the next instruction boundary. */
  private exitRequested = false;
  private startupVector = -1;
  private initRequested = false;

  /**
   * Retired instructions since creation (the default TSC source). Exact between
   * runs and for generic handlers; inside a block the fast forms leave it at the
   * count before them, so a device read through MMIO sees it up to a block behind.
   */
  instructionCount = 0;
  /** Added to the TSC source (WRMSR to IA32_TSC sets it). */
  timeStampOffset = 0;

  /** The last guest fault: vector, error code (-1 for none). */
  faultVector = 0;
  faultErrorCode = -1;
  /** High half of the last 64-bit value read by an operand or memory helper. */
  valueHigh = 0;
  /** Scratch for wide multiply/divide (words) and their 16-bit digits. */
  readonly wide = new Int32Array(6);
  readonly digits = new Float64Array(8);
  readonly pair = new Int32Array(2);
  readonly pairOther = new Int32Array(2);
  /** Scratch for MSR values. */
  readonly msrValue = new Uint32Array(2);

  private readonly decoder: Decoder;
  protected readonly codeCache = new CodeCache();
  private scratch = new Instruction();
  protected fetchLinearBase = Number.NaN;
  private fetchPage: Array<Instruction | undefined> | undefined;
  private fetchFrameBytes: Uint8Array | undefined;
  private fetchFrameOffset = 0;
  private readonly codeSource = { cpu: this as CpuCore, base: 0, byteAt(offset: number): number { return this.cpu.codeByte(this.base + offset); } };

  constructor(options: CpuOptions) {
    this.memory = options.memory;
    this.io = options.io ?? new NullBus();
    this.mmio = options.mmio ?? new NullBus();
    this.interrupts = options.interrupts;
    this.apic = isApic(options.interrupts) ? options.interrupts : undefined;
    const model = options.model ?? 'qemu64';
    this.model = typeof model === 'string' ? CPU_MODELS[model]! : model;
    if (this.model === undefined) throw new Error(`unknown CPU model ${String(model)}`);
    this.events = options.events ?? ignoreEvents;
    this.timeStampSource = options.timeStampCounter;
    this.timeStampFrequencyHz = options.timeStampFrequencyHz ?? 1e9;
    if (!(this.timeStampFrequencyHz >= 1e6 && this.timeStampFrequencyHz <= 1e11)) throw new RangeError(`TSC frequency ${this.timeStampFrequencyHz} Hz is outside 1 MHz to 100 GHz`);
    this.timeStampEpochMs = options.timeStampEpochMs ?? 0;
    this.kvmClock = new KvmClock(this);
    this.bootstrap = options.bootstrap ?? true;
    this.floatingPointError = options.floatingPointError;
    this.mmu = new Mmu(this, this.memory, this.mmio);
    this.msrs = new MsrFile(this);
    this.decoder = new Decoder(buildOpcodeTable(), this.model.features, selectHandler);
    this.memory.onInvalidate((first, count) => {
      this.mmu.dropPhysical(first, count);
      this.invalidateCode(first, count);
    });
    this.reset();
    if (!this.bootstrap) this.waitingForStartup = true;
  }

  /**
   * Power-on / INIT state: real mode at F000:FFF0 with CS base FFFF0000. INIT
   * (`kind` 'init') leaves the x87 state, MXCSR and the XMM registers as they
   * were (SDM vol. 3, table 9-1).
   */
  reset(kind: 'power' | 'init' = 'power'): void {
    this.low.fill(0);
    this.high.fill(0);
    this.low[2] = this.model.signature;
    this.flags.setAll(FLAGS_FIXED_ONE);
    for (let seg = 0; seg < 6; seg++) this.setSegmentCache(seg, 0, 0, 0xffff, SegAttr.P | SegAttr.S | SegAttr.WRITABLE | SegAttr.ACCESSED);
    this.setSegmentCache(Seg.CS, 0xf000, 0xffff0000, 0xffff, SegAttr.P | SegAttr.S | SegAttr.CODE | SegAttr.READABLE | SegAttr.ACCESSED);
    this.rip = 0xfff0;
    this.gdtBase = 0;
    this.gdtLimit = 0xffff;
    this.idtBase = 0;
    this.idtLimit = 0xffff;
    this.ldtSelector = 0;
    this.ldtBase = 0;
    this.ldtLimit = 0xffff;
    this.trSelector = 0;
    this.trBase = 0;
    this.trLimit = 0xffff;
    this.trAttributes = 0x8b;
    this.cr0 = Cr0.ET | Cr0.CD | Cr0.NW;
    this.cr2 = 0;
    this.cr3 = 0;
    this.cr3High = 0;
    this.cr4 = 0;
    this.efer = 0;
    this.pkru = 0;
    this.taskPriority = 0;
    this.debug.fill(0);
    this.debug[6] = 0xffff0ff0;
    this.debug[7] = 0x400;
    this.updateBreakpoints();
    this.pendingDebugTrap = 0;
    this.debugInhibitUntil = 0;
    if (kind === 'power') {
      this.fpu.powerOn();
      this.sse.reset();
      this.setFloatingPointError(false);
    }
    this.cpl = 0;
    this.halted = false;
    this.inhibitUntil = 0;
    this.nmiPending = false;
    this.nmiBlocked = false;
    this.attention = true;
    this.shutdownRequested = false;
    this.msrs.reset();
    this.mmu.flush();
    this.updateMode();
  }

  /** Current privilege level. */
  get cpl(): number {
    return this.privilege;
  }

  set cpl(value: number) {
    this.privilege = value;
    this.memoryPrivilege = value;
  }

  /** The privilege memory accesses are checked at: CPL, or 0 during descriptor-table and TSS accesses. */
  get memoryPrivilege(): number {
    return this.accessPrivilege;
  }

  set memoryPrivilege(value: number) {
    if (value === this.accessPrivilege) return;
    this.accessPrivilege = value;
    this.mmu.setUserAccess(value === 3);
  }

  /** Reads `size` bytes at `linear` as a supervisor access (descriptor tables, TSS). */
  supervisorRead(linear: number, size: number): number {
    this.memoryPrivilege = 0;
    const value = this.readLinear(linear, size);
    this.memoryPrivilege = this.privilege;
    return value;
  }

  supervisorWrite(linear: number, size: number, value: number): void {
    this.memoryPrivilege = 0;
    this.writeLinear(linear, size, value, 0);
    this.memoryPrivilege = this.privilege;
  }

  /** Recomputes every segment's access checks (after a mode or privilege change). */
  refreshAllSegments(): void {
    for (let seg = 0; seg < 6; seg++) this.refreshSegmentAccess(seg);
    this.updateMode();
  }

  // ---- ProcessorSignals ----

  nmi(): void {
    this.nmiPending = true;
    this.attention = true;
  }

  init(): void {
    this.initRequested = true;
    this.attention = true;
  }

  startup(vector: number): void {
    if (!this.waitingForStartup) return;
    this.startupVector = vector & 0xff;
    this.attention = true;
  }

  wake(): void {
    this.attention = true;
  }

  /**
   * IGNNE#: while asserted, a pending unmasked x87 exception (CR0.NE = 0) no
   * longer freezes waiting x87 instructions; a CPU frozen on one resumes.
   * A PC chipset asserts it on a write to port 0xF0 and releases it when FERR#
   * goes inactive.
   */
  ignoreNumericError(asserted: boolean): void {
    this.ignoringNumericError = asserted;
    if (asserted && this.halted && this.floatingPointErrorAsserted) {
      this.halted = false;
      this.attention = true;
    }
  }

  /** Drives FERR# (only edges reach the line). */
  setFloatingPointError(asserted: boolean): void {
    if (this.floatingPointErrorAsserted === asserted) return;
    this.floatingPointErrorAsserted = asserted;
    this.floatingPointError?.setLevel(asserted);
  }

  /**
   * CR0.NE = 0 with FERR# wired: a waiting x87 instruction with an unmasked
   * exception pending asserts FERR# and freezes before it executes (SDM vol. 1,
   * 8.7 and appendix D): the CPU waits as after HLT, an interrupt is taken with
   * this instruction as its return address, and it is tried again afterwards.
   */
  freezeOnFloatingPointError(): never {
    this.setFloatingPointError(true);
    this.halted = true;
    this.attention = true;
    this.faultVector = FROZEN;
    throw GUEST_FAULT;
  }

  // ---- registers ----

  reg8(register: number): number {
    return register < 16 ? this.low[register]! & 0xff : (this.low[register - 16]! >> 8) & 0xff;
  }

  setReg8(register: number, value: number): void {
    if (register < 16) this.low[register] = (this.low[register]! & ~0xff) | (value & 0xff);
    else this.low[register - 16] = (this.low[register - 16]! & ~0xff00) | ((value & 0xff) << 8);
  }

  /** Reads a register of `size` bytes: the low half (unsigned for 1 and 2 bytes), the high half in `valueHigh`. */
  readRegister(register: number, size: number): number {
    switch (size) {
      case 1: return this.reg8(register);
      case 2: return this.low[register]! & 0xffff;
      case 4: return this.low[register]!;
      default: this.valueHigh = this.high[register]!; return this.low[register]!;
    }
  }

  /** Writes a register of `size` bytes; 32-bit writes clear the high half, 8/16-bit writes merge. */
  writeRegister(register: number, size: number, value: number, high: number): void {
    switch (size) {
      case 1: this.setReg8(register, value); return;
      case 2: this.low[register] = (this.low[register]! & ~0xffff) | (value & 0xffff); return;
      case 4: this.low[register] = value; this.high[register] = 0; return;
      default: this.low[register] = value; this.high[register] = high; return;
    }
  }

  /** A 64-bit register as a signed number (exact for canonical addresses). */
  registerNumber(register: number): number {
    return this.high[register]! * TWO_32 + (this.low[register]! >>> 0);
  }

  setRegisterNumber(register: number, value: number): void {
    this.low[register] = value | 0;
    this.high[register] = Math.floor(value / TWO_32) | 0;
  }

  // ---- segments and modes ----

  setSegmentCache(seg: number, selector: number, base: number, limit: number, attributes: number): void {
    this.segmentSelector[seg] = selector;
    this.segmentBase[seg] = base;
    this.segmentLimit[seg] = limit;
    this.segmentAttributes[seg] = attributes;
    this.refreshSegmentAccess(seg);
    if (seg === Seg.CS || seg === Seg.SS) this.updateMode();
  }

  refreshSegmentAccess(seg: number): void {
    const attributes = this.segmentAttributes[seg]!;
    const real = (this.cr0 & Cr0.PE) === 0 || (this.flags.bits & Flag.VM) !== 0;
    let access = 0;
    if (real) access = 1 | 2 | 8;
    else if ((attributes & SegAttr.P) !== 0 && (attributes & SegAttr.S) !== 0 && !(seg !== Seg.CS && (this.segmentSelector[seg]! & 0xfffc) === 0 && !this.isLongMode())) {
      access = 8;
      if ((attributes & SegAttr.CODE) !== 0) access |= (attributes & SegAttr.READABLE) !== 0 ? 1 : 0;
      else access |= 1 | ((attributes & SegAttr.WRITABLE) !== 0 ? 2 : 0) | ((attributes & SegAttr.EXPAND_DOWN) !== 0 ? 4 : 0);
    }
    if ((attributes & SegAttr.DB) !== 0) access |= 16;
    this.segmentAccess[seg] = access;
    const plain = (access & 4) === 0 && this.dataBreakpointMask === 0;
    this.readLimit[seg] = plain && (access & 9) === 9 ? this.segmentLimit[seg]! : -1;
    this.writeLimit[seg] = plain && (access & 10) === 10 ? this.segmentLimit[seg]! : -1;
    const flat = plain && (access & 11) === 11 && this.segmentBase[seg] === 0 && this.segmentLimit[seg] === 0xffffffff;
    this.flatSegments = flat ? this.flatSegments | (1 << seg) : this.flatSegments & ~(1 << seg);
  }

  isLongMode(): boolean {
    return (this.efer & Efer.LMA) !== 0;
  }

  /** Recomputes code/stack size after CS, SS, CR0 or EFER changed. */
  updateMode(): void {
    const cs = this.segmentAttributes[Seg.CS]!;
    if ((this.cr0 & Cr0.PE) === 0) this.codeMode = CodeMode.Bits16;
    else if (this.isLongMode() && (cs & SegAttr.L) !== 0) this.codeMode = CodeMode.Bits64;
    else this.codeMode = (cs & SegAttr.DB) !== 0 ? CodeMode.Bits32 : CodeMode.Bits16;
    if (this.codeMode === CodeMode.Bits64) this.stackSize = 8;
    else this.stackSize = (this.segmentAttributes[Seg.SS]! & SegAttr.DB) !== 0 && (this.cr0 & Cr0.PE) !== 0 ? 4 : 2;
    this.fetchLinearBase = Number.NaN;
    this.attention = true;
  }

  /**
   * The linear address of `[seg:offset]` for an access of `size` bytes,
   * after limit and type checks (#GP, or #SS for the stack segment).
   */
  linear(seg: number, offset: number, size: number, write: boolean): number {
    if (this.codeMode === CodeMode.Bits64) {
      const linear = seg >= Seg.FS ? offset + this.segmentBase[seg]! : offset;
      if (linear < -0x800000000000 || linear >= 0x800000000000) this.fault(seg === Seg.SS ? Vector.SS : Vector.GP, 0);
      if (this.dataBreakpointMask !== 0) this.checkDataBreakpoints(linear, size, write);
      return linear;
    }
    return this.linearSegmented(seg, offset, size, write);
  }

  /** `linear` outside 64-bit mode (for the fast forms, which know their mode). */
  linearSegmented(seg: number, offset: number, size: number, write: boolean): number {
    // Flat segments need no base and only the limit compare of integers.
    if ((this.flatSegments & (1 << seg)) !== 0 && offset <= 0x100000000 - size) return offset >>> 0;
    // The common case (a usable segment of the right type, within its limit, no data breakpoints) is one compare.
    if (offset + size - 1 <= (write ? this.writeLimit[seg]! : this.readLimit[seg]!)) return (this.segmentBase[seg]! + offset) >>> 0;
    return this.linearChecked(seg, offset, size, write);
  }

  /** `linear` outside 64-bit mode with every check. */
  private linearChecked(seg: number, offset: number, size: number, write: boolean): number {
    const access = this.segmentAccess[seg]!;
    const limit = this.segmentLimit[seg]!;
    if ((access & (write ? 10 : 9)) !== (write ? 10 : 9)) this.fault(seg === Seg.SS ? Vector.SS : Vector.GP, 0);
    const last = offset + size - 1;
    if ((access & 4) === 0) {
      if (last > limit) this.fault(seg === Seg.SS ? Vector.SS : Vector.GP, 0);
    } else if (offset <= limit || last > ((access & 16) !== 0 ? 0xffffffff : 0xffff)) {
      this.fault(seg === Seg.SS ? Vector.SS : Vector.GP, 0);
    }
    const address = (this.segmentBase[seg]! + offset) >>> 0;
    if (this.dataBreakpointMask !== 0) this.checkDataBreakpoints(address, size, write);
    return address;
  }

  // ---- debug registers ----

  /** Recomputes which of DR0–DR3 are armed, after DR7 or CR4.DE changed. */
  updateBreakpoints(): void {
    const control = this.debug[7]! >>> 0;
    let mask = 0;
    for (let n = 0; n < 4; n++) {
      if (((control >>> (n * 2)) & 3) === 0) continue;
      const kind = (control >>> (16 + n * 4)) & 3;
      if (kind === 0) mask |= 1 << n;
      else if (kind === 2) mask |= (this.cr4 & Cr4.DE) !== 0 ? 1 << (n + 8) : 0;
      else mask |= 1 << (n + 4);
    }
    this.breakpointMask = mask;
    this.dataBreakpointMask = mask & 0xf0;
    for (let seg = 0; seg < 6; seg++) this.refreshSegmentAccess(seg);
    this.attention = true;
  }

  /** The DR6 B-bits of armed breakpoints of kind `shift` (0 instruction, 4 data, 8 I/O) that `[address, address + size)` touches. */
  private breakpointHits(shift: number, address: number, size: number, write: boolean): number {
    const control = this.debug[7]! >>> 0;
    let hits = 0;
    for (let n = 0; n < 4; n++) {
      if ((this.breakpointMask & (1 << (n + shift))) === 0) continue;
      // Write-only data breakpoints (R/W = 01) ignore reads.
      if (shift === 4 && !write && ((control >>> (16 + n * 4)) & 3) === 1) continue;
      const lengthCode = (control >>> (18 + n * 4)) & 3;
      const length = shift === 0 ? 1 : lengthCode === 0 ? 1 : lengthCode === 1 ? 2 : lengthCode === 2 ? 8 : 4;
      const start = shift === 8 ? this.debug[n]! & 0xffff : this.debug[n]!;
      const first = start - (start % length);
      if (shift === 0 ? address === start : address < first + length && address + size > first) hits |= 1 << n;
    }
    return hits;
  }

  private checkDataBreakpoints(linear: number, size: number, write: boolean): void {
    const hits = this.breakpointHits(4, linear, size, write);
    if (hits !== 0) {
      this.pendingDebugTrap |= hits;
      this.attention = true;
    }
  }

  /** An I/O breakpoint (CR4.DE, R/W = 10) on `[port, port + size)` traps after the instruction. */
  checkIoBreakpoints(port: number, size: number): void {
    if ((this.breakpointMask & 0xf00) === 0) return;
    const hits = this.breakpointHits(8, port, size, true);
    if (hits !== 0) {
      this.pendingDebugTrap |= hits;
      this.attention = true;
    }
  }

  /** The new TSS's T bit: a #DB trap (DR6.BT) before the new task's first instruction. */
  taskSwitchTrap(): void {
    this.pendingDebugTrap |= DR6_BT;
    this.attention = true;
  }

  /** Raises #DB as a fault with DR6 bits `status` (the handler is entered with DR7.GD clear). */
  debugFault(status: number): never {
    this.debug[6] = (this.debug[6]! | status) >>> 0;
    this.debug[7] = (this.debug[7]! & ~DR7_GD) >>> 0;
    return this.fault(Vector.DB);
  }

  /** Delivers a #DB trap with DR6 bits `status` (B0–B3 replace the old ones when any is set). */
  private deliverDebugTrap(status: number): void {
    const previous = this.debug[6]!;
    this.debug[6] = (((status & 0xf) !== 0 ? previous & ~0xf : previous) | status) >>> 0;
    this.debug[7] = (this.debug[7]! & ~DR7_GD) >>> 0;
    this.currentRip = this.rip;
    deliverEvent(this, Vector.DB, -1, EventKind.Exception);
  }

  // ---- memory through segments ----

  read(seg: number, offset: number, size: number): number {
    const linear = this.linear(seg, offset, size, false);
    return this.readLinear(linear, size);
  }

  write(seg: number, offset: number, size: number, value: number, high: number): void {
    const linear = this.linear(seg, offset, size, true);
    this.writeLinear(linear, size, value, high);
  }

  readLinear(linear: number, size: number): number {
    switch (size) {
      case 1: return this.mmu.read8(linear);
      case 2: return this.mmu.read16(linear);
      case 4: return this.mmu.read32(linear);
      default: return this.mmu.read64(linear);
    }
  }

  writeLinear(linear: number, size: number, value: number, high: number): void {
    switch (size) {
      case 1: this.mmu.write8(linear, value); return;
      case 2: this.mmu.write16(linear, value); return;
      case 4: this.mmu.write32(linear, value); return;
      default: this.mmu.write64(linear, value, high); return;
    }
  }

  // ---- stack ----

  /** The stack pointer as an offset in SS for the current stack width. */
  stackPointer(): number {
    const size = this.stackSize;
    return size === 8 ? this.registerNumber(4) : size === 4 ? this.low[4]! >>> 0 : this.low[4]! & 0xffff;
  }

  setStackPointer(value: number): void {
    const size = this.stackSize;
    if (size === 8) this.setRegisterNumber(4, value);
    else if (size === 4) { this.low[4] = value | 0; this.high[4] = 0; }
    else this.low[4] = (this.low[4]! & ~0xffff) | (value & 0xffff);
  }

  private wrapStack(value: number): number {
    const size = this.stackSize;
    return size === 8 ? value : size === 4 ? value >>> 0 : value & 0xffff;
  }

  push(size: number, value: number, high: number): void {
    const top = this.wrapStack(this.stackPointer() - size);
    this.write(Seg.SS, top, size, value, high);
    this.setStackPointer(top);
  }

  /** Pops `size` bytes (high half in `valueHigh`). */
  pop(size: number): number {
    const top = this.stackPointer();
    const value = this.read(Seg.SS, top, size);
    this.setStackPointer(this.wrapStack(top + size));
    return value;
  }

  /** Reads the stack `depth` bytes above the top without popping. */
  peek(depth: number, size: number): number {
    return this.read(Seg.SS, this.wrapStack(this.stackPointer() + depth), size);
  }

  // ---- faults ----

  /** Raises guest exception `vector` (with `errorCode`, or -1 for none) and abandons the instruction. */
  fault(vector: number, errorCode = -1): never {
    this.memoryPrivilege = this.privilege;
    this.faultVector = vector;
    this.faultErrorCode = errorCode;
    throw GUEST_FAULT;
  }

  /** Drops decoded instructions of physical pages `[first, first + count)`. */
  invalidateCode(first: number, count: number): void {
    this.codeCache.drop(first, count);
    this.fetchLinearBase = Number.NaN;
    this.attention = true;
  }

  /** A device was accessed: it may have raised an interrupt. */
  noteDeviceAccess(): void {
    this.attention = true;
  }

  /** Paging structures or modes changed: forget translations. */
  flushTranslations(): void {
    this.mmu.flush();
    this.fetchLinearBase = Number.NaN;
    this.attention = true;
  }

  /** CR8 as the local APIC or the internal register holds it. */
  get cr8(): number {
    return this.apic !== undefined ? this.apic.taskPriorityClass : this.taskPriority;
  }

  setCr8(value: number): void {
    if (this.apic !== undefined) this.apic.setTaskPriorityClass(value & 0xf);
    else this.taskPriority = value & 0xf;
  }

  /** The time-stamp counter now. */
  timeStampCounter(): number {
    return this.timeStampSourceNow() + this.timeStampOffset;
  }

  /** The time-stamp counter's source, before the offset a TSC write adds. */
  timeStampSourceNow(): number {
    return this.timeStampSource === undefined ? this.instructionCount : this.timeStampSource();
  }

  /**
   * Makes `run` return (reason `'exit-request'`) after the current
   * instruction: a clock read past the end of a time slice, a device with
   * work for the event loop. QEMU's cpu_exit.
   */
  requestExit(): void {
    this.exitRequested = true;
    this.attention = true;
  }

  // ---- fetch ----

  /** One code byte at linear `linear` (slow path). */
  codeByte(linear: number): number {
    const frameBytes = this.fetchFrameBytes;
    const offset = linear - this.fetchLinearBase;
    if (frameBytes !== undefined && offset >= 0 && offset < 4096) return frameBytes[this.fetchFrameOffset + offset]!;
    return this.mmu.fetchByte(linear);
  }

  private fetch(): Instruction {
    const rip = this.rip;
    const linear = this.codeMode === CodeMode.Bits64 ? rip : (this.segmentBase[Seg.CS]! + rip) >>> 0;
    // An integer page offset keeps the cache lookup a fast element load.
    const offset = linear & 0xfff;
    if (linear - offset !== this.fetchLinearBase) this.refillFetch(linear);
    const page = this.fetchPage;
    let instruction = page !== undefined ? page[offset] : undefined;
    if (instruction === undefined || instruction.mode !== this.codeMode) instruction = this.decodeAt(linear, offset);
    // Its end is tested against the CS limit where it runs: per block, or in `runAlone`.
    return instruction;
  }

  private refillFetch(linear: number): void {
    if (this.codeMode === CodeMode.Bits64 && (linear < -0x800000000000 || linear >= 0x800000000000)) this.fault(Vector.GP, 0);
    if (this.codeMode !== CodeMode.Bits64 && this.rip > this.segmentLimit[Seg.CS]!) this.fault(Vector.GP, 0);
    const base = linear - (linear & 0xfff);
    const frame = this.mmu.fetchFrame(linear);
    this.fetchLinearBase = base;
    if (frame === undefined) {
      this.fetchPage = undefined;
      this.fetchFrameBytes = undefined;
      return;
    }
    const physicalPage = this.mmu.fetchPhysical;
    this.fetchFrameBytes = frame.u8;
    this.fetchFrameOffset = frame.byteOffset;
    let page = this.codeCache.get(physicalPage);
    if (page === undefined) {
      page = this.codeCache.create(physicalPage);
      this.mmu.protectCode(physicalPage);
    }
    this.fetchPage = page;
  }

  private decodeAt(linear: number, offset: number): Instruction {
    this.codeSource.base = linear;
    const instruction = this.decoder.decode(this.codeSource, this.codeMode, this.scratch);
    instruction.inline = inlineHandlerOf(instruction.run);
    const page = this.fetchPage;
    if (page !== undefined && offset + instruction.length <= 4096) {
      // Keep it: the scratch object becomes the cached one and a new scratch takes its place.
      page[offset] = instruction;
      this.scratch = new Instruction();
    }
    return instruction;
  }

  /** Decodes and disassembles the instruction at `rip` (for traces and error messages). */
  disassembleAt(rip: number = this.rip): string {
    try {
      const linear = this.codeMode === CodeMode.Bits64 ? rip : (this.segmentBase[Seg.CS]! + rip) >>> 0;
      const source = { cpu: this as CpuCore, byteAt(offset: number): number { return this.cpu.mmu.fetchByte(linear + offset); } };
      return disassemble(this.decoder.decode(source, this.codeMode, new Instruction()));
    } catch (error) {
      if (error === GUEST_FAULT) return '(not mapped)';
      throw error;
    }
  }

  // ---- running ----

  /**
   * Executes up to `limit` instructions. Stops early at HLT (nothing to wake
   * it), shutdown (triple fault), or while an AP waits for a SIPI. Guest
   * faults become guest exceptions; nothing the guest does throws out of here.
   */
  run(limit: number): RunResult {
    let budget = limit;
    // Instructions that faulted: they use up the budget but did not retire.
    let abandoned = 0;
    // The block being run: the instruction count at its start (or -1), how many of it retired, and
    // where it starts, to find the address of the instruction that faulted.
    let first = -1;
    let index = 0;
    let running: Block = UNLINKED;
    let runningRip = 0;
    this.attention = true;
    if (this.kvmClock.stale) this.kvmClock.publish();
    while (budget > 0) {
      if (this.attention) {
        if (this.exitRequested) {
          this.exitRequested = false;
          return { reason: 'exit-request', retired: limit - budget - abandoned };
        }
        const stop = this.serviceEvents();
        if (stop !== undefined) return { reason: stop, retired: limit - budget - abandoned };
        if (this.halted) return { reason: 'halted', retired: limit - budget - abandoned };
      }
      try {
        // At least one instruction runs after the events were looked at (an STI or MOV SS shadow needs it).
        // Mode, CS and the current code page stay in locals: anything that changes them sets `attention`.
        const mode = this.codeMode;
        const long = mode === CodeMode.Bits64;
        const codeBase = this.segmentBase[Seg.CS]!;
        // A block runs without limit or wrap checks when it ends within the CS limit and below the wrap at 2^16 or 2^32.
        const blockLimit = long ? Number.POSITIVE_INFINITY : Math.min(this.segmentLimit[Seg.CS]!, mode === CodeMode.Bits16 ? 0xffff : 0xffffffff);
        let pageBase = this.fetchLinearBase;
        let page = this.fetchPage;
        // Blocks already run follow the `next` and `branch` links of the last one instead of
        // looking the page up. `previous` is UNLINKED when that was not a block of this page.
        let previous = UNLINKED;
        let fallThrough = Number.NaN;
        do {
          const rip = this.rip;
          // A fault while fetching belongs to the instruction at RIP.
          this.currentRip = rip;
          let block = rip === fallThrough ? previous.next : rip === previous.branchRip ? previous.branch : undefined;
          if (block === undefined) {
            const linear = long ? rip : (codeBase + rip) >>> 0;
            const offset = linear - pageBase;
            let instruction = offset >= 0 && offset < 4096 && page !== undefined ? page[offset] : undefined;
            if (instruction === undefined || instruction.mode !== mode) {
              instruction = this.fetch();
              if (this.fetchPage !== page) previous = UNLINKED;
              pageBase = this.fetchLinearBase;
              page = this.fetchPage;
              // Not kept in a page (MMIO code, or it crosses into the next page): it runs alone.
              if (page === undefined || page[linear - pageBase] !== instruction) {
                previous = UNLINKED;
                this.runAlone(instruction, rip);
                budget--;
                continue;
              }
            }
            block = instruction.block ?? this.buildBlock(instruction, linear);
            if (previous !== UNLINKED) {
              if (rip === fallThrough) previous.next = block;
              else {
                previous.branch = block;
                previous.branchRip = rip;
              }
            }
          }
          if (rip + block.byteLength - 1 > blockLimit) {
            previous = UNLINKED;
            this.runAlone(block.instructions[0]!, rip);
            budget--;
            continue;
          }
          const instructions = block.instructions;
          const ends = block.ends;
          const count = Math.min(instructions.length, budget);
          const end = rip + block.byteLength;
          first = this.instructionCount;
          index = 0;
          running = block;
          runningRip = rip;
          // RIP and currentRip are not kept per instruction: fast forms do not read them, except for a
          // RIP-relative operand. A jump, call or return, always last, reads RIP as the address after it;
          // a generic handler gets both set.
          this.rip = end;
          const usesRip = block.usesRip;
          // Set when a generic handler moved RIP: the block is left there.
          let moved = false;
          instructionLoop: while (index < count) {
            const instruction = instructions[index]!;
            if (usesRip) this.rip = rip + ends[index]!;
            switch (instruction.inline) {
              case InlineHandler.MovLoad32: movLoad32(this, instruction); break;
              case InlineHandler.AluRegister: aluRegister(this, instruction); break;
              case InlineHandler.MovRegister32: movRegister32(this, instruction); break;
              case InlineHandler.MovStore32: movStore32(this, instruction); break;
              case InlineHandler.None: {
                // A generic handler may read the instruction count (RDTSC, STI's shadow) or move RIP itself.
                const next = rip + ends[index]!;
                this.currentRip = rip + block.offsetOf(index);
                this.rip = next;
                this.instructionCount = first + index;
                instruction.run(this, instruction);
                if (this.rip !== next) {
                  moved = true;
                  index++;
                  break instructionLoop;
                }
                this.rip = end;
                break;
              }
              case InlineHandler.ConditionalJump32: conditionalJump32(this, instruction); break;
              case InlineHandler.MovLoad64: movLoad64(this, instruction); break;
              case InlineHandler.Jcc: jcc(this, instruction); break;
              case InlineHandler.MovStore64: movStore64(this, instruction); break;
              case InlineHandler.MovRegister64: movRegister64(this, instruction); break;
              case InlineHandler.ShiftRegister32: shiftRegister32(this, instruction); break;
              case InlineHandler.AluImmediate: aluImmediate(this, instruction); break;
              case InlineHandler.ImulRegister32: imulRegister32(this, instruction); break;
              case InlineHandler.Lea32: lea32(this, instruction); break;
              case InlineHandler.MovzxRegister32: movzxRegister32(this, instruction); break;
              case InlineHandler.MovzxLoad32: movzxLoad32(this, instruction); break;
              case InlineHandler.SetConditionRegister: setConditionRegister(this, instruction); break;
              case InlineHandler.ConditionalMove32: conditionalMove32(this, instruction); break;
              case InlineHandler.PushRegister32: pushRegister32(this, instruction); break;
              case InlineHandler.PopRegister32: popRegister32(this, instruction); break;
              case InlineHandler.AluLoad: aluLoad(this, instruction); break;
              case InlineHandler.MovImmediate32: movImmediate32(this, instruction); break;
              case InlineHandler.IncrementRegister32: incrementRegister32(this, instruction); break;
              case InlineHandler.TestRegister: testRegister(this, instruction); break;
              case InlineHandler.MovLoad8: movLoad8(this, instruction); break;
              case InlineHandler.AluStore32: aluStore32(this, instruction); break;
              case InlineHandler.Jump32: jump32(this, instruction); break;
              case InlineHandler.CallRelative32: callRelative32(this, instruction); break;
              case InlineHandler.Return32: return32(this, instruction); break;
              case InlineHandler.MovStore8: movStore8(this, instruction); break;
              case InlineHandler.DecrementRegister32: decrementRegister32(this, instruction); break;
              case InlineHandler.Jmp: jmp(this, instruction); break;
              case InlineHandler.MovLoad16: movLoad16(this, instruction); break;
              case InlineHandler.MovStore16: movStore16(this, instruction); break;
              case InlineHandler.MovStoreImmediate32: movStoreImmediate32(this, instruction); break;
              case InlineHandler.AluRegister8: aluRegister8(this, instruction); break;
              case InlineHandler.TestByte: testByte(this, instruction); break;
              case InlineHandler.IncrementMemory32: incrementMemory32(this, instruction); break;
              case InlineHandler.DecrementMemory32: decrementMemory32(this, instruction); break;
              case InlineHandler.NotRegister32: notRegister32(this, instruction); break;
              case InlineHandler.ShiftRegister16: shiftRegister16(this, instruction); break;
            }
            index++;
            if (this.attention) break;
          }
          // Left before its end (an instruction limit, a device access): RIP is the next instruction's.
          if (index < instructions.length && !moved) this.rip = rip + block.offsetOf(index);
          this.instructionCount = first + index;
          budget -= index;
          first = -1;
          previous = block;
          fallThrough = end;
        } while (budget > 0 && !this.attention);
      } catch (error) {
        if (first >= 0) {
          // The instructions of the block before the one that stopped it retired. A fast form leaves
          // currentRip to be worked out here; a generic handler set it (a task switch moves it to the new task).
          if (running.instructions[index]!.inline !== InlineHandler.None) this.currentRip = runningRip + running.offsetOf(index);
          this.instructionCount = first + index;
          budget -= index;
          first = -1;
        }
        if (error !== GUEST_FAULT) {
          this.events({ kind: 'internal-error', error, rip: this.currentRip });
          return { reason: 'internal-error', retired: limit - budget - abandoned, error };
        }
        budget--;
        abandoned++;
        this.rip = this.currentRip;
        // A frozen x87 instruction (freezeOnFloatingPointError) raises nothing: the CPU waits.
        if (this.faultVector === FROZEN) continue;
        const stop = this.deliverFault();
        if (stop !== undefined) return { reason: stop, retired: limit - budget - abandoned };
      }
      if (this.shutdownRequested) return { reason: 'shutdown', retired: limit - budget - abandoned };
    }
    return { reason: 'limit', retired: limit - budget - abandoned };
  }

  /** Runs one instruction with the CS limit and RIP wrap checks a block leaves out. */
  private runAlone(instruction: Instruction, rip: number): void {
    this.currentRip = rip;
    const next = rip + instruction.length;
    if (this.codeMode !== CodeMode.Bits64 && next - 1 > this.segmentLimit[Seg.CS]!) this.fault(Vector.GP, 0);
    // RIP wraps at 2^16 or 2^32 outside 64-bit mode.
    this.rip = this.codeMode === CodeMode.Bits64 ? next : this.codeMode === CodeMode.Bits16 ? next & 0xffff : next >>> 0;
    instruction.run(this, instruction);
    this.instructionCount++;
  }

  /**
   * Builds the block that starts with `first` (kept at linear `linear` of the
   * current fetch page): it runs on to the first jump, call or return, the
   * longest block, or the last instruction that surely ends in this page.
   */
  private buildBlock(first: Instruction, linear: number): Block {
    const block = new Block();
    const page = this.fetchPage!;
    const start = linear - this.fetchLinearBase;
    let instruction = first;
    let end = 0;
    for (;;) {
      block.instructions.push(instruction);
      end += instruction.length;
      block.ends.push(end);
      if (instruction.hasMemory && instruction.base === RIP_BASE) block.usesRip = true;
      if (endsBlock(instruction) || block.instructions.length === MAX_BLOCK_INSTRUCTIONS) break;
      const offset = start + end;
      // The next instruction might cross into the next page, whose translation may fault: not decoded ahead.
      if (offset + MAX_INSTRUCTION_LENGTH > 4096) break;
      const cached = page[offset];
      instruction = cached !== undefined && cached.mode === first.mode ? cached : this.decodeAt(linear + end, offset);
    }
    block.byteLength = end;
    first.block = block;
    return block;
  }

  /** Delivers the fault in faultVector/faultErrorCode, escalating to #DF and shutdown as the SDM says. */
  private deliverFault(): StopReason | undefined {
    const first = this.faultVector;
    const firstCode = this.faultErrorCode;
    // The instruction did not complete: its data-breakpoint traps are void.
    this.pendingDebugTrap &= DR6_BT;
    // A fault's frame carries RF = 1 so that IRET retries without an instruction breakpoint firing (SDM vol. 3 17.3.1.1).
    if (isFaultClass(first)) this.flags.bits |= Flag.RF;
    if (this.events !== ignoreEvents) {
      this.events({ kind: 'exception', vector: first, errorCode: firstCode < 0 ? undefined : firstCode, rip: this.currentRip, instruction: this.disassembleAt(this.currentRip) });
    }
    try {
      deliverEvent(this, first, firstCode, EventKind.Exception);
      return undefined;
    } catch (error) {
      if (error !== GUEST_FAULT) throw error;
    }
    const second = this.faultVector;
    const firstClass = exceptionClass(first);
    const secondClass = exceptionClass(second);
    const double = first === Vector.DF ? secondClass !== 'benign' : (firstClass === 'contributory' && secondClass === 'contributory') || (firstClass === 'page' && secondClass !== 'benign');
    if (first === Vector.DF && double) return this.tripleFault();
    try {
      if (double) deliverEvent(this, Vector.DF, 0, EventKind.Exception);
      else deliverEvent(this, second, this.faultErrorCode, EventKind.Exception);
      return undefined;
    } catch (error) {
      if (error !== GUEST_FAULT) throw error;
      return this.tripleFault();
    }
  }

  private tripleFault(): StopReason {
    this.events({ kind: 'triple-fault', rip: this.currentRip });
    this.shutdownRequested = true;
    return 'shutdown';
  }

  /** Handles INIT/SIPI, NMI and maskable interrupts between instructions. */
  private serviceEvents(): StopReason | undefined {
    if (this.shutdownRequested) return 'shutdown';
    if (this.initRequested) {
      this.initRequested = false;
      this.reset('init');
      if (!this.bootstrap) this.waitingForStartup = true;
    }
    if (this.waitingForStartup) {
      if (this.startupVector < 0) return 'wait-for-sipi';
      this.waitingForStartup = false;
      this.setSegmentCache(Seg.CS, this.startupVector << 8, this.startupVector << 12, 0xffff, this.segmentAttributes[Seg.CS]!);
      this.rip = 0;
      this.startupVector = -1;
    }
    try {
      if (this.singleStepFrom >= 0) {
        // TF was set when the last instruction started: if it retired, a #DB trap (DR6.BS) is due.
        if (this.instructionCount > this.singleStepFrom) this.pendingDebugTrap |= DR6_BS;
        this.singleStepFrom = -1;
      }
      // Priorities as SDM vol. 3 table 6-2 orders them: traps of the last instruction (task-switch
      // T bit, single step, data and I/O breakpoints; held back in a MOV SS shadow), NMI, INTR, then
      // instruction breakpoints on the next instruction.
      if (this.pendingDebugTrap !== 0 && this.instructionCount >= this.debugInhibitUntil) {
        const status = this.pendingDebugTrap;
        this.pendingDebugTrap = 0;
        this.deliverDebugTrap(status);
      }
      if (this.instructionCount < this.inhibitUntil) {
        // After MOV SS / POP SS an Intel CPU holds back an instruction breakpoint on the next instruction; an
        // AMD one delivers it (kvm-unit-tests' emulator test expects each vendor's behaviour).
        if (this.instructionCount < this.debugInhibitUntil && this.model.vendor === 'AuthenticAMD') this.checkInstructionBreakpoint();
        return this.armSingleStep();
      }
      if (this.nmiPending && !this.nmiBlocked) {
        this.nmiPending = false;
        this.nmiBlocked = true;
        this.halted = false;
        this.currentRip = this.rip;
        deliverEvent(this, Vector.NMI, -1, EventKind.External);
        this.deliverTaskSwitchTrap();
        return undefined;
      }
      if ((this.flags.bits & Flag.IF) !== 0 && this.interrupts !== undefined && this.interrupts.pending()) {
        const vector = this.interrupts.acknowledge() & 0xff;
        this.halted = false;
        this.currentRip = this.rip;
        deliverEvent(this, vector, -1, EventKind.External);
        this.deliverTaskSwitchTrap();
        return undefined;
      }
      this.checkInstructionBreakpoint();
    } catch (error) {
      if (error !== GUEST_FAULT) throw error;
      const stop = this.deliverFault();
      if (stop !== undefined) return stop;
    }
    return this.armSingleStep();
  }

  /** An instruction breakpoint (DR0–DR3) on the next instruction raises #DB (a fault) before it runs, unless RF holds it back. */
  private checkInstructionBreakpoint(): void {
    if ((this.flags.bits & Flag.RF) !== 0) {
      // RF suppresses instruction breakpoints for one instruction and is cleared as it starts.
      this.flags.bits &= ~Flag.RF;
    } else if ((this.breakpointMask & 0xf) !== 0 && !this.halted) {
      const linear = this.codeMode === CodeMode.Bits64 ? this.rip : (this.segmentBase[Seg.CS]! + this.rip) >>> 0;
      const hits = this.breakpointHits(0, linear, 1, false);
      if (hits !== 0) {
        this.debug[6] = ((this.debug[6]! & ~0xf) | hits) >>> 0;
        this.currentRip = this.rip;
        this.debugFault(0);
      }
    }
  }

  /** A task switch while delivering an interrupt may have raised a T-bit trap: it comes before the new task's first instruction. */
  private deliverTaskSwitchTrap(): void {
    if ((this.pendingDebugTrap & DR6_BT) === 0) return;
    const status = this.pendingDebugTrap;
    this.pendingDebugTrap = 0;
    this.deliverDebugTrap(status);
  }

  /**
   * With TF set, the next instruction runs alone and is followed by a #DB
   * trap. Instruction breakpoints, RF and pending debug traps also keep
   * `attention` set, so the run loop comes back here before every instruction.
   */
  private armSingleStep(): undefined {
    if ((this.flags.bits & Flag.TF) !== 0) {
      this.singleStepFrom = this.instructionCount;
      this.attention = true;
    } else if (this.instructionCount >= this.inhibitUntil && (this.breakpointMask & 0xf) === 0 && this.pendingDebugTrap === 0 && (this.flags.bits & Flag.RF) === 0) {
      this.attention = false;
    }
    return undefined;
  }

  /**
   * SYSCALL and SYSRET single-step on TF as it is at their end, not at their
   * start (a SYSCALL whose FMASK clears TF raises no #DB in the kernel; a
   * SYSRET that sets TF from R11 traps before the first user instruction):
   * called by them once RFLAGS is final.
   */
  singleStepOnFinalFlags(): void {
    if ((this.flags.bits & Flag.TF) !== 0) {
      this.singleStepFrom = this.instructionCount;
      this.attention = true;
    } else this.singleStepFrom = -1;
  }

  // ---- convenience for handlers ----

  /** Full RFLAGS. */
  getFlags(): number {
    return this.flags.get();
  }

  /** Sets RFLAGS bits (no privilege rules; callers apply them). */
  setFlags(value: number): void {
    const before = this.flags.bits;
    this.flags.setAll((value & 0x3f7fd5) | FLAGS_FIXED_ONE);
    if (((before ^ value) & Flag.IF) !== 0 || (value & (Flag.TF | Flag.RF)) !== 0) this.attention = true;
  }

  /** Sets a flag-result for logic ops (exported for handlers that compute flags eagerly). */
  setLogicFlags(size: number, result: number, resultHigh: number): void {
    this.flags.op = FlagOp.Logic;
    this.flags.size = size;
    this.flags.result = result;
    this.flags.resultHigh = resultHigh;
  }
}
