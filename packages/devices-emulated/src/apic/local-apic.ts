import { StateReader, ignoreEvents } from '@tsvirt/interfaces';
import type { AccessSize, BusDevice, Clock, InterruptController, LocalApicPort, Observer, ProcessorSignals } from '@tsvirt/interfaces';
import type { ApicBus } from './apic-bus.js';
import {
  APIC_BASE_MSR,
  APIC_VERSION,
  ApicBaseBits,
  ApicRegister,
  DEFAULT_APIC_BASE,
  DeliveryMode,
  ErrorStatus,
  LVT_COUNT,
  LVT_MASKED,
  LVT_WRITE_MASK,
  Lvt,
  TSC_DEADLINE_MSR,
  X2APIC_MSR_FIRST,
  X2APIC_MSR_LAST,
} from './apic-registers.js';
import { ApicTimer, TimerMode } from './apic-timer.js';
import { clearVector, hasVector, highestVector, setVector } from './vector-set.js';

export type LocalApicEvent =
  | { readonly kind: 'ipi'; readonly from: number; readonly deliveryMode: number; readonly vector: number; readonly destination: number }
  | { readonly kind: 'error'; readonly esr: number }
  | { readonly kind: 'base-moved'; readonly base: number };

export interface LocalApicOptions {
  /** Initial APIC ID (also the x2APIC ID). */
  readonly id: number;
  /** Bootstrap processor: sets APIC_BASE.BSP and, as QEMU does, LINT0 to ExtINT at reset. */
  readonly bootstrap: boolean;
  readonly clock: Clock;
  readonly bus: ApicBus;
  readonly signals: ProcessorSignals;
  /** The 8259 pair behind LINT0, asked for the vector of ExtINT interrupts. */
  readonly pic?: InterruptController;
  /** APIC timer input clock; QEMU and KVM use 1 GHz. */
  readonly busFrequencyHz?: number;
  /** TSC rate for IA32_TSC_DEADLINE; the TSC is taken to count from clock time 0. */
  readonly tscFrequencyHz?: number;
  readonly observer?: Observer<LocalApicEvent>;
}

export interface LocalApicState {
  readonly version: 1;
  readonly id: number;
  readonly apicBase: number;
  readonly apicBaseHigh: number;
  readonly tpr: number;
  readonly ldr: number;
  readonly dfr: number;
  readonly svr: number;
  readonly isr: number[];
  readonly irr: number[];
  readonly tmr: number[];
  readonly esr: number;
  readonly esrPending: number;
  readonly icrLow: number;
  readonly icrHigh: number;
  readonly lvt: number[];
  readonly lint0: boolean;
  readonly lint1: boolean;
  readonly extIntRequested: boolean;
  readonly timer: { initialCount: number; divide: number; start: number; running: boolean; tscDeadline: number };
}

const MODE_DISABLED = 0;
const MODE_XAPIC = 1;
const MODE_X2APIC = 2;

/**
 * A local APIC (Intel SDM vol. 3, ch. 11): xAPIC registers through
 * {@link LocalApic.mmio} and x2APIC ones through MSRs, priority and
 * acceptance (IRR/ISR/TMR, TPR/PPR), EOI with broadcast for level
 * interrupts, IPIs through the {@link ApicBus}, LVT entries, the timer, and
 * the vCPU side ({@link LocalApicPort}).
 */
export class LocalApic implements LocalApicPort {
  readonly initialId: number;
  /** xAPIC ID (bits 31:24 of the ID register); software may change it in xAPIC mode. */
  private xapicId: number;
  private apicBase = 0;
  private apicBaseHigh = 0;
  private tpr = 0;
  private ldr = 0;
  private dfr = 0xffff_ffff;
  private svr = 0xff;
  private readonly isr = new Uint32Array(8);
  private readonly irr = new Uint32Array(8);
  private readonly tmr = new Uint32Array(8);
  private esr = 0;
  private esrPending = 0;
  private icrLow = 0;
  private icrHigh = 0;
  private readonly lvt = new Uint32Array(LVT_COUNT);
  private lint0 = false;
  private lint1 = false;
  /** An ExtINT message arrived (from an IOAPIC or MSI): the next acknowledge asks the PIC. */
  private extIntRequested = false;
  private readonly timer: ApicTimer;
  private readonly bootstrap: boolean;
  private readonly clock: Clock;
  private readonly bus: ApicBus;
  private readonly signals: ProcessorSignals;
  private readonly pic: InterruptController | undefined;
  private readonly observer: Observer<LocalApicEvent>;
  /** The xAPIC register page; the VM maps it at the APIC base for this vCPU. */
  readonly mmio: BusDevice;

