import { TsvirtError, type Timer } from '@tsvirt/interfaces';
import { MigrationPeerError } from '../errors.js';

/**
 * A byte pipe between the two ends of a migration. The forward direction
 * carries the stream; a duplex channel also carries the destination's
 * answers back (accept/refuse, completion, errors). A file is one-way.
 */
export interface MigrationChannel {
  /** True when the peer can answer (sockets, in-memory pairs); false for files. */
  readonly duplex: boolean;
  /**
   * Sends `bytes` and resolves once the channel has room for more
   * (backpressure). The caller must not modify `bytes` afterwards.
   */
  write(bytes: Uint8Array): Promise<void>;
  /** The next chunk of incoming bytes, or `null` once the peer ended its direction. */
  read(): Promise<Uint8Array | null>;
  /** Ends the outgoing direction after the queued bytes; the peer then reads `null`. */
  end(): Promise<void>;
  /** Tears both directions down now; pending and later reads see the end (or `reason`). */
  destroy(reason?: Error): void;
}

/** How the engine tells and spends time: nanoseconds, injectable so simulations are deterministic. */
export interface MigrationTiming {
  now(): number;
  /** Waits `nanoseconds` (rate limiting). */
  sleep(nanoseconds: number): Promise<void>;
  /**
   * A timer on the same time base as `now()`, for the timeouts (a `Clock`'s
   * `createTimer` fits). Without it the timeouts run on host timers.
   */
  createTimer?(callback: () => void): Timer;
}

/** Host time: `performance.now()` and `setTimeout`. */
export function hostTiming(): MigrationTiming {
  const now = (): number => Math.round(performance.now() * 1e6);
  return {
    now,
    sleep: (nanoseconds) => new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.ceil(nanoseconds / 1e6)))),
    createTimer: (callback) => hostTimer(now, callback),
  };
}

/** A `setTimeout` timer whose deadlines are read on `now` (ns); the timeouts of a timing without its own timers. */
export function hostTimer(now: () => number, callback: () => void): Timer {
  let handle: ReturnType<typeof setTimeout> | undefined;
  const timer = {
    deadline: undefined as number | undefined,
    arm(deadline: number): void {
      if (handle !== undefined) clearTimeout(handle);
      timer.deadline = deadline;
      handle = setTimeout(
        () => {
          handle = undefined;
          timer.deadline = undefined;
          callback();
        },
        Math.max(0, Math.ceil((deadline - now()) / 1e6)),
      );
    },
    cancel(): void {
      if (handle !== undefined) clearTimeout(handle);
      handle = undefined;
      timer.deadline = undefined;
    },
  };
  return timer;
}

/** A channel's own failure (an untyped error from a socket, a pipe or a connect callback) as the typed error the engine reports; typed errors pass as they are. */
export function connectionFailure(error: unknown): TsvirtError {
  if (error instanceof TsvirtError) return error;
  return new MigrationPeerError(`the migration connection failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
}

/** Calls a connect, accept or reconnect callback: whether it throws or rejects, its failure is a typed connection failure. */
export async function openChannel(open: () => Promise<MigrationChannel>): Promise<MigrationChannel> {
  try {
    return await open();
  } catch (error) {
    throw connectionFailure(error);
  }
}
