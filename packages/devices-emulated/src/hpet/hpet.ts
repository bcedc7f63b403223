import { StateReader, ignoreEvents } from '@tsvirt/interfaces';
import type { AccessSize, BusDevice, Clock, IrqLine, Observer, Timer } from '@tsvirt/interfaces';

export const HPET_TIMERS = 3;
/** 10 ns per tick (100 MHz), in femtoseconds, as QEMU reports it. */
export const HPET_PERIOD_FS = 10_000_000;
const NS_PER_TICK = 10;

const CONFIG_ENABLE = 0x1;
const CONFIG_LEGACY = 0x2;
const TIMER_LEVEL = 0x2;
const TIMER_INT_ENABLE = 0x4;
const TIMER_PERIODIC = 0x8;
const TIMER_PERIODIC_CAPABLE = 0x10;
const TIMER_64BIT_CAPABLE = 0x20;
const TIMER_VALUE_SET = 0x40;
const TIMER_32BIT = 0x100;
const TIMER_ROUTE_SHIFT = 9;
/** Type, enable, periodic, value-set, 32-bit mode, route; FSB delivery is not offered. */
const TIMER_WRITABLE = TIMER_LEVEL | TIMER_INT_ENABLE | TIMER_PERIODIC | TIMER_VALUE_SET | TIMER_32BIT | (0x1f << TIMER_ROUTE_SHIFT);

const MASK64 = (1n << 64n) - 1n;
const MINIMUM_REARM_TICKS = 100n;
const MINIMUM_REARM_TICKS_NS = 100 * NS_PER_TICK;
const MASK32 = 0xffff_ffffn;

export type HpetEvent = { readonly kind: 'legacy-routing'; readonly enabled: boolean };

export interface HpetOptions {
  readonly clock: Clock;
  /** Lines by route number (IOAPIC input); a timer routed where no line is given interrupts nothing. */
  readonly routes: readonly (IrqLine | undefined)[];
  /** Legacy replacement routes: timer 0 to IRQ0 (IOAPIC pin 2 on a pc), timer 1 to IRQ8. */
  readonly legacyIrq0?: IrqLine;
  readonly legacyIrq8?: IrqLine;
  /** Which routes the timers advertise (Tn_INT_ROUTE_CAP); QEMU's pc offers IOAPIC pin 2 only (0x4). */
  readonly routeCapability?: number;
  /** Told when legacy replacement routing switches, so the VM can silence the PIT and RTC as QEMU does. */
  readonly onLegacyRoutingChange?: (enabled: boolean) => void;
  readonly observer?: Observer<HpetEvent>;
}

export interface HpetState {
  readonly version: 1;
  readonly config: number;
  readonly isr: number;
  readonly counterHigh: number;
  readonly counterLow: number;
  /** Nanoseconds into the current tick, so the counter keeps its phase across a restore. */
  readonly tickPhase: number;
  /** Each timer's armed deadline in clock nanoseconds, -1 when not armed. */
  readonly timers: Array<{ config: number; comparator: string; period: string; deadline: number }>;
}

interface HpetTimer {
  config: number;
  comparator: bigint;
  period: bigint;
  readonly timer: Timer;
  /** The line this timer currently holds asserted (level mode). */
  asserted: IrqLine | undefined;
}

/**
 * The HPET as QEMU exposes it at 0xFED00000: three timers, 64-bit main
 * counter at 100 MHz, legacy replacement routing, vendor 0x8086. Comparator
 * matches use QEMU's rule: a comparator at or behind the counter fires at
 * once. Not modelled: FSB (MSI) delivery, 32-bit one-shot wrap interrupts.
 */
export class Hpet implements BusDevice {
  private config = 0;
  private isr = 0;
  /** Counter value when counting last started (or the frozen value when halted), as halves. */
  private baseHigh = 0;
  private baseLow = 0;
  private enabledAt = 0;
  private readonly timers: HpetTimer[];
  private readonly clock: Clock;
  private readonly routes: readonly (IrqLine | undefined)[];
  private readonly legacyIrq0: IrqLine | undefined;
  private readonly legacyIrq8: IrqLine | undefined;
  private readonly routeCapability: number;
  private readonly onLegacyRoutingChange: (enabled: boolean) => void;
  private readonly observer: Observer<HpetEvent>;
  /** Scratch output of {@link counterNow}, so counter reads allocate nothing. */
  private nowHigh = 0;
  private nowLow = 0;

