import type { AdvancingClock } from '../transport/memory-channel.js';

/** How a promise ended, or that it had not ended when {@link settleOnClock} gave up. */
export type Settlement<T> = { readonly state: 'fulfilled'; readonly value: T } | { readonly state: 'rejected'; readonly error: unknown } | { readonly state: 'pending' };

export interface SettleOnClockOptions {
  /** Simulated time added per step, ns. */
  readonly stepNs: number;
  /** Steps before giving up; `stepNs × maxSteps` is the simulated time a hang is allowed. */
  readonly maxSteps: number;
}

/**
 * Waits for `work` while moving a manual clock forward: each step lets every
 * pending callback run (one `setImmediate` turn), then advances `clock` by
 * `stepNs`. A peer that stalls then costs simulated time, not host time, so
 * the engine's timeouts fire deterministically; a hang shows up as
 * `pending` after `maxSteps` steps instead of as a test that never ends.
 */
export async function settleOnClock<T>(work: Promise<T>, clock: AdvancingClock, options: SettleOnClockOptions): Promise<Settlement<T>> {
  // A holder, not a variable: the callbacks assign it behind the compiler's back.
  const outcome: { settlement: Settlement<T> } = { settlement: { state: 'pending' } };
  work.then(
    (value) => (outcome.settlement = { state: 'fulfilled', value }),
    (error: unknown) => (outcome.settlement = { state: 'rejected', error }),
  );
  for (let step = 0; step <= options.maxSteps; step++) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (outcome.settlement.state !== 'pending') return outcome.settlement;
    if (step < options.maxSteps) clock.advance(options.stepNs);
  }
  return outcome.settlement;
}
