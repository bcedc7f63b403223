import type { MigrationChannel } from '../transport/channel.js';

/** A one-way channel that keeps every byte written (to capture a stream for replay or corruption tests). */
export class RecordingChannel implements MigrationChannel {
  readonly duplex = false;
  private readonly chunks: Uint8Array[] = [];
  ended = false;

  async write(bytes: Uint8Array): Promise<void> {
    this.chunks.push(bytes.slice());
  }

  async read(): Promise<Uint8Array | null> {
    return null;
  }

  async end(): Promise<void> {
    this.ended = true;
  }

  destroy(): void {
    this.ended = true;
  }

  /** Everything written so far, as one array. */
  bytes(): Uint8Array {
    const total = this.chunks.reduce((sum, chunk) => sum + chunk.length, 0);
    const out = new Uint8Array(total);
    let at = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, at);
      at += chunk.length;
    }
    return out;
  }
}

/** A one-way channel that yields `bytes` in chunks of `chunkSize`, then ends (a stream replayed from a recording). */
export function replayChannel(bytes: Uint8Array, chunkSize = 65536): MigrationChannel {
  let at = 0;
  return {
    duplex: false,
    write: async () => {
      throw new Error('a replayed stream is read-only');
    },
    read: async () => {
      if (at >= bytes.length) return null;
      const chunk = bytes.subarray(at, Math.min(bytes.length, at + Math.max(1, chunkSize)));
      at += chunk.length;
      return chunk;
    },
    end: async () => {},
    destroy: () => {
      at = bytes.length;
    },
  };
}
