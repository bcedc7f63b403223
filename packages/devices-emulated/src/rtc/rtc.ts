import { encodeStateBytes, StateReader, type AccessSize, type BusDevice, type Clock, type IrqLine, type Stateful, type Timer } from '@tsvirt/interfaces';
import {
  alarmMatches,
  loadTime,
  REG_B_24H,
  REG_B_AIE,
  REG_B_PIE,
  REG_B_SET,
  REG_B_UIE,
  RTC_CENTURY,
  RTC_REGISTER_A,
  RTC_REGISTER_B,
  RTC_REGISTER_C,
  RTC_REGISTER_D,
  storeTime,
  TIME_REGISTERS,
} from './rtc-calendar.js';
import { writeBootOrder, writeCpuCount, writeEquipment, writeMemoryLayout, type BootDevice, type Equipment, type MemoryLayout } from './cmos-layout.js';

/** Index (0x70, bit 7 masks NMI) and data (0x71) ports. */
export const RTC_BASE = 0x70;
export const RTC_LENGTH = 2;

const SECOND = 1_000_000_000;
/** UIP rises 244 µs (8 cycles of 32.768 kHz) before each update. */
export const UIP_LEAD_NS = Math.round((8 * SECOND) / 32768);
const REG_C_IRQF = 0x80;
const REG_C_PF = 0x40;
const REG_C_AF = 0x20;
const REG_C_UF = 0x10;

export interface RtcOptions {
  clock: Clock;
  /** IRQ 8. */
  irq: IrqLine;
  /**
   * The wall-clock time (ms since 1970, UTC) the RTC shows at construction:
   * `Date.now()` in real-time mode, a fixed value in deterministic mode.
   */
  startTime: number;
}

export interface RtcState {
  version: 1;
  cmos: string;
  index: number;
  nmiDisabled: boolean;
  /** Virtual time (ns) of a second boundary at which the time was `epochSeconds`. */
  epochNs: number;
  epochSeconds: number;
  /** Divider phase (ns into the second) kept while the oscillator is stopped. */
  frozenPhase: number;
  evaluatedUntil: number;
  irqLevel: boolean;
}

type Divider = 'running' | 'stopped' | 'reset';

/**
 * The MC146818 real-time clock and its 128 bytes of CMOS RAM. The time is
 * kept as seconds at a divider epoch and read out as registers on demand;
 * update, alarm and periodic events are evaluated when the guest looks
 * (register C) or, when an interrupt is enabled, by a timer at the next one.
 * The update is instantaneous at each second boundary and UIP is set during
 * the 244 µs before it, as QEMU models it.
 *
 * @example
 * ```ts
 * const rtc = new Rtc({ clock, irq: pic.irqLine(8), startTime: Date.now() });
 * rtc.configureMemory({ below4G: 512 * 2 ** 20, above4G: 0 });
 * rtc.setCpuCount(2);
 * pio.register(RTC_BASE, RTC_LENGTH, rtc, 'rtc');
 * ```
 */
export class Rtc implements BusDevice, Stateful<RtcState> {
  private readonly clock: Clock;
  private readonly irq: IrqLine;
  private readonly timer: Timer;
  private readonly cmos = new Uint8Array(128);
  private index = 0;
  private nmiDisabledValue = false;
  private epochNs = 0;
  private epochSeconds = 0;
  private frozenPhase = 0;
  private evaluatedUntil = 0;
  private irqLevel = false;

  constructor(options: RtcOptions) {
    this.clock = options.clock;
    this.irq = options.irq;
    this.timer = this.clock.createTimer(() => this.onTimer());
    const now = this.clock.now();
    // Clamped to what a JavaScript Date can represent (±8.64e15 ms).
    const start = Number.isFinite(options.startTime) ? Math.min(Math.max(Math.floor(options.startTime), -8.64e15), 8.64e15 - 86_400_000) : 0;
    // As SeaBIOS leaves it: divider running at 32.768 kHz, 1.024 kHz periodic rate selected, BCD, 24-hour.
    this.cmos[RTC_REGISTER_A] = 0x26;
    this.cmos[RTC_REGISTER_B] = REG_B_24H;
    this.cmos[RTC_REGISTER_D] = 0x80;
    this.epochSeconds = Math.floor(start / 1000);
    this.epochNs = now - (start - this.epochSeconds * 1000) * 1_000_000;
    this.evaluatedUntil = now;
    storeTime(this.cmos, this.epochSeconds);
  }