  constructor(options: LocalApicOptions) {
    this.initialId = options.id >>> 0;
    this.xapicId = options.id & 0xff;
    this.bootstrap = options.bootstrap;
    this.clock = options.clock;
    this.bus = options.bus;
    this.signals = options.signals;
    this.pic = options.pic;
    this.observer = options.observer ?? ignoreEvents;
    this.timer = new ApicTimer(options.clock, options.busFrequencyHz ?? 1e9, options.tscFrequencyHz ?? 1e9, () => this.timerMode(), () => this.timerExpired());
    this.mmio = {
      read: (offset: number, size: AccessSize) => this.mmioRead(offset, size),
      write: (offset: number, size: AccessSize, value: number) => this.mmioWrite(offset, size, value),
    };
    this.reset();
    this.bus.attach(this);
  }

  /** Power-on reset: xAPIC mode, enabled, at 0xFEE00000. */
  reset(): void {
    this.apicBase = (DEFAULT_APIC_BASE | ApicBaseBits.Enable | (this.bootstrap ? ApicBaseBits.Bsp : 0)) >>> 0;
    this.apicBaseHigh = 0;
    this.xapicId = this.initialId & 0xff;
    this.resetRegisters();
    // QEMU: firmware usually sets the BSP's LINT0 to ExtINT so the PIC reaches the CPU; start that way.
    if (this.bootstrap) this.lvt[Lvt.Lint0] = DeliveryMode.ExtInt << 8;
  }

  /** INIT (and hardware disable): every register but the ID and APIC_BASE returns to its reset value. */
  private resetRegisters(): void {
    this.tpr = 0;
    this.ldr = 0;
    this.dfr = 0xffff_ffff;
    this.svr = 0xff;
    this.isr.fill(0);
    this.irr.fill(0);
    this.tmr.fill(0);
    this.esr = 0;
    this.esrPending = 0;
    this.icrLow = 0;
    this.icrHigh = 0;
    this.lvt.fill(LVT_MASKED);
    this.extIntRequested = false;
    this.timer.stop();
  }

  // ---- modes and identity ----

  private get mode(): number {
    if ((this.apicBase & ApicBaseBits.Enable) === 0) return MODE_DISABLED;
    return (this.apicBase & ApicBaseBits.X2Apic) !== 0 ? MODE_X2APIC : MODE_XAPIC;
  }

  get x2apic(): boolean {
    return this.mode === MODE_X2APIC;
  }

  get hardwareEnabled(): boolean {
    return this.mode !== MODE_DISABLED;
  }

  get softwareEnabled(): boolean {
    return (this.svr & 0x100) !== 0;
  }

  /** The ID destinations are compared with: the x2APIC ID in x2APIC mode, else the 8-bit xAPIC ID. */
  get apicId(): number {
    return this.x2apic ? this.initialId : this.xapicId;
  }

  get logicalDestination(): number {
    if (this.x2apic) return (((this.initialId >>> 4) << 16) | (1 << (this.initialId & 0xf))) >>> 0;
    return this.ldr;
  }

  /** Whether a message with this destination reaches this APIC (SDM 11.6.2). `broadcast` is 0xFF for 8-bit sources. */
  matchesDestination(destination: number, logical: boolean, broadcast: number): boolean {
    if (!this.hardwareEnabled) return false;
    if (destination === broadcast || (this.x2apic && destination === 0xffff_ffff)) return true;
    if (!logical) return destination === this.apicId;
    const ldr = this.logicalDestination;
    if (this.x2apic) return destination >>> 16 === ldr >>> 16 && (destination & ldr & 0xffff) !== 0;
    if (this.dfr >>> 28 === 0xf) return ((ldr >>> 24) & destination & 0xff) !== 0;
    return destination >>> 4 === ldr >>> 28 && (destination & (ldr >>> 24) & 0xf) !== 0;
  }

  // ---- priority ----

  get processorPriority(): number {
    const isrv = Math.max(0, highestVector(this.isr));
    return (this.tpr & 0xf0) >= (isrv & 0xf0) ? this.tpr : isrv & 0xf0;
  }