  constructor(options: HpetOptions) {
    this.clock = options.clock;
    this.routes = options.routes;
    this.legacyIrq0 = options.legacyIrq0;
    this.legacyIrq8 = options.legacyIrq8;
    this.routeCapability = (options.routeCapability ?? 0x4) >>> 0;
    this.onLegacyRoutingChange = options.onLegacyRoutingChange ?? (() => {});
    this.observer = options.observer ?? ignoreEvents;
    this.timers = Array.from({ length: HPET_TIMERS }, (_, index) => ({
      config: TIMER_PERIODIC_CAPABLE | TIMER_64BIT_CAPABLE,
      comparator: MASK64,
      period: 0n,
      timer: this.clock.createTimer(() => this.onTimer(index)),
      asserted: undefined,
    }));
  }

  private get enabled(): boolean {
    return (this.config & CONFIG_ENABLE) !== 0;
  }

  private get legacy(): boolean {
    return (this.config & CONFIG_LEGACY) !== 0;
  }

  /** Updates nowHigh/nowLow with the main counter. */
  private counterNow(): void {
    if (!this.enabled) {
      this.nowHigh = this.baseHigh;
      this.nowLow = this.baseLow;
      return;
    }
    const ticks = Math.floor((this.clock.now() - this.enabledAt) / NS_PER_TICK);
    const sum = this.baseLow + ticks;
    this.nowLow = sum % 0x1_0000_0000;
    this.nowHigh = (this.baseHigh + Math.floor(sum / 0x1_0000_0000)) % 0x1_0000_0000;
  }

  private counterBig(): bigint {
    this.counterNow();
    return (BigInt(this.nowHigh) << 32n) | BigInt(this.nowLow);
  }

  // ---- registers ----

  read(offset: number, size: AccessSize): number {
    const dword = this.readDword(offset & ~3);
    const shifted = dword >>> (8 * (offset & 3));
    return size === 4 ? shifted >>> 0 : shifted & ((1 << (8 * size)) - 1);
  }

  private readDword(offset: number): number {
    switch (offset) {
      case 0x000:
        // Revision 1, timers - 1, 64-bit counter, legacy route capable, vendor 0x8086.
        return (0x8086_0000 | 0x8000 | 0x2000 | ((HPET_TIMERS - 1) << 8) | 0x01) >>> 0;
      case 0x004:
        return HPET_PERIOD_FS;
      case 0x010:
        return this.config;
      case 0x020:
        return this.isr;
      case 0x0f0:
        this.counterNow();
        return this.nowLow;
      case 0x0f4:
        this.counterNow();
        return this.nowHigh;
    }
    if (offset < 0x100 || offset >= 0x100 + 0x20 * HPET_TIMERS) return 0;
    const timer = this.timers[(offset - 0x100) >> 5]!;
    switch (offset & 0x1f) {
      case 0x00:
        return timer.config;
      case 0x04:
        return this.routeCapability;
      case 0x08:
        return Number(timer.comparator & MASK32);
      case 0x0c:
        return Number(timer.comparator >> 32n);
      default:
        return 0; // FSB route registers: FSB delivery is not offered
    }
  }

  write(offset: number, size: AccessSize, value: number): void {
    // Narrow writes merge into the dword they land in.
    const aligned = offset & ~3;
    let dword = value >>> 0;
    if (size !== 4) {
      const shift = 8 * (offset & 3);
      const mask = ((size === 1 ? 0xff : 0xffff) << shift) >>> 0;
      dword = ((this.readDword(aligned) & ~mask) | ((value << shift) & mask)) >>> 0;
    }
    this.writeDword(aligned, dword);
  }

  private writeDword(offset: number, value: number): void {
    switch (offset) {
      case 0x010:
        this.writeConfig(value & (CONFIG_ENABLE | CONFIG_LEGACY));
        return;
      case 0x020:
        this.clearStatus(value);
        return;
      case 0x0f0:
      case 0x0f4:
        // The counter may only be written while halted (writes while running are lost, as in QEMU).
        if (this.enabled) return;
        if (offset === 0x0f0) this.baseLow = value;
        else this.baseHigh = value;
        return;
    }
    if (offset < 0x100 || offset >= 0x100 + 0x20 * HPET_TIMERS) return;
    const index = (offset - 0x100) >> 5;
    switch (offset & 0x1f) {
      case 0x00:
        this.writeTimerConfig(index, value);
        return;
      case 0x08:
        this.writeComparator(index, value, false);
        return;
      case 0x0c:
        this.writeComparator(index, value, true);
        return;
    }
  }