  /** NMI masked by bit 7 of the last index write (the machine consults this before delivering NMIs). */
  get nmiDisabled(): boolean {
    return this.nmiDisabledValue;
  }

  /** The current RTC time in seconds since 1970 (for tests and the VM's monitor). */
  currentTime(): number {
    this.syncRegisters();
    return loadTime(this.cmos);
  }

  read(offset: number, size: AccessSize): number {
    // A word read at 0x70 is the (write-only, all-ones) index byte and the data byte.
    if (size === 2 && offset === 0) return 0xff | (this.readRegister(this.index) << 8);
    if (size !== 1) return size === 2 ? 0xffff : 0xffffffff;
    // The index register is write-only.
    if (offset === 0) return 0xff;
    return this.readRegister(this.index);
  }

  write(offset: number, size: AccessSize, value: number): void {
    // Some firmware writes index and data with one OUT of a word to 0x70.
    if (size === 2 && offset === 0) {
      this.write(0, 1, value & 0xff);
      this.write(1, 1, (value >> 8) & 0xff);
      return;
    }
    if (size !== 1) return;
    if (offset === 0) {
      this.index = value & 0x7f;
      this.nmiDisabledValue = (value & 0x80) !== 0;
      return;
    }
    this.writeRegister(this.index, value & 0xff);
  }

  /** Raw NVRAM access for the machine (firmware configuration); no side effects on the clock. */
  readNvram(index: number): number {
    return this.cmos[index & 0x7f]!;
  }

  writeNvram(index: number, value: number): void {
    const i = index & 0x7f;
    if (i <= RTC_REGISTER_D || i === RTC_CENTURY) throw new RangeError(`CMOS 0x${i.toString(16)} is a clock register`);
    this.cmos[i] = value & 0xff;
  }

  /** Memory-size fields (0x15-0x18, 0x30/0x31, 0x34/0x35, 0x5B-0x5D). */
  configureMemory(layout: MemoryLayout): void {
    writeMemoryLayout((i, v) => this.writeNvram(i, v), layout);
  }

  /** 0x5F: the CPU count minus one, which SeaBIOS reads. */
  setCpuCount(count: number): void {
    writeCpuCount((i, v) => this.writeNvram(i, v), count);
  }

  /** 0x3D and 0x38: the boot order. */
  setBootOrder(order: readonly BootDevice[], floppySignatureCheck = false): void {
    writeBootOrder((i, v) => this.writeNvram(i, v), order, floppySignatureCheck);
  }

  /** 0x14: the equipment byte. */
  setEquipment(equipment: Equipment): void {
    writeEquipment((i, v) => this.writeNvram(i, v), equipment);
  }

  private divider(): Divider {
    const dv = (this.cmos[RTC_REGISTER_A]! >> 4) & 7;
    return dv >= 6 ? 'reset' : dv <= 2 ? 'running' : 'stopped';
  }

  /** True when the registers follow the running time (divider running, SET clear). */
  private ticking(): boolean {
    return this.divider() === 'running' && !(this.cmos[RTC_REGISTER_B]! & REG_B_SET);
  }

  private secondsAt(now: number): number {
    return this.epochSeconds + Math.floor((now - this.epochNs) / SECOND);
  }

  /** Start of the divider second containing `now`. */
  private boundaryBefore(now: number): number {
    return now - ((((now - this.epochNs) % SECOND) + SECOND) % SECOND);
  }

  private syncRegisters(): void {
    if (this.ticking()) storeTime(this.cmos, this.secondsAt(this.clock.now()));
  }

