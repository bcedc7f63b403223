import { StateReader, ignoreEvents } from '@tsvirt/interfaces';
import type { AccessSize, BusDevice, Clock, IrqLine, Observer, Timer } from '@tsvirt/interfaces';
import { nanosecondsAtTick, pmTicksAt } from './pm-timer-clock.js';

/** PM1 status and enable bits (ACPI 6.5, 4.8.4.1). */
export const Pm1Status = {
  Timer: 0x0001,
  BusMaster: 0x0010,
  Global: 0x0020,
  PowerButton: 0x0100,
  SleepButton: 0x0200,
  Rtc: 0x0400,
  Wake: 0x8000,
} as const;
const PM1_STATUS_BITS = 0x8731;
/** Enables that exist: timer, global, power button, sleep button, RTC. */
const PM1_ENABLE_BITS = 0x0721;
/** Events that raise SCI (QEMU's ACPI_BITMASK_PM1_COMMON_ENABLED). */
const SCI_EVENTS = Pm1Status.Timer | Pm1Status.Global | Pm1Status.PowerButton | Pm1Status.Rtc;

const CONTROL_SCI_ENABLE = 0x0001;
/** SCI_EN, BM_RLD, GBL_RLS and SLP_TYP are stored; SLP_EN is write-only. */
const CONTROL_STORED = 0x1c07;
const CONTROL_SLEEP_ENABLE = 0x2000;

/**
 * SLP_TYP values of QEMU's pc DSDT, which the VM's DSDT must use too:
 * `_S5 = Package { 0, 0, 0, 0 }` is soft-off, `_S3` is 1, `_S4` is 2.
 */
export const SleepType = { SoftOff: 0, Suspend: 1, Hibernate: 2 } as const;

/** The SMI command values QEMU's FADT advertises (SMI_CMD = 0xB2). */
export const ACPI_ENABLE_COMMAND = 0xf1;
export const ACPI_DISABLE_COMMAND = 0xf0;

export type AcpiPmEvent = { readonly kind: 'sleep'; readonly sleepType: number } | { readonly kind: 'sci'; readonly level: boolean };

export interface AcpiPmOptions {
  readonly clock: Clock;
  /** The SCI line (IRQ 9 on a pc), level-triggered. */
  readonly sci: IrqLine;
  /** S5 (and S4, which QEMU also treats as power-off) requested by the guest. */
  readonly onPowerOff?: () => void;
  /** S3 requested by the guest. */
  readonly onSuspend?: () => void;
  /** PM timer width as the FADT declares it; QEMU's pc FADT says 24 bits (TMR_VAL_EXT clear). */
  readonly timerBits?: 24 | 32;
  readonly observer?: Observer<AcpiPmEvent>;
}

export interface AcpiPmState {
  readonly version: 1;
  readonly status: number;
  readonly enable: number;
  readonly control: number;
  readonly gpeStatus: number;
  readonly gpeEnable: number;
  readonly apmCommand: number;
  readonly apmStatus: number;
  readonly nextOverflowTick: number;
}

/**
 * PIIX4-style ACPI power management as QEMU's pc machine exposes it:
 * {@link AcpiPm.pmBlock} at 0x600 (PM1a event block at +0, PM1a control at
 * +4, PM timer at +8; length 0x40), {@link AcpiPm.gpeBlock} GPE0 at 0xAFE0
 * (length 4), and {@link AcpiPm.smiCommand} the APM ports 0xB2/0xB3 through
 * which the guest switches to ACPI mode. The FADT has no reset register on
 * QEMU's pc; reset goes through port 0xCF9.
 */
export class AcpiPm {
  private status = 0;
  private enable = 0;
  private control = 0;
  private gpeStatus = 0;
  private gpeEnable = 0;
  private apmCommand = 0;
  private apmStatus = 0;
  /** PM timer tick at which its top bit next toggles (TMR_STS). */
  private nextOverflowTick: number;
  private sciLevel = false;
  private readonly overflowTimer: Timer;
  private readonly clock: Clock;
  private readonly sci: IrqLine;
  private readonly onPowerOff: () => void;
  private readonly onSuspend: () => void;
  private readonly timerMask: number;
  private readonly overflowPeriod: number;
  private readonly observer: Observer<AcpiPmEvent>;
  readonly pmBlock: BusDevice;
  readonly gpeBlock: BusDevice;
  readonly smiCommand: BusDevice;

