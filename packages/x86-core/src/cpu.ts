import { CpuCore } from './cpu-core.js';
import { Cr0, Efer, FLAGS_FIXED_ONE, Seg } from './state/registers.js';
import { type CpuState, restoreCpu, saveCpu } from './state/cpu-state.js';

export { type CpuEvent, type CpuOptions, type RunResult, type SegmentState, type StopReason } from './cpu-core.js';
import type { SegmentState } from './cpu-core.js';

/**
 * One x86-64 logical processor with the single-step API: set registers,
 * flags, segments, control registers and MSRs, run, and read everything
 * back. The engine itself is {@link CpuCore}.
 *
 * @example
 * ```ts
 * const cpu = new Cpu({ memory, io });
 * cpu.setSegment(Seg.CS, { selector: 0, base: 0, limit: 0xffff, attributes: 0x9b });
 * cpu.setRip(0x7c00);
 * const { reason } = cpu.run(1000); // 'halted' at the first HLT
 * ```
 */
export class Cpu extends CpuCore {
  // ---- the single-step API: state in and out ----

  /** A general-purpose register (0–15, see `Reg`) as an unsigned 64-bit value. */
  getRegister(register: number): bigint {
    return (BigInt(this.high[register]! >>> 0) << 32n) | BigInt(this.low[register]! >>> 0);
  }

  setRegister(register: number, value: bigint | number): void {
    const big = BigInt.asUintN(64, BigInt(value));
    this.low[register] = Number(big & 0xffffffffn) | 0;
    this.high[register] = Number(big >> 32n) | 0;
  }

  /** RIP as an unsigned 64-bit value. */
  getRip(): bigint {
    return BigInt.asUintN(64, BigInt(this.rip));
  }

  /** Sets RIP (a canonical address in 64-bit mode; an offset in CS otherwise). A halted CPU resumes there. */
  setRip(value: bigint | number): void {
    this.rip = Number(BigInt.asIntN(64, BigInt(value)));
    this.halted = false;
    this.fetchLinearBase = Number.NaN;
  }

  get rflags(): number {
    return this.getFlags();
  }

  set rflags(value: number) {
    this.flags.setAll((value & 0x3f7fd5) | FLAGS_FIXED_ONE);
    this.attention = true;
  }

  /** A segment register's selector and hidden part. */
  getSegment(seg: number): SegmentState {
    return { selector: this.segmentSelector[seg]!, base: this.segmentBase[seg]!, limit: this.segmentLimit[seg]!, attributes: this.segmentAttributes[seg]! };
  }

  /**
   * Loads a segment register's selector and hidden part directly (no
   * descriptor table involved). `attributes` holds the descriptor's access
   * byte in bits 7:0 and its flags (AVL, L, D/B, G) in bits 15:12.
   */
  setSegment(seg: number, state: SegmentState): void {
    if (seg === Seg.CS) this.cpl = (state.attributes >> 5) & 3;
    if (seg === Seg.CS && (this.cr0 & Cr0.PE) === 0) this.cpl = 0;
    this.setSegmentCache(seg, state.selector & 0xffff, state.base, state.limit, state.attributes & 0xf0ff);
    if (seg === Seg.CS && (this.cr0 & Cr0.PE) !== 0) this.cpl = (state.attributes >> 5) & 3;
  }

  /** Control register `index` (0, 2, 3, 4, 8). */
  getControlRegister(index: number): bigint {
    switch (index) {
      case 0: return BigInt(this.cr0 >>> 0);
      case 2: return BigInt.asUintN(64, BigInt(this.cr2));
      case 3: return (BigInt(this.cr3High >>> 0) << 32n) | BigInt(this.cr3 >>> 0);
      case 4: return BigInt(this.cr4 >>> 0);
      case 8: return BigInt(this.cr8);
      default: throw new RangeError(`no control register CR${index}`);
    }
  }

