import type { MigrationChannel } from './channel.js';

/** A clock the simulated link moves forward as bytes cross it (a `ManualClock` fits). */
export interface AdvancingClock {
  now(): number;
  advance(nanoseconds: number): void;
}

export interface ChannelPairOptions {
  /** Bytes queued in one direction before `write` waits for the reader (default 4 MiB). */
  readonly highWaterBytes?: number;
  /**
   * A simulated link: every write moves `clock` forward by the time the bytes
   * take at `bytesPerSecond` (rounded up to whole nanoseconds), so bandwidth
   * and downtime are exact and repeatable.
   */
  readonly link?: { readonly clock: AdvancingClock; readonly bytesPerSecond: number };
}

/** One direction of a pair: a bounded queue of chunks. */
class Pipe {
  private readonly chunks: Uint8Array[] = [];
  private queuedBytes = 0;
  private ended = false;
  private failure: Error | undefined;
  private readWaiter: (() => void) | undefined;
  private spaceWaiters: Array<() => void> = [];

  constructor(private readonly highWaterBytes: number) {}

  async push(bytes: Uint8Array): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    if (this.ended) throw new Error('write after end');
    if (bytes.length === 0) return;
    this.chunks.push(bytes);
    this.queuedBytes += bytes.length;
    this.wakeReader();
    while (this.queuedBytes > this.highWaterBytes && this.failure === undefined && !this.ended) {
      await new Promise<void>((resolve) => this.spaceWaiters.push(resolve));
    }
    if (this.failure !== undefined) throw this.failure;
  }

  async pull(): Promise<Uint8Array | null> {
    for (;;) {
      const chunk = this.chunks.shift();
      if (chunk !== undefined) {
        this.queuedBytes -= chunk.length;
        if (this.queuedBytes <= this.highWaterBytes) this.wakeWriters();
        return chunk;
      }
      if (this.failure !== undefined) throw this.failure;
      if (this.ended) return null;
      await new Promise<void>((resolve) => (this.readWaiter = resolve));
    }
  }

  end(): void {
    this.ended = true;
    this.wakeReader();
    this.wakeWriters();
  }

  fail(reason: Error): void {
    if (this.failure === undefined) this.failure = reason;
    this.chunks.length = 0;
    this.queuedBytes = 0;
    this.wakeReader();
    this.wakeWriters();
  }

  private wakeReader(): void {
    const waiter = this.readWaiter;
    this.readWaiter = undefined;
    waiter?.();
  }

  private wakeWriters(): void {
    const waiters = this.spaceWaiters;
    this.spaceWaiters = [];
    for (const waiter of waiters) waiter();
  }
}

class PipeEnd implements MigrationChannel {
  readonly duplex = true;

  constructor(
    private readonly incoming: Pipe,
    private readonly outgoing: Pipe,
    private readonly options: ChannelPairOptions,
  ) {}

  write(bytes: Uint8Array): Promise<void> {
    // Queue first: advancing the clock runs timers that may write too, and frames must keep their order.
    const queued = this.outgoing.push(bytes);
    const link = this.options.link;
    if (link !== undefined && bytes.length > 0) link.clock.advance(Math.ceil((bytes.length * 1e9) / link.bytesPerSecond));
    return queued;
  }

  read(): Promise<Uint8Array | null> {
    return this.incoming.pull();
  }

  async end(): Promise<void> {
    this.outgoing.end();
  }

  destroy(reason: Error = new Error('channel destroyed')): void {
    this.outgoing.fail(reason);
    this.incoming.fail(reason);
  }
}

/**
 * Two connected in-memory channels, for tests and for migrating between two
 * machines in one process. With `link`, the pair simulates a network of a
 * given bandwidth on a manual clock.
 */
export function createChannelPair(options: ChannelPairOptions = {}): [MigrationChannel, MigrationChannel] {
  const highWater = options.highWaterBytes ?? 4 * 1024 * 1024;
  if (options.link !== undefined && !(options.link.bytesPerSecond > 0)) throw new RangeError('link bandwidth must be positive');
  const forward = new Pipe(highWater);
  const backward = new Pipe(highWater);
  return [new PipeEnd(backward, forward, options), new PipeEnd(forward, backward, options)];
}