  get arbitrationPriority(): number {
    const isrv = Math.max(0, highestVector(this.isr));
    const irrv = Math.max(0, highestVector(this.irr));
    if ((this.tpr & 0xf0) >= (irrv & 0xf0) && (this.tpr & 0xf0) > (isrv & 0xf0)) return this.tpr;
    return Math.max(this.tpr & 0xf0, isrv & 0xf0, irrv & 0xf0);
  }

  get taskPriorityClass(): number {
    return this.tpr >> 4;
  }

  setTaskPriorityClass(value: number): void {
    this.setTpr((value & 0xf) << 4);
  }

  private setTpr(value: number): void {
    this.tpr = value & 0xff;
    if (this.pending()) this.signals.wake();
  }

  // ---- interrupt acceptance ----

  /** A message delivered to this APIC by the bus (IPI, IOAPIC, MSI, own LVT). */
  accept(deliveryMode: number, vector: number, levelTriggered: boolean): void {
    if (!this.hardwareEnabled) return;
    switch (deliveryMode) {
      case DeliveryMode.Fixed:
      case DeliveryMode.LowestPriority:
        if (!this.softwareEnabled) return;
        if (vector < 16) {
          this.raiseError(ErrorStatus.ReceiveIllegalVector);
          return;
        }
        setVector(this.irr, vector);
        if (levelTriggered) setVector(this.tmr, vector);
        else clearVector(this.tmr, vector);
        this.signals.wake();
        return;
      case DeliveryMode.Nmi:
        this.signals.nmi();
        return;
      case DeliveryMode.Init:
        this.resetRegisters();
        this.signals.init();
        return;
      case DeliveryMode.StartUp:
        this.signals.startup(vector & 0xff);
        return;
      case DeliveryMode.ExtInt:
        this.extIntRequested = true;
        this.signals.wake();
        return;
      default:
        // SMI and reserved modes: no SMM in this machine.
        return;
    }
  }

  private raiseError(bits: number): void {
    const fresh = bits & ~this.esrPending;
    this.esrPending |= bits;
    if (fresh === 0) return;
    this.observer({ kind: 'error', esr: this.esrPending });
    this.deliverLvt(Lvt.Error);
  }

  /** LVT-sourced interrupts go only to this APIC. */
  private deliverLvt(index: number): void {
    const entry = this.lvt[index]!;
    if ((entry & LVT_MASKED) !== 0) return;
    const mode = index === Lvt.Timer || index === Lvt.Error ? DeliveryMode.Fixed : (entry >> 8) & 7;
    if (mode === DeliveryMode.ExtInt) {
      this.signals.wake();
      return;
    }
    this.accept(mode, entry & 0xff, index >= Lvt.Lint0 && index <= Lvt.Lint1 && (entry & 0x8000) !== 0 && mode === DeliveryMode.Fixed);
  }

  private timerMode(): number {
    const mode = (this.lvt[Lvt.Timer]! >> 17) & 3;
    return mode === 3 ? TimerMode.OneShot : mode;
  }

  private timerExpired(): void {
    this.deliverLvt(Lvt.Timer);
  }

  /** The LINT0 pin (wired to the PIC's INTR on a pc). */
  setLint0(level: boolean): void {
    const rising = level && !this.lint0;
    this.lint0 = level;
    const entry = this.lvt[Lvt.Lint0]!;
    const mode = (entry >> 8) & 7;
    if (mode === DeliveryMode.ExtInt) {
      if (level && this.extIntEnabled()) this.signals.wake();
    } else if (rising) {
      this.deliverLvt(Lvt.Lint0);
    }
  }

  /** The LINT1 pin (NMI on a pc). */
  setLint1(level: boolean): void {
    const rising = level && !this.lint1;
    this.lint1 = level;
    if (rising) this.deliverLvt(Lvt.Lint1);
  }

  /** PIC interrupts reach the CPU with the APIC globally disabled, or through an unmasked ExtINT LINT0. */
  private extIntEnabled(): boolean {
    if (!this.hardwareEnabled) return true;
    const entry = this.lvt[Lvt.Lint0]!;
    return (entry & LVT_MASKED) === 0 && ((entry >> 8) & 7) === DeliveryMode.ExtInt;
  }

  // ---- the vCPU side ----

