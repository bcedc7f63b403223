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
}

/** Host time: `performance.now()` and `setTimeout`. */
export function hostTiming(): MigrationTiming {
  return {
    now: () => Math.round(performance.now() * 1e6),
    sleep: (nanoseconds) => new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.ceil(nanoseconds / 1e6)))),
  };
}
