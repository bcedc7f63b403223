import type { Clock, Timer } from '../clock.js';

class ManualTimer implements Timer {
  deadline: number | undefined;

  constructor(
    private readonly clock: ManualClock,
    readonly callback: () => void,
  ) {}

  arm(deadline: number): void {
    this.deadline = deadline;
    this.clock.schedule(this);
  }

  cancel(): void {
    this.deadline = undefined;
  }
}

/**
 * A deterministic clock for tests: time moves only when `advance` or
 * `advanceTo` is called, and timers fire in deadline order (ties in arming
 * order) with `now()` equal to their deadline.
 */
export class ManualClock implements Clock {
  private time: number;
  private readonly timers = new Set<ManualTimer>();

  constructor(start = 0) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  createTimer(callback: () => void): Timer {
    return new ManualTimer(this, callback);
  }

  /** @internal */
  schedule(timer: ManualTimer): void {
    this.timers.delete(timer);
    this.timers.add(timer);
  }

  advance(nanoseconds: number): void {
    this.advanceTo(this.time + nanoseconds);
  }

  advanceTo(target: number): void {
    if (target < this.time) throw new RangeError(`time cannot go back (${target} < ${this.time})`);
    for (let next = this.takeDue(target); next !== undefined; next = this.takeDue(target)) {
      this.time = Math.max(this.time, next.deadline!);
      next.deadline = undefined;
      next.callback();
    }
    this.time = target;
  }

  /**
   * Moves time to `target` at once and only then fires the timers due by
   * it, each seeing `now() === target`: what a real-time clock does after the
   * host stalled the machine. A timer re-armed for later than `target` waits.
   */
  jumpTo(target: number): void {
    if (target < this.time) throw new RangeError(`time cannot go back (${target} < ${this.time})`);
    this.time = target;
    for (let next = this.takeDue(target); next !== undefined; next = this.takeDue(target)) {
      next.deadline = undefined;
      next.callback();
    }
  }

  /** Removes and returns the armed timer with the earliest deadline at or before `target` (first armed on ties). */
  private takeDue(target: number): ManualTimer | undefined {
    let next: ManualTimer | undefined;
    for (const timer of this.timers) {
      if (timer.deadline === undefined) continue;
      if (timer.deadline <= target && (next === undefined || timer.deadline < next.deadline!)) next = timer;
    }
    if (next !== undefined) this.timers.delete(next);
    return next;
  }

  /** The earliest armed deadline, if any. */
  nextDeadline(): number | undefined {
    let next: number | undefined;
    for (const timer of this.timers) if (timer.deadline !== undefined && (next === undefined || timer.deadline < next)) next = timer.deadline;
    return next;
  }
}