  pending(): boolean {
    const vector = highestVector(this.irr);
    if (this.hardwareEnabled && vector >= 0 && (vector & 0xf0) > (this.processorPriority & 0xf0)) return true;
    return this.pic !== undefined && (this.extIntRequested || this.extIntEnabled()) && this.pic.pending();
  }

  acknowledge(): number {
    const vector = highestVector(this.irr);
    if (this.hardwareEnabled && vector >= 0 && (vector & 0xf0) > (this.processorPriority & 0xf0)) {
      clearVector(this.irr, vector);
      setVector(this.isr, vector);
      return vector;
    }
    if (this.pic !== undefined && (this.extIntRequested || this.extIntEnabled()) && this.pic.pending()) {
      this.extIntRequested = false;
      return this.pic.acknowledge() & 0xff;
    }
    return this.svr & 0xff;
  }

  private endOfInterrupt(): void {
    const vector = highestVector(this.isr);
    if (vector < 0) return;
    clearVector(this.isr, vector);
    if (hasVector(this.tmr, vector)) this.bus.broadcastEoi(vector);
    if (this.pending()) this.signals.wake();
  }

  // ---- register file (shared by xAPIC and x2APIC) ----

  /** Reads a register by its xAPIC offset; undefined for a register that does not exist. */
  private readRegister(offset: number): number | undefined {
    if (offset >= ApicRegister.InService && offset < ApicRegister.InService + 0x80) return this.isr[(offset - ApicRegister.InService) >> 4]!;
    if (offset >= ApicRegister.TriggerMode && offset < ApicRegister.TriggerMode + 0x80) return this.tmr[(offset - ApicRegister.TriggerMode) >> 4]!;
    if (offset >= ApicRegister.InterruptRequest && offset < ApicRegister.InterruptRequest + 0x80) return this.irr[(offset - ApicRegister.InterruptRequest) >> 4]!;
    switch (offset) {
      case ApicRegister.Id:
        return this.x2apic ? this.initialId : (this.xapicId << 24) >>> 0;
      case ApicRegister.Version:
        return APIC_VERSION;
      case ApicRegister.TaskPriority:
        return this.tpr;
      case ApicRegister.ArbitrationPriority:
        return this.arbitrationPriority;
      case ApicRegister.ProcessorPriority:
        return this.processorPriority;
      case ApicRegister.Eoi:
      case ApicRegister.RemoteRead:
        return 0;
      case ApicRegister.LogicalDestination:
        return this.logicalDestination;
      case ApicRegister.DestinationFormat:
        return this.dfr;
      case ApicRegister.SpuriousVector:
        return this.svr;
      case ApicRegister.ErrorStatus:
        return this.esr;
      case ApicRegister.InterruptCommandLow:
        return this.icrLow;
      case ApicRegister.InterruptCommandHigh:
        return this.icrHigh;
      case ApicRegister.LvtCmci:
        return this.lvt[Lvt.Cmci]!;
      case ApicRegister.LvtTimer:
      case ApicRegister.LvtThermal:
      case ApicRegister.LvtPerformance:
      case ApicRegister.LvtLint0:
      case ApicRegister.LvtLint1:
      case ApicRegister.LvtError:
        return this.lvt[Lvt.Timer + ((offset - ApicRegister.LvtTimer) >> 4)]!;
      case ApicRegister.TimerInitialCount:
        return this.timerMode() === TimerMode.TscDeadline ? 0 : this.timer.initialCount;
      case ApicRegister.TimerCurrentCount:
        return this.timer.currentCount();
      case ApicRegister.TimerDivide:
        return this.timer.divide;
      default:
        return undefined;
    }
  }