  private readRegister(index: number): number {
    const now = this.clock.now();
    switch (index) {
      case RTC_REGISTER_A: {
        const phase = (((now - this.epochNs) % SECOND) + SECOND) % SECOND;
        const uip = this.ticking() && phase >= SECOND - UIP_LEAD_NS;
        return (this.cmos[RTC_REGISTER_A]! & 0x7f) | (uip ? 0x80 : 0);
      }
      case RTC_REGISTER_C: {
        this.evaluate(now);
        const value = this.cmos[RTC_REGISTER_C]!;
        this.cmos[RTC_REGISTER_C] = 0;
        this.setIrq(false);
        this.arm();
        return value;
      }
      case RTC_REGISTER_D:
        return 0x80;
      default:
        if (TIME_REGISTERS.includes(index)) this.syncRegisters();
        return this.cmos[index]!;
    }
  }

  private writeRegister(index: number, value: number): void {
    const now = this.clock.now();
    // Events up to now happened under the old register values (an alarm rewrite must not reach back).
    this.evaluate(now);
    switch (index) {
      case RTC_REGISTER_A:
        this.writeRegisterA(value, now);
        return;
      case RTC_REGISTER_B:
        this.writeRegisterB(value, now);
        return;
      case RTC_REGISTER_C:
      case RTC_REGISTER_D:
        return;
      default:
        if (TIME_REGISTERS.includes(index) && this.ticking()) {
          // A time write with the clock running takes effect at once; the divider phase continues.
          this.evaluate(now);
          this.syncRegisters();
          this.cmos[index] = value;
          this.epochSeconds = loadTime(this.cmos);
          this.epochNs = this.boundaryBefore(now);
          this.evaluatedUntil = now;
          this.arm();
        } else {
          this.cmos[index] = value;
        }
    }
  }

  private writeRegisterA(value: number, now: number): void {
    this.evaluate(now);
    const before = this.divider();
    this.syncRegisters();
    if (before === 'running') this.frozenPhase = now - this.boundaryBefore(now);
    this.cmos[RTC_REGISTER_A] = value & 0x7f;
    const after = this.divider();
    if (before !== 'running' && after === 'running') {
      // Leaving divider reset, the first update comes 500 ms later; a stopped oscillator resumes its phase.
      const phase = before === 'reset' ? SECOND / 2 : this.frozenPhase;
      this.epochSeconds = loadTime(this.cmos);
      this.epochNs = now - phase;
    }
    this.evaluatedUntil = now;
    this.arm();
  }

  private writeRegisterB(value: number, now: number): void {
    this.evaluate(now);
    this.syncRegisters();
    const wasSet = (this.cmos[RTC_REGISTER_B]! & REG_B_SET) !== 0;
    // Setting SET clears UIE (datasheet): no update-ended interrupts while the clock is being set.
    if (value & REG_B_SET) value &= ~REG_B_UIE;
    this.cmos[RTC_REGISTER_B] = value;
    if (wasSet && !(value & REG_B_SET) && this.divider() === 'running') {
      this.epochSeconds = loadTime(this.cmos);
      this.epochNs = this.boundaryBefore(now);
    }
    this.evaluatedUntil = now;
    this.updateIrqFlag();
    this.arm();
  }

  /** Latches the events between `evaluatedUntil` and `now` into register C. */
  private evaluate(now: number): void {
    const from = this.evaluatedUntil;
    if (now <= from) return;
    this.evaluatedUntil = now;
    if (this.divider() !== 'running') return;
    let flags = this.cmos[RTC_REGISTER_C]!;
    const period = this.periodicPeriod();
    if (period !== undefined && this.cyclesAt(now, period) > this.cyclesAt(from, period)) flags |= REG_C_PF;
    if (!(this.cmos[RTC_REGISTER_B]! & REG_B_SET)) {
      const first = this.secondsAt(from) + 1;
      const last = this.secondsAt(now);
      if (last >= first) {
        flags |= REG_C_UF;
        if (this.alarmBetween(first, last)) flags |= REG_C_AF;
      }
    }
    this.cmos[RTC_REGISTER_C] = flags;
    this.updateIrqFlag();
  }

  private alarmBetween(first: number, last: number): boolean {
    // A day covers every hour/minute/second combination: beyond that, look at one day only.
    const end = Math.min(last, first + 86_399);
    for (let s = first; s <= end; s++) if (alarmMatches(this.cmos, s)) return true;
    return false;
  }

