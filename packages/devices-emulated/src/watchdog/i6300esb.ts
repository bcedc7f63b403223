import { StateReader } from '@tsvirt/interfaces';
import type { AccessSize, BusDevice, Clock, PciBarDefinition, PciCapability, PciDevice, PciIdentity, Timer } from '@tsvirt/interfaces';

/** Intel 6300ESB's watchdog function (8086:25ab, class "other system peripheral"), as QEMU's `i6300esb`. */
export const I6300ESB_IDENTITY: PciIdentity = { vendorId: 0x8086, deviceId: 0x25ab, classCode: 0x088000, revision: 0 };

/** Configuration space: WDT configuration (word) and lock (byte) registers. */
const CONFIG_REGISTER = 0x60;
const LOCK_REGISTER = 0x68;
const Config = { InterruptType: 0x0003, Frequency1MHz: 0x0004, OutputDisable: 0x0020 } as const;
const Lock = { Locked: 0x01, Enable: 0x02, FreeRun: 0x04 } as const;

/** BAR 0 (16 bytes): the two preload values, interrupt status, and the reload register. */
const TIMER1 = 0x00;
const TIMER2 = 0x04;
const RELOAD = 0x0c;
const PRELOAD_MASK = 0xfffff;
const Reload = { Reload: 0x0100, Timeout: 0x0200 } as const;
/** Linux's driver reads and clears the timeout flag at bit 12 rather than 9; QEMU answers both, and so do we. */
const LINUX_TIMEOUT_BIT = 0x1000;
const UNLOCK_FIRST = 0x80;
const UNLOCK_SECOND = 0x86;

/** The timers count a 33 MHz PCI clock divided by 2^15 (about 1 kHz) or 2^5 (about 1 MHz); ns = ticks · 1000 / 33. */
function preloadNanoseconds(preload: number, megahertz: boolean): number {
  return Math.floor((preload * 2 ** (megahertz ? 5 : 15) * 1000) / 33);
}

export interface I6300esbOptions {
  readonly clock: Clock;
  /** The second stage ran out with output enabled: the machine takes the configured action (QEMU's `-watchdog-action`). */
  readonly onExpire: () => void;
}

export interface I6300esbState {
  readonly version: 1;
  readonly config: number;
  readonly lock: number;
  readonly preload1: number;
  readonly preload2: number;
  readonly stage: 1 | 2;
  readonly unlock: 0 | 1 | 2;
  readonly timedOut: boolean;
  /** When the current stage ends (clock ns), or -1 when stopped. */
  readonly deadline: number;
}

/**
 * The 6300ESB watchdog. Enabling it (lock register) starts stage 1 with
 * preload 1; at its end stage 2 starts with preload 2 (the stage-1 interrupt
 * is not delivered: Linux's driver disables it, and QEMU does not raise it);
 * at the end of stage 2 the machine acts, the flag the guest reads after the
 * reboot is set, and the function resets. The preloads and the reload only
 * take a write after the 0x80, 0x86 unlock sequence. Once the lock bit is
 * set, the lock register holds until reset.
 */
export class I6300esb implements PciDevice {
  readonly identity = I6300ESB_IDENTITY;
  readonly capabilities: readonly PciCapability[] = [];
  readonly interruptPin = 0 as const;
  readonly bars: readonly (PciBarDefinition | undefined)[];
  private readonly timer: Timer;
  private config = 0;
  private lock = 0;
  private preload1 = PRELOAD_MASK;
  private preload2 = PRELOAD_MASK;
  private stage: 1 | 2 = 1;
  private unlock: 0 | 1 | 2 = 0;
  /** Survives reset: it is how the guest learns, after the reboot, that the watchdog caused it. */
  private timedOut = false;

  constructor(private readonly options: I6300esbOptions) {
    this.timer = options.clock.createTimer(() => this.expire());
    const registers: BusDevice = { read: (offset, size) => this.readRegister(offset, size), write: (offset, size, value) => this.writeRegister(offset, size, value) };
    this.bars = [{ kind: 'memory32', size: 16, device: registers }];
    this.reset();
  }

  attach(): void {}

  reset(): void {
    this.timer.cancel();
    this.config = 0;
    this.lock = 0;
    this.preload1 = PRELOAD_MASK;
    this.preload2 = PRELOAD_MASK;
    this.stage = 1;
    this.unlock = 0;
  }