  /** Writes a register by its xAPIC offset; false when the register is read-only or absent. */
  private writeRegister(offset: number, value: number): boolean {
    switch (offset) {
      case ApicRegister.Id:
        if (this.x2apic) return false;
        this.xapicId = value >>> 24;
        return true;
      case ApicRegister.TaskPriority:
        this.setTpr(value);
        return true;
      case ApicRegister.Eoi:
        this.endOfInterrupt();
        return true;
      case ApicRegister.LogicalDestination:
        if (this.x2apic) return false;
        this.ldr = (value & 0xff00_0000) >>> 0;
        return true;
      case ApicRegister.DestinationFormat:
        if (this.x2apic) return false;
        this.dfr = ((value & 0xf000_0000) | 0x0fff_ffff) >>> 0;
        return true;
      case ApicRegister.SpuriousVector:
        this.writeSpuriousVector(value);
        return true;
      case ApicRegister.ErrorStatus:
        // A write latches the errors seen since the last write.
        this.esr = this.esrPending;
        this.esrPending = 0;
        return true;
      case ApicRegister.InterruptCommandLow:
        this.icrLow = value & 0x000c_cfff;
        this.sendIpi(this.icrLow, this.x2apic ? this.icrHigh : this.icrHigh >>> 24);
        return true;
      case ApicRegister.InterruptCommandHigh:
        if (this.x2apic) return false;
        this.icrHigh = (value & 0xff00_0000) >>> 0;
        return true;
      case ApicRegister.LvtCmci:
        this.writeLvt(Lvt.Cmci, value);
        return true;
      case ApicRegister.LvtTimer:
      case ApicRegister.LvtThermal:
      case ApicRegister.LvtPerformance:
      case ApicRegister.LvtLint0:
      case ApicRegister.LvtLint1:
      case ApicRegister.LvtError:
        this.writeLvt(Lvt.Timer + ((offset - ApicRegister.LvtTimer) >> 4), value);
        return true;
      case ApicRegister.TimerInitialCount:
        this.timer.setInitialCount(value);
        return true;
      case ApicRegister.TimerDivide:
        this.timer.setDivide(value);
        return true;
      case ApicRegister.SelfIpi:
        if (!this.x2apic) return false;
        this.accept(DeliveryMode.Fixed, value & 0xff, false);
        return true;
      default:
        return false;
    }
  }

  private writeSpuriousVector(value: number): void {
    const wasEnabled = this.softwareEnabled;
    // Bits 0-8 and 9 (focus processor checking, which Linux sets), as KVM keeps them.
    this.svr = value & 0x3ff;
    // Software disable masks every LVT entry (SDM 11.4.7.2).
    if (wasEnabled && !this.softwareEnabled) for (let i = 0; i < LVT_COUNT; i++) this.lvt[i] = this.lvt[i]! | LVT_MASKED;
  }

  private writeLvt(index: number, value: number): void {
    const readOnly = this.lvt[index]! & ~LVT_WRITE_MASK[index]!;
    let next = (value & LVT_WRITE_MASK[index]!) | readOnly;
    if (!this.softwareEnabled) next |= LVT_MASKED;
    const oldMode = (this.lvt[index]! >> 17) & 3;
    this.lvt[index] = next >>> 0;
    if (index === Lvt.Timer && ((next >> 17) & 3) !== oldMode) this.timer.modeChanged();
    if (index === Lvt.Lint0 && this.lint0 && this.extIntEnabled()) this.signals.wake();
  }

  private sendIpi(low: number, destination: number): void {
    const vector = low & 0xff;
    const deliveryMode = (low >> 8) & 7;
    const logical = (low & 0x800) !== 0;
    const assert = (low & 0x4000) !== 0;
    const levelTriggered = (low & 0x8000) !== 0;
    const shorthand = (low >> 18) & 3;
    // INIT level de-assert only synchronises arbitration IDs: nothing to deliver.
    if (deliveryMode === DeliveryMode.Init && levelTriggered && !assert) return;
    if ((deliveryMode === DeliveryMode.Fixed || deliveryMode === DeliveryMode.LowestPriority) && vector < 16) {
      this.raiseError(ErrorStatus.SendIllegalVector);
      return;
    }
    this.observer({ kind: 'ipi', from: this.apicId, deliveryMode, vector, destination });
    this.bus.sendIpi(this, { destination, logical, deliveryMode, vector, levelTriggered: deliveryMode === DeliveryMode.Fixed && levelTriggered, shorthand, broadcast: this.x2apic ? 0xffff_ffff : 0xff });
  }

  // ---- xAPIC MMIO ----

  private mmioRead(offset: number, size: AccessSize): number {
    if (this.mode !== MODE_XAPIC) return size === 4 ? 0xffff_ffff : (1 << (8 * size)) - 1;
    const register = offset & 0xff0;
    const within = offset & 0xf;
    if (within + size > 4) return 0;
    const value = register === ApicRegister.SelfIpi ? undefined : this.readRegister(register);
    if (value === undefined) {
      this.raiseError(ErrorStatus.IllegalRegisterAddress);
      return 0;
    }
    const shifted = value >>> (8 * within);
    return size === 4 ? shifted >>> 0 : shifted & ((1 << (8 * size)) - 1);
  }