  /** The periodic interrupt period in 32.768 kHz cycles, from rate select (register A bits 3:0). */
  private periodicPeriod(): number | undefined {
    const rs = this.cmos[RTC_REGISTER_A]! & 0x0f;
    if (rs === 0) return undefined;
    return rs <= 2 ? 1 << (rs + 6) : 1 << (rs - 1);
  }

  /** Periodic cycles completed since the epoch at `ns`. */
  private cyclesAt(ns: number, period: number): number {
    const t = ns - this.epochNs;
    const seconds = Math.floor(t / SECOND);
    const cycles = seconds * 32768 + Math.floor(((t - seconds * SECOND) * 32768) / SECOND);
    return Math.floor(cycles / period);
  }

  private nsOfCycle(cycle: number, period: number): number {
    const ticks = cycle * period;
    const seconds = Math.floor(ticks / 32768);
    return this.epochNs + seconds * SECOND + Math.ceil(((ticks - seconds * 32768) * SECOND) / 32768);
  }

  /** IRQF = PF·PIE + AF·AIE + UF·UIE (datasheet), and the IRQ pin follows it. */
  private updateIrqFlag(): void {
    const c = this.cmos[RTC_REGISTER_C]!;
    const b = this.cmos[RTC_REGISTER_B]!;
    const pending = (c & b & (REG_B_PIE | REG_B_AIE | REG_B_UIE)) !== 0;
    this.cmos[RTC_REGISTER_C] = pending ? c | REG_C_IRQF : c & ~REG_C_IRQF;
    this.setIrq(pending);
  }

  private setIrq(level: boolean): void {
    if (level === this.irqLevel) return;
    this.irqLevel = level;
    this.irq.setLevel(level);
  }

  /** Arms the timer for the next event that would raise IRQ 8, if any. */
  private arm(): void {
    const now = this.clock.now();
    const b = this.cmos[RTC_REGISTER_B]!;
    let next: number | undefined;
    // While IRQ 8 is up nothing new can be signalled: register C is evaluated when read, which re-arms.
    if (this.divider() === 'running' && !this.irqLevel) {
      const period = this.periodicPeriod();
      if (period !== undefined && b & REG_B_PIE) next = this.nsOfCycle(this.cyclesAt(now, period) + 1, period);
      if (b & (REG_B_UIE | REG_B_AIE) && !(b & REG_B_SET)) {
        const update = this.boundaryBefore(now) + SECOND;
        next = next === undefined ? update : Math.min(next, update);
      }
    }
    if (next === undefined) this.timer.cancel();
    else this.timer.arm(next);
  }

  private onTimer(): void {
    this.evaluate(this.clock.now());
    this.arm();
  }

  save(): RtcState {
    this.syncRegisters();
    return {
      version: 1,
      cmos: encodeStateBytes(this.cmos),
      index: this.index,
      nmiDisabled: this.nmiDisabledValue,
      epochNs: this.epochNs,
      epochSeconds: this.epochSeconds,
      frozenPhase: this.frozenPhase,
      evaluatedUntil: this.evaluatedUntil,
      irqLevel: this.irqLevel,
    };
  }

  restore(state: unknown): void {
    const reader = StateReader.open(state, 'rtc', 1);
    const cmos = reader.bytes('cmos', 128, 128);
    const index = reader.uint('index', 0x7f);
    const nmiDisabled = reader.boolean('nmiDisabled');
    const range = 8.64e15 / 1000;
    const epochNs = reader.int('epochNs', -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
    const epochSeconds = reader.int('epochSeconds', -range, range);
    const frozenPhase = reader.uint('frozenPhase', SECOND - 1);
    const evaluatedUntil = reader.int('evaluatedUntil', -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
    const irqLevel = reader.boolean('irqLevel');
    if (cmos[RTC_REGISTER_A]! & 0x80) reader.fail('cmos', 'register A bit 7 (UIP) is never stored');
    this.cmos.set(cmos);
    this.index = index;
    this.nmiDisabledValue = nmiDisabled;
    this.epochNs = epochNs;
    this.epochSeconds = epochSeconds;
    this.frozenPhase = frozenPhase;
    this.evaluatedUntil = evaluatedUntil;
    this.irqLevel = irqLevel;
    this.irq.setLevel(irqLevel);
    this.arm();
  }
}
