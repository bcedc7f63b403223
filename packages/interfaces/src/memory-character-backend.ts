import type { CharacterBackend, CharacterFrontend } from './character.js';

/**
 * A CharacterBackend in memory, for tests, examples and embedding (it is
 * `@tsvirt/backends`' `PipeBackend` too): `send` queues host input, handed
 * over as the device makes room; guest output accumulates until taken.
 *
 * @example
 * ```ts
 * const pipe = new MemoryCharacterBackend();
 * const fifo: number[] = [];
 * pipe.connect({ receiveCapacity: () => 2 - fifo.length, receive: (data) => void fifo.push(...data) });
 * pipe.send('abc');
 * assert.deepEqual(fifo, [0x61, 0x62]);
 * assert.equal(pipe.pendingInput, 1); // kept until the device has room
 * pipe.write(new TextEncoder().encode('ok'));
 * assert.equal(pipe.takeText(), 'ok');
 * ```
 */
export class MemoryCharacterBackend implements CharacterBackend {
  private readonly input: Uint8Array[] = [];
  private output: number[] = [];
  private frontend: CharacterFrontend | undefined;

  write(data: Uint8Array): void {
    for (const byte of data) this.output.push(byte);
  }

  connect(frontend: CharacterFrontend): void {
    this.frontend = frontend;
    this.notifyReceiveReady();
  }

  notifyReceiveReady(): void {
    const frontend = this.frontend;
    if (frontend === undefined) return;
    for (;;) {
      const head = this.input[0];
      const capacity = frontend.receiveCapacity();
      if (head === undefined || capacity <= 0) return;
      if (head.length <= capacity) this.input.shift();
      else this.input[0] = head.subarray(capacity);
      frontend.receive(head.subarray(0, capacity));
    }
  }

  /** Queues host → guest bytes (a string is sent as UTF-8). */
  send(data: Uint8Array | string): void {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data.slice();
    if (bytes.length > 0) this.input.push(bytes);
    this.notifyReceiveReady();
  }

  /** Host bytes not yet taken by the device. */
  get pendingInput(): number {
    return this.input.reduce((sum, chunk) => sum + chunk.length, 0);
  }

  /** Returns and clears everything the guest wrote. */
  take(): Uint8Array {
    const bytes = Uint8Array.from(this.output);
    this.output = [];
    return bytes;
  }

  takeText(): string {
    return new TextDecoder().decode(this.take());
  }
}
