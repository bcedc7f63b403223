import type { Timer } from '@tsvirt/interfaces';
import { MigrationOptionsError } from '../errors.js';
import { hostTimer, type MigrationChannel, type MigrationTiming } from '../transport/channel.js';
import { deferred, type Deferred } from './deferred.js';

/**
 * How long either side of a migration waits on its peer, in milliseconds;
 * `false` turns a limit off. Each that runs out ends the migration with a
 * `MigrationTimeoutError` naming the phase.
 */
export interface MigrationDeadlines {
  /** Setup: from the start until the header is accepted and every multifd channel is open (default 30 000). */
  readonly setupMs?: number | false;
  /**
   * A stall: on the source, one write the destination does not make room
   * for, or one awaited answer that does not come; on the destination, no
   * byte arriving from the source on any of its connections (default 30 000).
   */
  readonly stallMs?: number | false;
  /** Post-copy recovery: from the lost connection until streaming resumes on a new one (default 60 000). */
  readonly recoveryMs?: number | false;
}

/** The defaults: a dead peer is noticed about when libvirt's keepalive (5 s × 5 probes) would notice it. */
export const DEFAULT_DEADLINES = Object.freeze({ setupMs: 30_000, stallMs: 30_000, recoveryMs: 60_000 } as const);

/** Limits in nanoseconds; `undefined` is off. */
export interface ResolvedDeadlines {
  readonly setupNs: number | undefined;
  readonly stallNs: number | undefined;
  readonly recoveryNs: number | undefined;
}

export function resolveDeadlines(deadlines: MigrationDeadlines = {}): ResolvedDeadlines {
  const limit = (value: number | false | undefined, fallback: number, name: string): number | undefined => {
    if (value === false) return undefined;
    const ms = value ?? fallback;
    if (!(Number.isFinite(ms) && ms > 0)) throw new MigrationOptionsError(`deadlines.${name} must be a positive number of milliseconds or false, got ${String(value)}`);
    return ms * 1e6;
  };
  return {
    setupNs: limit(deadlines.setupMs, DEFAULT_DEADLINES.setupMs, 'setupMs'),
    stallNs: limit(deadlines.stallMs, DEFAULT_DEADLINES.stallMs, 'stallMs'),
    recoveryNs: limit(deadlines.recoveryMs, DEFAULT_DEADLINES.recoveryMs, 'recoveryMs'),
  };
}

/** A timer on the timing's own time base, or a host timer when it has none. */
export function timerOn(timing: MigrationTiming, callback: () => void): Timer {
  return timing.createTimer?.(callback) ?? hostTimer(() => timing.now(), callback);
}

/** Milliseconds, for messages. */
export function inMs(nanoseconds: number): number {
  return Math.round(nanoseconds / 1e6);
}

interface Wait {
  readonly deadline: number;
  readonly expired: Deferred<never>;
  readonly error: () => Error;
}

/**
 * Bounds single waits on the peer: `watch(work, error)` rejects with
 * `error()` once `work` has been pending for the limit. One timer serves
 * every wait (a simulated clock keeps each timer it ever armed).
 */
export class WaitLimit {
  private readonly timer: Timer;
  private readonly waits = new Set<Wait>();
  private disposed = false;

  constructor(
    private readonly timing: MigrationTiming,
    private readonly limitNs: number | undefined,
  ) {
    this.timer = timerOn(timing, () => this.expire());
  }

  /** `interrupt` ends the wait too; raced in the same step, so when both happen at one instant the earlier one is reported. */
  async watch<T>(work: Promise<T>, error: () => Error, interrupt?: Promise<never>): Promise<T> {
    const racers = interrupt === undefined ? [work] : [work, interrupt];
    // After the migration ended, a straggling wait must not start a timer again.
    if (this.limitNs === undefined || this.disposed) return Promise.race(racers);
    const wait: Wait = { deadline: this.timing.now() + this.limitNs, expired: deferred<never>(), error };
    this.waits.add(wait);
    this.rearm();
    try {
      return await Promise.race([...racers, wait.expired.promise]);
    } finally {
      this.waits.delete(wait);
      this.rearm();
    }
  }

  /** Releases the timer (the migration ended). */
  dispose(): void {
    this.disposed = true;
    this.waits.clear();
    this.timer.cancel();
  }

  private expire(): void {
    const now = this.timing.now();
    for (const wait of this.waits) {
      if (wait.deadline > now) continue;
      this.waits.delete(wait);
      wait.expired.reject(wait.error());
    }
    this.rearm();
  }

  private rearm(): void {
    let earliest: number | undefined;
    for (const wait of this.waits) if (earliest === undefined || wait.deadline < earliest) earliest = wait.deadline;
    if (earliest === undefined) this.timer.cancel();
    else if (this.timer.deadline !== earliest) this.timer.arm(earliest);
  }
}

/**
 * Notices a peer that stopped sending: `touch()` on every arrival, and
 * `onStall` runs once nothing arrived for the limit while started. Re-armed
 * lazily, so an arrival costs a clock read, not a timer.
 */
export class ActivityWatchdog {
  private readonly timer: Timer;
  private last = 0;
  private started = false;

  constructor(
    private readonly timing: MigrationTiming,
    private readonly limitNs: number | undefined,
    private readonly onStall: () => void,
  ) {
    this.timer = timerOn(timing, () => this.check());
  }

  start(): void {
    if (this.limitNs === undefined) return;
    this.started = true;
    this.last = this.timing.now();
    this.timer.arm(this.last + this.limitNs);
  }

  touch(): void {
    if (this.started) this.last = this.timing.now();
  }

  stop(): void {
    this.started = false;
    this.timer.cancel();
  }

  private check(): void {
    if (!this.started || this.limitNs === undefined) return;
    const due = this.last + this.limitNs;
    if (this.timing.now() < due) {
      this.timer.arm(due);
      return;
    }
    this.started = false;
    this.onStall();
  }
}

/**
 * A connection whose arrivals count as the peer's sign of life, and which
 * can be cut off: `expire(error)` fails every pending and later operation
 * with `error` and tears the connection down, whatever the underlying
 * channel does with its own pending operations.
 */
export class WatchedChannel implements MigrationChannel {
  private readonly cut = deferred<never>();

  constructor(
    private readonly inner: MigrationChannel,
    private readonly onArrival: () => void,
  ) {}

  get duplex(): boolean {
    return this.inner.duplex;
  }

  async read(): Promise<Uint8Array | null> {
    const chunk = await Promise.race([this.inner.read(), this.cut.promise]);
    if (chunk !== null && chunk.length > 0) this.onArrival();
    return chunk;
  }

  async write(bytes: Uint8Array): Promise<void> {
    await Promise.race([this.inner.write(bytes), this.cut.promise]);
  }

  async end(): Promise<void> {
    await Promise.race([this.inner.end(), this.cut.promise]);
  }

  destroy(reason?: Error): void {
    this.inner.destroy(reason);
  }

  expire(error: Error): void {
    if (!this.cut.settled) this.cut.reject(error);
    this.inner.destroy();
  }
}

/** Closes a connection that arrives after its wait was given up, so nothing is left open. */
export function closeWhenLate(pending: Promise<MigrationChannel>): void {
  pending.then(
    (late) => late.destroy(),
    () => {},
  );
}