  /**
   * Sets a control register directly (no #GP checks), keeping the derived
   * state consistent: the paging mode, EFER.LMA and the TLB.
   */
  setControlRegister(index: number, value: bigint | number): void {
    const big = BigInt.asUintN(64, BigInt(value));
    const low = Number(big & 0xffffffffn) | 0;
    switch (index) {
      case 0:
        this.cr0 = low;
        if ((this.efer & Efer.LME) !== 0 && (low & Cr0.PG) !== 0) this.efer |= Efer.LMA;
        else this.efer &= ~Efer.LMA;
        break;
      case 2: this.cr2 = Number(BigInt.asIntN(64, big)); break;
      case 3: this.cr3 = low; this.cr3High = Number(big >> 32n) | 0; break;
      case 4: this.cr4 = low; break;
      case 8: this.setCr8(low); break;
      default: throw new RangeError(`no control register CR${index}`);
    }
    this.flushTranslations();
    this.refreshAllSegments();
    if (index === 4) this.updateBreakpoints();
  }

  /** EFER (also reachable through `writeMsr`). */
  setEfer(value: number): void {
    this.efer = value;
    if ((value & Efer.LME) !== 0 && (this.cr0 & Cr0.PG) !== 0) this.efer |= Efer.LMA;
    this.flushTranslations();
    this.refreshAllSegments();
  }

  /** Reads an MSR as the guest would; undefined where RDMSR would raise #GP. */
  readMsr(index: number): bigint | undefined {
    if (!this.msrs.read(index)) return undefined;
    return (BigInt(this.msrValue[1]!) << 32n) | BigInt(this.msrValue[0]!);
  }

  /** Writes an MSR as the guest would; false where WRMSR would raise #GP. */
  writeMsr(index: number, value: bigint | number): boolean {
    const big = BigInt.asUintN(64, BigInt(value));
    return this.msrs.write(index, Number(big & 0xffffffffn) | 0, Number(big >> 32n) | 0);
  }

  /** Descriptor-table registers. */
  getDescriptorTable(which: 'gdt' | 'idt'): { base: number; limit: number } {
    return which === 'gdt' ? { base: this.gdtBase, limit: this.gdtLimit } : { base: this.idtBase, limit: this.idtLimit };
  }

  setDescriptorTable(which: 'gdt' | 'idt', base: number, limit: number): void {
    if (which === 'gdt') { this.gdtBase = base; this.gdtLimit = limit & 0xffff; }
    else { this.idtBase = base; this.idtLimit = limit & 0xffff; }
  }

  /** Task register and LDTR hidden parts (as LTR/LLDT would load them). */
  setTaskRegister(selector: number, base: number, limit: number, attributes = 0x8b): void {
    this.trSelector = selector;
    this.trBase = base;
    this.trLimit = limit;
    this.trAttributes = attributes;
  }

  setLocalDescriptorTable(selector: number, base: number, limit: number): void {
    this.ldtSelector = selector;
    this.ldtBase = base;
    this.ldtLimit = limit;
  }

  /** Saves every architectural register and the run state (memory is saved by its owner). */
  save(): CpuState {
    return saveCpu(this);
  }

  /** Restores a state from `save()`, checking every field; throws StateError on bad input. */
  restore(state: unknown): void {
    restoreCpu(this, state);
    this.codeCache.clear();
    this.flushTranslations();
    this.refreshAllSegments();
    this.attention = true;
  }

  /** Drops every decoded instruction (for tests and after external code loads). */
  forgetDecodedCode(): void {
    this.codeCache.clear();
    this.fetchLinearBase = Number.NaN;
  }

  /** Internal run-state fields for saving. */
  get runState(): { shutdown: boolean; waitingForStartup: boolean } {
    return { shutdown: this.shutdownRequested, waitingForStartup: this.waitingForStartup };
  }

  setRunState(shutdown: boolean, waitingForStartup: boolean): void {
    this.shutdownRequested = shutdown;
    this.waitingForStartup = waitingForStartup;
  }
}