  constructor(options: AcpiPmOptions) {
    this.clock = options.clock;
    this.sci = options.sci;
    this.onPowerOff = options.onPowerOff ?? (() => {});
    this.onSuspend = options.onSuspend ?? (() => {});
    const bits = options.timerBits ?? 24;
    this.timerMask = bits === 32 ? 0xffff_ffff : 0xff_ffff;
    this.overflowPeriod = 2 ** (bits - 1);
    this.observer = options.observer ?? ignoreEvents;
    this.overflowTimer = this.clock.createTimer(() => this.update());
    this.nextOverflowTick = this.overflowAfter(this.ticks());
    this.pmBlock = {
      read: (offset: number, size: AccessSize) => readBytes(offset, size, (at) => this.readPmByte(at)),
      write: (offset: number, size: AccessSize, value: number) => this.writePm(offset, size, value),
    };
    this.gpeBlock = {
      read: (offset: number, size: AccessSize) => readBytes(offset, size, (at) => this.readGpeByte(at)),
      write: (offset: number, size: AccessSize, value: number) => this.writeGpe(offset, size, value),
    };
    this.smiCommand = {
      read: (offset: number, size: AccessSize) => readBytes(offset, size, (at) => (at === 0 ? this.apmCommand : at === 1 ? this.apmStatus : 0xff)),
      write: (offset: number, size: AccessSize, value: number) => {
        for (let i = 0; i < size; i++) {
          const byte = (value >>> (8 * i)) & 0xff;
          if (offset + i === 0) this.writeApmCommand(byte);
          else if (offset + i === 1) this.apmStatus = byte;
        }
      },
    };
  }

  private ticks(): number {
    return pmTicksAt(this.clock.now());
  }

  private overflowAfter(ticks: number): number {
    return (Math.floor(ticks / this.overflowPeriod) + 1) * this.overflowPeriod;
  }

  /** PM1 status with TMR_STS folded in once the timer's top bit has toggled. */
  private currentStatus(): number {
    if (this.ticks() >= this.nextOverflowTick) this.status |= Pm1Status.Timer;
    return this.status;
  }

  get timerValue(): number {
    return this.ticks() % (this.timerMask + 1);
  }

  get sciEnabled(): boolean {
    return (this.control & CONTROL_SCI_ENABLE) !== 0;
  }

  // ---- PM1 and timer block ----

  private readPmByte(at: number): number {
    if (at < 2) return (this.currentStatus() >> (8 * at)) & 0xff;
    if (at < 4) return (this.enable >> (8 * (at - 2))) & 0xff;
    if (at < 6) return (this.control >> (8 * (at - 4))) & 0xff;
    if (at >= 8 && at < 12) return (this.timerValue >>> (8 * (at - 8))) & 0xff;
    return 0;
  }

  private writePm(offset: number, size: AccessSize, value: number): void {
    for (let i = 0; i < size; i++) {
      const at = offset + i;
      const byte = (value >>> (8 * i)) & 0xff;
      if (at < 2) this.clearStatus(byte << (8 * at));
      else if (at < 4) this.enable = ((this.enable & ~(0xff << (8 * (at - 2)))) | (byte << (8 * (at - 2)))) & PM1_ENABLE_BITS;
    }
    // PM1_CNT is acted on once per access, so a word write with SLP_EN sees its SLP_TYP.
    if (offset < 6 && offset + size > 4) {
      let control = this.control;
      for (let i = 0; i < size; i++) {
        const at = offset + i;
        if (at === 4 || at === 5) control = (control & ~(0xff << (8 * (at - 4)))) | (((value >>> (8 * i)) & 0xff) << (8 * (at - 4)));
      }
      this.writeControl(control);
    }
    this.update();
  }

  private clearStatus(bits: number): void {
    const status = this.currentStatus();
    if ((bits & status & Pm1Status.Timer) !== 0) this.nextOverflowTick = this.overflowAfter(this.ticks());
    this.status = status & ~(bits & PM1_STATUS_BITS);
  }

  private writeControl(value: number): void {
    this.control = value & CONTROL_STORED;
    if ((value & CONTROL_SLEEP_ENABLE) === 0) return;
    const sleepType = (value >> 10) & 7;
    this.observer({ kind: 'sleep', sleepType });
    if (sleepType === SleepType.SoftOff || sleepType === SleepType.Hibernate) this.onPowerOff();
    else if (sleepType === SleepType.Suspend) this.onSuspend();
  }

  // ---- GPE0 ----

  private readGpeByte(at: number): number {
    if (at < 2) return (this.gpeStatus >> (8 * at)) & 0xff;
    if (at < 4) return (this.gpeEnable >> (8 * (at - 2))) & 0xff;
    return 0;
  }