  readConfig(offset: number, size: 1 | 2 | 4): number {
    if (offset === CONFIG_REGISTER && size === 2) return this.config;
    if (offset === LOCK_REGISTER && size === 1) return this.lock;
    return 0;
  }

  writeConfig(offset: number, size: 1 | 2 | 4, value: number): void {
    if (offset === CONFIG_REGISTER && size === 2) {
      this.config = value & (Config.InterruptType | Config.Frequency1MHz | Config.OutputDisable);
    } else if (offset === LOCK_REGISTER && size === 1 && (this.lock & Lock.Locked) === 0) {
      const wasEnabled = (this.lock & Lock.Enable) !== 0;
      this.lock = value & (Lock.Locked | Lock.Enable | Lock.FreeRun);
      if ((this.lock & Lock.Enable) === 0) this.timer.cancel();
      else if (!wasEnabled) this.start(1);
    }
  }

  private readRegister(offset: number, size: AccessSize): number {
    if (offset === RELOAD && size === 2) return this.timedOut ? Reload.Timeout | LINUX_TIMEOUT_BIT : 0;
    return 0;
  }

  private writeRegister(offset: number, size: AccessSize, value: number): void {
    if (offset === RELOAD && value === UNLOCK_FIRST) {
      this.unlock = 1;
    } else if (offset === RELOAD && value === UNLOCK_SECOND && this.unlock === 1) {
      this.unlock = 2;
    } else if (this.unlock === 2 && size !== 1) {
      // One write after the sequence, of the right width, takes effect; any such write relocks.
      if (size === 2 && offset === RELOAD) {
        if ((value & Reload.Reload) !== 0) this.start(1);
        if ((value & (Reload.Timeout | LINUX_TIMEOUT_BIT)) !== 0) this.timedOut = false;
      } else if (size === 4 && offset === TIMER1) {
        this.preload1 = value & PRELOAD_MASK;
      } else if (size === 4 && offset === TIMER2) {
        this.preload2 = value & PRELOAD_MASK;
      }
      this.unlock = 0;
    }
  }

  private start(stage: 1 | 2): void {
    if ((this.lock & Lock.Enable) === 0) return;
    this.stage = stage;
    const megahertz = (this.config & Config.Frequency1MHz) !== 0;
    this.timer.arm(this.options.clock.now() + preloadNanoseconds(stage === 1 ? this.preload1 : this.preload2, megahertz));
  }

  private expire(): void {
    if (this.stage === 1) {
      this.start(2);
      return;
    }
    if ((this.config & Config.OutputDisable) === 0) {
      this.timedOut = true;
      this.options.onExpire();
      this.reset();
    }
    if ((this.lock & Lock.FreeRun) !== 0) this.start(1);
  }

  save(): I6300esbState {
    return {
      version: 1,
      config: this.config,
      lock: this.lock,
      preload1: this.preload1,
      preload2: this.preload2,
      stage: this.stage,
      unlock: this.unlock,
      timedOut: this.timedOut,
      deadline: this.timer.deadline ?? -1,
    };
  }

  restore(state: unknown): void {
    const reader = StateReader.open(state, 'i6300esb', 1);
    const config = reader.uint('config', 0xffff);
    if ((config & ~(Config.InterruptType | Config.Frequency1MHz | Config.OutputDisable)) !== 0) reader.fail('config', 'reserved bits set');
    const lock = reader.uint('lock', 0x07);
    const preload1 = reader.uint('preload1', PRELOAD_MASK);
    const preload2 = reader.uint('preload2', PRELOAD_MASK);
    const stage = reader.int('stage', 1, 2) as 1 | 2;
    const unlock = reader.int('unlock', 0, 2) as 0 | 1 | 2;
    const timedOut = reader.boolean('timedOut');
    const deadline = reader.number('deadline');
    if (deadline !== -1 && deadline < 0) reader.fail('deadline', 'neither -1 nor a time');
    if (deadline !== -1 && (lock & Lock.Enable) === 0) reader.fail('deadline', 'a running timer on a disabled watchdog');
    this.config = config;
    this.lock = lock;
    this.preload1 = preload1;
    this.preload2 = preload2;
    this.stage = stage;
    this.unlock = unlock;
    this.timedOut = timedOut;
    if (deadline === -1) this.timer.cancel();
    else this.timer.arm(deadline);
  }
}
