import type { Socket } from 'node:net';

/** Reads exact byte counts from a socket, in order, as promises. */
export class SocketReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private waiting: { length: number; resolve: (bytes: Uint8Array) => void; reject: (error: Error) => void } | undefined;
  private ended: Error | undefined;

  constructor(socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      this.serve();
    });
    const end = (error?: Error) => {
      this.ended ??= error ?? new Error('connection closed');
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

  read(length: number): Promise<Uint8Array> {
    if (this.waiting) return Promise.reject(new Error('concurrent reads on one socket'));
    return new Promise((resolve, reject) => {
      this.waiting = { length, resolve, reject };
      this.serve();
    });
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