  private writeGpe(offset: number, size: AccessSize, value: number): void {
    for (let i = 0; i < size; i++) {
      const at = offset + i;
      const byte = (value >>> (8 * i)) & 0xff;
      if (at < 2) this.gpeStatus &= ~(byte << (8 * at));
      else if (at < 4) this.gpeEnable = (this.gpeEnable & ~(0xff << (8 * (at - 2)))) | (byte << (8 * (at - 2)));
    }
    this.update();
  }

  /** Sets a general-purpose event status bit (hot-plug, for instance). */
  raiseGpe(bit: number): void {
    if (!Number.isInteger(bit) || bit < 0 || bit > 15) throw new RangeError(`GPE0 bit ${bit} does not exist`);
    this.gpeStatus |= 1 << bit;
    this.update();
  }

  // ---- events ----

  /** The power button was pressed (a host-side request to shut down gracefully). */
  pressPowerButton(): void {
    this.status |= Pm1Status.PowerButton;
    this.update();
  }

  private writeApmCommand(byte: number): void {
    this.apmCommand = byte;
    // The SMI handler of QEMU's firmware switches ACPI mode; other commands would reach SMM, which is absent.
    if (byte === ACPI_ENABLE_COMMAND) this.control |= CONTROL_SCI_ENABLE;
    else if (byte === ACPI_DISABLE_COMMAND) this.control &= ~CONTROL_SCI_ENABLE;
  }

  /** Recomputes SCI and arms the overflow timer while TMR_EN waits for TMR_STS (as QEMU does, SCI is not gated by SCI_EN). */
  private update(): void {
    const status = this.currentStatus();
    const level = (status & this.enable & SCI_EVENTS) !== 0 || (this.gpeStatus & this.gpeEnable) !== 0;
    if (level !== this.sciLevel) {
      this.sciLevel = level;
      this.observer({ kind: 'sci', level });
      this.sci.setLevel(level);
    }
    if ((this.enable & Pm1Status.Timer) !== 0 && (status & Pm1Status.Timer) === 0) this.overflowTimer.arm(nanosecondsAtTick(this.nextOverflowTick));
    else this.overflowTimer.cancel();
  }

  reset(): void {
    this.status = 0;
    this.enable = 0;
    this.control = 0;
    this.gpeStatus = 0;
    this.gpeEnable = 0;
    this.apmCommand = 0;
    this.apmStatus = 0;
    this.nextOverflowTick = this.overflowAfter(this.ticks());
    this.update();
  }

  save(): AcpiPmState {
    return {
      version: 1,
      status: this.currentStatus(),
      enable: this.enable,
      control: this.control,
      gpeStatus: this.gpeStatus,
      gpeEnable: this.gpeEnable,
      apmCommand: this.apmCommand,
      apmStatus: this.apmStatus,
      nextOverflowTick: this.nextOverflowTick,
    };
  }

  restore(state: unknown): void {
    const reader = StateReader.open(state, 'acpiPm', 1);
    const status = reader.uint('status', 0xffff);
    if ((status & ~PM1_STATUS_BITS) !== 0) reader.fail('status', 'reserved bits set');
    const enable = reader.uint('enable', 0xffff);
    if ((enable & ~PM1_ENABLE_BITS) !== 0) reader.fail('enable', 'reserved bits set');
    const control = reader.uint('control', 0xffff);
    if ((control & ~CONTROL_STORED) !== 0) reader.fail('control', 'reserved bits set');
    const gpeStatus = reader.uint('gpeStatus', 0xffff);
    const gpeEnable = reader.uint('gpeEnable', 0xffff);
    const apmCommand = reader.uint('apmCommand', 0xff);
    const apmStatus = reader.uint('apmStatus', 0xff);
    const nextOverflowTick = reader.uint('nextOverflowTick', Number.MAX_SAFE_INTEGER);
    if (nextOverflowTick % this.overflowPeriod !== 0) reader.fail('nextOverflowTick', 'not a timer overflow point');
    this.status = status;
    this.enable = enable;
    this.control = control;
    this.gpeStatus = gpeStatus;
    this.gpeEnable = gpeEnable;
    this.apmCommand = apmCommand;
    this.apmStatus = apmStatus;
    this.nextOverflowTick = nextOverflowTick;
    this.update();
  }
}

function readBytes(offset: number, size: AccessSize, byteAt: (at: number) => number): number {
  let value = 0;
  for (let i = 0; i < size; i++) value |= byteAt(offset + i) << (8 * i);
  return value >>> 0;
}