  private writeConfig(value: number): void {
    const wasEnabled = this.enabled;
    const wasLegacy = this.legacy;
    if (wasEnabled && (value & CONFIG_ENABLE) === 0) {
      // Halting freezes the counter where it is.
      this.counterNow();
      this.baseHigh = this.nowHigh;
      this.baseLow = this.nowLow;
    }
    this.config = value;
    if (!wasEnabled && this.enabled) this.enabledAt = this.clock.now();
    if (wasLegacy !== this.legacy) {
      this.observer({ kind: 'legacy-routing', enabled: this.legacy });
      this.onLegacyRoutingChange(this.legacy);
    }
    for (let index = 0; index < HPET_TIMERS; index++) {
      this.updateOutput(index);
      // As QEMU: comparators are (re)armed when counting starts, and stop with it.
      if (wasEnabled !== this.enabled) this.arm(index);
    }
  }

  private clearStatus(value: number): void {
    const cleared = this.isr & value;
    this.isr &= ~cleared;
    for (let index = 0; index < HPET_TIMERS; index++) if ((cleared & (1 << index)) !== 0) this.updateOutput(index);
  }

  private writeTimerConfig(index: number, value: number): void {
    const timer = this.timers[index]!;
    timer.config = (value & TIMER_WRITABLE) | TIMER_PERIODIC_CAPABLE | TIMER_64BIT_CAPABLE;
    // Status bits exist only for level-triggered timers.
    if ((timer.config & TIMER_LEVEL) === 0) this.isr &= ~(1 << index);
    if ((timer.config & TIMER_32BIT) !== 0) {
      timer.comparator &= MASK32;
      timer.period &= MASK32;
    }
    this.updateOutput(index);
    this.arm(index);
  }

  private writeComparator(index: number, value: number, high: boolean): void {
    const timer = this.timers[index]!;
    const narrow = (timer.config & TIMER_32BIT) !== 0;
    if (high && narrow) return;
    const periodic = (timer.config & TIMER_PERIODIC) !== 0;
    const half = BigInt(value >>> 0);
    const setHalf = (old: bigint) => (high ? (old & MASK32) | (half << 32n) : (old & ~MASK32 & MASK64) | half);
    // QEMU: a periodic timer's comparator moves only with Tn_VAL_SET; a low write always sets the period.
    if (!periodic || (timer.config & TIMER_VALUE_SET) !== 0) timer.comparator = setHalf(timer.comparator);
    if (periodic && (!high || (timer.config & TIMER_VALUE_SET) === 0)) timer.period = setHalf(timer.period) & ((narrow ? MASK32 : MASK64) >> 1n);
    timer.config &= ~TIMER_VALUE_SET;
    this.arm(index);
  }

  // ---- interrupts ----

  private lineFor(index: number): IrqLine | undefined {
    if (this.legacy && index === 0) return this.legacyIrq0;
    if (this.legacy && index === 1) return this.legacyIrq8;
    return this.routes[(this.timers[index]!.config >> TIMER_ROUTE_SHIFT) & 0x1f];
  }

  private interruptsEnabled(index: number): boolean {
    return this.enabled && (this.timers[index]!.config & TIMER_INT_ENABLE) !== 0;
  }

  /** Level mode: the routed line follows the status bit while interrupts are enabled. */
  private updateOutput(index: number): void {
    const timer = this.timers[index]!;
    const want = (timer.config & TIMER_LEVEL) !== 0 && (this.isr & (1 << index)) !== 0 && this.interruptsEnabled(index) ? this.lineFor(index) : undefined;
    if (want === timer.asserted) return;
    timer.asserted?.setLevel(false);
    timer.asserted = want;
    want?.setLevel(true);
  }

  /** A comparator match. Level timers set their status bit even with interrupts disabled (HPET 1.0a 2.3.9.2.4, QEMU since 2023). */
  private raise(index: number): void {
    const timer = this.timers[index]!;
    if ((timer.config & TIMER_LEVEL) !== 0) {
      this.isr |= 1 << index;
      this.updateOutput(index);
    } else if (this.interruptsEnabled(index)) {
      this.lineFor(index)?.pulse();
    }
  }

  // ---- comparator timing ----

  private width(index: number): bigint {
    return (this.timers[index]!.config & TIMER_32BIT) !== 0 ? MASK32 : MASK64;
  }

  /** Ticks until the comparator; 0 when it is at or behind the counter (half the range back). */
  private ticksUntil(index: number, counter: bigint): bigint {
    const mask = this.width(index);
    const diff = (this.timers[index]!.comparator - (counter & mask)) & mask;
    return diff === 0n || diff > mask >> 1n ? 0n : diff;
  }

