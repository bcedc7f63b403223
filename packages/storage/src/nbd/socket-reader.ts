import type { Socket } from 'node:net';

/** The peer closed the connection (or it failed) while bytes were still wanted. */
export class ConnectionClosedError extends Error {}

/**
 * Reads exact byte counts from a socket, in order, as promises.
 *
 * It holds at most `highWater` bytes nobody has asked for yet (or the length
 * of the read being waited for, if larger): past that the socket is paused, so
 * a peer that sends faster than it is served fills its own buffers, not ours.
 * `hold(reason)` pauses the socket until every hold is released.
 */
export class SocketReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private waiting: { length: number; resolve: (bytes: Uint8Array) => void; reject: (error: Error) => void } | undefined;
  private ended: Error | undefined;
  private readonly holds = new Set<string>();
  private paused = false;
  private discarding = false;

  constructor(
    private readonly socket: Socket,
    private readonly highWater = 128 << 10,
  ) {
    socket.on('data', (chunk: Buffer) => {
      if (this.discarding) return;
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      this.serve();
      this.flow();
    });
    const end = (error?: Error) => {
      this.ended ??= error ?? new ConnectionClosedError('connection closed');
      if (this.waiting) {
        const waiting = this.waiting;
        this.waiting = undefined;
        waiting.reject(this.ended);
      }
    };
    socket.on('end', () => end());
    socket.on('close', () => end());
    socket.on('error', (error) => end(error));
  }

  /** Bytes received and not yet read. */
  get pending(): number {
    return this.buffered;
  }

  read(length: number): Promise<Uint8Array> {
    if (this.waiting) return Promise.reject(new Error('concurrent reads on one socket'));
    return new Promise((resolve, reject) => {
      this.waiting = { length, resolve, reject };
      this.serve();
      this.flow();
    });
  }

  /** Stops taking bytes from the socket until `release(reason)`. */
  hold(reason: string): void {
    this.holds.add(reason);
    this.flow();
  }

  release(reason: string): void {
    this.holds.delete(reason);
    this.flow();
  }

  /** From now on drops whatever arrives, unread and unbuffered, so a peer being hung up on cannot fill memory. */
  discard(): void {
    this.discarding = true;
    this.chunks = [];
    this.buffered = 0;
    this.holds.clear();
    this.flow();
  }

  private flow(): void {
    const wanted = this.waiting?.length ?? 0;
    const pause = this.holds.size > 0 || this.buffered >= Math.max(this.highWater, wanted);
    if (pause === this.paused) return;
    this.paused = pause;
    if (pause) this.socket.pause();
    else this.socket.resume();
  }

  private serve(): void {
    const waiting = this.waiting;
    if (!waiting) return;
    if (this.buffered < waiting.length) {
      if (this.ended) {
        this.waiting = undefined;
        waiting.reject(this.ended);
      }
      return;
    }
    this.waiting = undefined;
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const out = new Uint8Array(waiting.length);
    out.set(all.subarray(0, waiting.length));
    const rest = all.subarray(waiting.length);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    waiting.resolve(out);
  }
}