  private mmioWrite(offset: number, size: AccessSize, value: number): void {
    // Only aligned dword writes reach xAPIC registers (as KVM); others are dropped.
    if (this.mode !== MODE_XAPIC || size !== 4 || (offset & 0xf) !== 0) return;
    const register = offset & 0xff0;
    if (register === ApicRegister.SelfIpi || !this.writeRegister(register, value >>> 0)) {
      if (this.readRegister(register) === undefined) this.raiseError(ErrorStatus.IllegalRegisterAddress);
    }
  }

  // ---- MSRs ----

  readMsr(index: number, result: Uint32Array): boolean {
    if (index === APIC_BASE_MSR) {
      result[0] = this.apicBase;
      result[1] = this.apicBaseHigh;
      return true;
    }
    if (index === TSC_DEADLINE_MSR) {
      const deadline = this.timerMode() === TimerMode.TscDeadline ? this.timer.tscDeadline : 0;
      result[0] = deadline % 0x1_0000_0000;
      result[1] = Math.floor(deadline / 0x1_0000_0000);
      return true;
    }
    if (index < X2APIC_MSR_FIRST || index > X2APIC_MSR_LAST || !this.x2apic) return false;
    const offset = (index - X2APIC_MSR_FIRST) << 4;
    // Write-only and xAPIC-only registers raise #GP when read through MSRs.
    if (offset === ApicRegister.Eoi || offset === ApicRegister.SelfIpi || offset === ApicRegister.ArbitrationPriority || offset === ApicRegister.RemoteRead || offset === ApicRegister.DestinationFormat || offset === ApicRegister.InterruptCommandHigh) return false;
    if (offset === ApicRegister.InterruptCommandLow) {
      result[0] = this.icrLow;
      result[1] = this.icrHigh;
      return true;
    }
    const value = this.readRegister(offset);
    if (value === undefined) return false;
    result[0] = value;
    result[1] = 0;
    return true;
  }

  writeMsr(index: number, low: number, high: number): boolean {
    low >>>= 0;
    high >>>= 0;
    if (index === APIC_BASE_MSR) return this.writeApicBase(low, high);
    if (index === TSC_DEADLINE_MSR) {
      this.timer.setTscDeadline(high * 0x1_0000_0000 + low);
      return true;
    }
    if (index < X2APIC_MSR_FIRST || index > X2APIC_MSR_LAST || !this.x2apic) return false;
    const offset = (index - X2APIC_MSR_FIRST) << 4;
    if (offset === ApicRegister.InterruptCommandLow) {
      this.icrHigh = high;
      this.icrLow = low & 0x000c_cfff;
      this.sendIpi(this.icrLow, high);
      return true;
    }
    if (high !== 0) return false;
    switch (offset) {
      case ApicRegister.Eoi:
      case ApicRegister.ErrorStatus:
        if (low !== 0) return false;
        break;
      case ApicRegister.TaskPriority:
      case ApicRegister.SelfIpi:
        if ((low & ~0xff) !== 0) return false;
        break;
      case ApicRegister.TimerCurrentCount:
      case ApicRegister.ProcessorPriority:
      case ApicRegister.Version:
        return false;
    }
    return this.writeRegister(offset, low);
  }

  /** APIC_BASE transitions as KVM allows them (SDM 11.12.5): no x2APIC->xAPIC and no disabled->x2APIC. */
  private writeApicBase(low: number, high: number): boolean {
    if ((low & 0x2ff) !== 0 || high > 0xf) return false;
    const enable = (low & ApicBaseBits.Enable) !== 0;
    const x2 = (low & ApicBaseBits.X2Apic) !== 0;
    if (!enable && x2) return false;
    const oldMode = this.mode;
    const newMode = !enable ? MODE_DISABLED : x2 ? MODE_X2APIC : MODE_XAPIC;
    if (oldMode === MODE_X2APIC && newMode === MODE_XAPIC) return false;
    if (oldMode === MODE_DISABLED && newMode === MODE_X2APIC) return false;
    const oldBase = this.apicBase & 0xffff_f000;
    this.apicBase = low >>> 0;
    this.apicBaseHigh = high;
    if (newMode === MODE_DISABLED && oldMode !== MODE_DISABLED) {
      this.resetRegisters();
      this.xapicId = this.initialId & 0xff;
    }
    if ((low & 0xffff_f000) >>> 0 !== oldBase >>> 0) this.observer({ kind: 'base-moved', base: (low & 0xffff_f000) >>> 0 });
    return true;
  }