  private arm(index: number): void {
    const timer = this.timers[index]!;
    if (!this.enabled) {
      timer.timer.cancel();
      return;
    }
    const ticks = this.ticksUntil(index, this.counterBig());
    // Beyond 2^50 ticks (130 days) nothing in a run will notice; leave it unarmed.
    if (ticks > 1n << 50n) {
      timer.timer.cancel();
      return;
    }
    const ticksPassed = Math.floor((this.clock.now() - this.enabledAt) / NS_PER_TICK);
    let deadline = this.enabledAt + (ticksPassed + Number(ticks)) * NS_PER_TICK;
    // A periodic timer re-arms at most once per microsecond, so a tiny period cannot flood the event loop.
    if ((timer.config & TIMER_PERIODIC) !== 0 && timer.period < MINIMUM_REARM_TICKS) deadline = Math.max(deadline, this.clock.now() + MINIMUM_REARM_TICKS_NS);
    timer.timer.arm(deadline);
  }

  private onTimer(index: number): void {
    if (!this.enabled) return;
    const timer = this.timers[index]!;
    const mask = this.width(index);
    if ((timer.config & TIMER_PERIODIC) !== 0 && timer.period !== 0n) {
      // Step past every period the counter has reached (missed ones coalesce into this interrupt).
      const counter = this.counterBig();
      const behind = (counter - timer.comparator) & mask;
      if (this.ticksUntil(index, counter) === 0n) timer.comparator = (timer.comparator + (behind / timer.period + 1n) * timer.period) & mask;
      this.arm(index);
    }
    this.raise(index);
  }

  // ---- state ----

  save(): HpetState {
    this.counterNow();
    return {
      version: 1,
      config: this.config,
      isr: this.isr,
      counterHigh: this.nowHigh,
      counterLow: this.nowLow,
      tickPhase: this.enabled ? (this.clock.now() - this.enabledAt) % NS_PER_TICK : 0,
      timers: this.timers.map((timer) => ({ config: timer.config, comparator: timer.comparator.toString(), period: timer.period.toString(), deadline: timer.timer.deadline ?? -1 })),
    };
  }

  restore(state: unknown): void {
    const reader = StateReader.open(state, 'hpet', 1);
    const config = reader.uint('config', CONFIG_ENABLE | CONFIG_LEGACY);
    const isr = reader.uint('isr', (1 << HPET_TIMERS) - 1);
    const counterHigh = reader.uint('counterHigh', 0xffff_ffff);
    const counterLow = reader.uint('counterLow', 0xffff_ffff);
    const tickPhase = reader.uint('tickPhase', NS_PER_TICK - 1);
    const timers = reader.children('timers', HPET_TIMERS);
    if (timers.length !== HPET_TIMERS) reader.fail('timers', `expected ${HPET_TIMERS} timers`);
    const parsed = timers.map((timerReader) => {
      const timerConfig = timerReader.uint('config', 0xffff);
      if ((timerConfig & ~TIMER_WRITABLE) !== (TIMER_PERIODIC_CAPABLE | TIMER_64BIT_CAPABLE)) timerReader.fail('config', 'reserved or capability bits differ');
      const big = (name: string) => {
        const text = timerReader.string(name);
        if (!/^[0-9]{1,20}$/.test(text) || BigInt(text) > MASK64) timerReader.fail(name, 'expected a 64-bit decimal');
        return BigInt(text);
      };
      const deadline = timerReader.int('deadline', -1, Number.MAX_SAFE_INTEGER);
      return { config: timerConfig, comparator: big('comparator'), period: big('period'), deadline };
    });
    parsed.forEach((timer, index) => {
      if ((isr & (1 << index)) !== 0 && (timer.config & TIMER_LEVEL) === 0) reader.fail('isr', `status set for edge-triggered timer ${index}`);
    });
    const wasLegacy = this.legacy;
    this.config = config;
    this.isr = isr;
    this.baseHigh = counterHigh;
    this.baseLow = counterLow;
    this.enabledAt = this.clock.now() - tickPhase;
    parsed.forEach((timer, index) => {
      const target = this.timers[index]!;
      target.config = timer.config;
      target.comparator = timer.comparator;
      target.period = timer.period;
    });
    if (wasLegacy !== this.legacy) this.onLegacyRoutingChange(this.legacy);
    parsed.forEach((timer, index) => {
      this.updateOutput(index);
      const target = this.timers[index]!.timer;
      if (timer.deadline >= 0 && this.enabled) target.arm(timer.deadline);
      else target.cancel();
    });
  }
}
