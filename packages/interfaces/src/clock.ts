/**
 * A one-shot timer from {@link Clock.createTimer}. Devices create their
 * timers once and re-arm them, so the hot path allocates nothing.
 */
export interface Timer {
  /** Fires the callback once the clock reaches `deadline` (ns). Re-arming replaces the previous deadline; a deadline in the past fires at the next opportunity. */
  arm(deadline: number): void;
  cancel(): void;
  /** The armed deadline, or `undefined` when not armed. */
  readonly deadline: number | undefined;
}

/**
 * Virtual time in nanoseconds since the machine was created. In real-time
 * mode it follows the host's monotonic clock; in deterministic mode it
 * advances only with executed instructions (and idle skips), so a run can be
 * replayed exactly. Callbacks run from the machine's event loop, never inside
 * a device access.
 *
 * @example
 * ```ts
 * // given: clock (a deterministic Clock at 0, moved by advance(nanoseconds))
 * const fired: number[] = [];
 * const timer = clock.createTimer(() => fired.push(clock.now()));
 * timer.arm(1_000);
 * advance(999);
 * assert.deepEqual(fired, []);
 * advance(1);
 * assert.deepEqual(fired, [1_000]);
 * assert.equal(timer.deadline, undefined);
 * ```
 */
export interface Clock {
  now(): number;
  createTimer(callback: () => void): Timer;
}

export type ClockMode = 'realtime' | 'deterministic';