  // ---- state ----

  save(): LocalApicState {
    return {
      version: 1,
      id: this.xapicId,
      apicBase: this.apicBase,
      apicBaseHigh: this.apicBaseHigh,
      tpr: this.tpr,
      ldr: this.ldr,
      dfr: this.dfr,
      svr: this.svr,
      isr: [...this.isr],
      irr: [...this.irr],
      tmr: [...this.tmr],
      esr: this.esr,
      esrPending: this.esrPending,
      icrLow: this.icrLow,
      icrHigh: this.icrHigh,
      lvt: [...this.lvt],
      lint0: this.lint0,
      lint1: this.lint1,
      extIntRequested: this.extIntRequested,
      timer: this.timer.save(),
    };
  }

  restore(state: unknown): void {
    const reader = StateReader.open(state, 'localApic', 1);
    const id = reader.uint('id', 0xff);
    const apicBase = reader.uint('apicBase', 0xffff_ffff);
    if ((apicBase & 0x2ff) !== 0 || (apicBase & (ApicBaseBits.Enable | ApicBaseBits.X2Apic)) === ApicBaseBits.X2Apic) reader.fail('apicBase', 'reserved bits or an invalid mode');
    const apicBaseHigh = reader.uint('apicBaseHigh', 0xf);
    const tpr = reader.uint('tpr', 0xff);
    const ldr = reader.uint('ldr', 0xffff_ffff);
    if ((ldr & 0x00ff_ffff) !== 0) reader.fail('ldr', 'reserved bits set');
    const dfr = reader.uint('dfr', 0xffff_ffff);
    if ((dfr & 0x0fff_ffff) !== 0x0fff_ffff) reader.fail('dfr', 'bits 27:0 must be ones');
    const svr = reader.uint('svr', 0x3ff);
    const isr = reader.uintArray('isr', 8, 0xffff_ffff, 8);
    const irr = reader.uintArray('irr', 8, 0xffff_ffff, 8);
    const tmr = reader.uintArray('tmr', 8, 0xffff_ffff, 8);
    const esr = reader.uint('esr', 0xff);
    const esrPending = reader.uint('esrPending', 0xff);
    const icrLow = reader.uint('icrLow', 0x000c_cfff);
    const icrHigh = reader.uint('icrHigh', 0xffff_ffff);
    const lvt = reader.uintArray('lvt', LVT_COUNT, 0xffff_ffff, LVT_COUNT);
    lvt.forEach((entry, index) => {
      if ((entry & ~(LVT_WRITE_MASK[index]! | 0x5000)) !== 0) reader.fail('lvt', `entry ${index} has reserved bits set`);
    });
    const lint0 = reader.boolean('lint0');
    const lint1 = reader.boolean('lint1');
    const extIntRequested = reader.boolean('extIntRequested');
    const timerReader = reader.child('timer');
    const timer = {
      initialCount: timerReader.uint('initialCount', 0xffff_ffff),
      divide: timerReader.uint('divide', 0xb),
      start: timerReader.number('start'),
      running: timerReader.boolean('running'),
      tscDeadline: timerReader.uint('tscDeadline', Number.MAX_SAFE_INTEGER),
    };
    if (timer.start > this.clock.now()) timerReader.fail('start', 'lies in the future');
    if ((timer.divide & ~0xb) !== 0) timerReader.fail('divide', 'reserved bits set');
    this.xapicId = id;
    this.apicBase = apicBase;
    this.apicBaseHigh = apicBaseHigh;
    this.tpr = tpr;
    this.ldr = ldr;
    this.dfr = dfr;
    this.svr = svr;
    this.isr.set(isr);
    this.irr.set(irr);
    this.tmr.set(tmr);
    this.esr = esr;
    this.esrPending = esrPending;
    this.icrLow = icrLow;
    this.icrHigh = icrHigh;
    this.lvt.set(lvt);
    this.lint0 = lint0;
    this.lint1 = lint1;
    this.extIntRequested = extIntRequested;
    this.timer.load(timer);
  }
}
