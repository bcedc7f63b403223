import type { Clock, Timer } from '@tsvirt/interfaces';

export const TimerMode = { OneShot: 0, Periodic: 1, TscDeadline: 2 } as const;

export interface ApicTimerState {
  readonly initialCount: number;
  readonly divide: number;
  readonly start: number;
  readonly running: boolean;
  readonly tscDeadline: number;
}

/**
 * The local APIC timer: a 32-bit down-counter clocked by the APIC bus
 * clock through the divide configuration, in one-shot or periodic mode, or
 * an absolute TSC deadline (SDM vol. 3, 11.5.4). Time comes from the Clock;
 * the counter is computed on read, never ticked.
 */
export class ApicTimer {
  initialCount = 0;
  /** Divide configuration register, bits 0, 1 and 3. */
  divide = 0;
  /** When the current count period started (ns). */
  private start = 0;
  /** Counting (periodic, or one-shot not yet expired). */
  private running = false;
  /** IA32_TSC_DEADLINE in TSC ticks; 0 is disarmed. */
  tscDeadline = 0;
  private readonly timer: Timer;

  constructor(
    private readonly clock: Clock,
    private readonly busFrequencyHz: number,
    private readonly tscFrequencyHz: number,
    private readonly mode: () => number,
    private readonly expire: () => void,
  ) {
    this.timer = clock.createTimer(() => this.onTimer());
  }

  /** Nanoseconds per count at the current divider. */
  private get countPeriod(): number {
    const code = (this.divide & 3) | ((this.divide & 8) >> 1);
    const divisor = code === 7 ? 1 : 2 << code;
    return (divisor * 1e9) / this.busFrequencyHz;
  }

  currentCount(): number {
    if (!this.running || this.mode() === TimerMode.TscDeadline) return 0;
    const elapsed = Math.floor((this.clock.now() - this.start) / this.countPeriod);
    if (this.mode() === TimerMode.Periodic) return this.initialCount - (elapsed % this.initialCount);
    return Math.max(0, this.initialCount - elapsed);
  }

  setInitialCount(value: number): void {
    if (this.mode() === TimerMode.TscDeadline) return; // writes are ignored in TSC-deadline mode
    this.initialCount = value >>> 0;
    this.start = this.clock.now();
    this.running = this.initialCount !== 0;
    this.arm();
  }

  setDivide(value: number): void {
    // Rebase so the count keeps its value and continues at the new rate.
    const current = this.currentCount();
    this.divide = value & 0xb;
    if (this.running) {
      this.start = this.clock.now() - (this.initialCount - current) * this.countPeriod;
      this.arm();
    }
  }

  /** The LVT timer mode changed: the timer stops and its counts clear (as KVM does). */
  modeChanged(): void {
    this.initialCount = 0;
    this.running = false;
    this.tscDeadline = 0;
    this.timer.cancel();
  }

  /** TSC now, in ticks, for the deadline comparison. */
  tscNow(): number {
    return Math.floor((this.clock.now() * this.tscFrequencyHz) / 1e9);
  }

  setTscDeadline(deadline: number): void {
    if (this.mode() !== TimerMode.TscDeadline) return;
    this.tscDeadline = deadline;
    if (deadline === 0) {
      this.timer.cancel();
      return;
    }
    this.timer.arm(Math.max(this.clock.now(), Math.ceil((deadline * 1e9) / this.tscFrequencyHz)));
  }

  stop(): void {
    this.initialCount = 0;
    this.divide = 0;
    this.running = false;
    this.tscDeadline = 0;
    this.timer.cancel();
  }

  private arm(): void {
    if (!this.running) {
      this.timer.cancel();
      return;
    }
    const elapsedCounts = Math.floor((this.clock.now() - this.start) / this.countPeriod);
    const periods = this.mode() === TimerMode.Periodic ? Math.floor(elapsedCounts / this.initialCount) + 1 : 1;
    this.timer.arm(this.start + periods * this.initialCount * this.countPeriod);
  }

  private onTimer(): void {
    if (this.mode() === TimerMode.TscDeadline) {
      if (this.tscDeadline === 0) return;
      this.tscDeadline = 0;
      this.expire();
      return;
    }
    if (!this.running) return;
    if (this.mode() === TimerMode.Periodic) {
      this.expire();
      this.arm();
    } else {
      this.running = false;
      this.expire();
    }
  }

  save(): ApicTimerState {
    return { initialCount: this.initialCount, divide: this.divide, start: this.start, running: this.running, tscDeadline: this.tscDeadline };
  }

  load(state: ApicTimerState): void {
    this.initialCount = state.initialCount;
    this.divide = state.divide;
    this.start = state.start;
    this.running = state.running && state.initialCount !== 0;
    this.tscDeadline = state.tscDeadline;
    this.timer.cancel();
    if (this.mode() === TimerMode.TscDeadline) {
      if (this.tscDeadline !== 0) this.timer.arm(Math.max(this.clock.now(), Math.ceil((this.tscDeadline * 1e9) / this.tscFrequencyHz)));
    } else {
      this.arm();
    }
  }
}
