import type { CharacterBackend, CharacterFrontend } from '@tsvirt/interfaces';
import { InputQueue } from './input-queue.js';

/**
 * An in-memory character backend for tests and embedding: `send` queues host
 * input (delivered as the device makes room), guest output accumulates until
 * taken.
 *
 * @example
 * ```ts
 * const pipe = new PipeBackend();
 * const com1 = new Uart({ clock, irq, backend: pipe });
 * pipe.send('root\n');
 * // … the guest runs …
 * console.log(pipe.takeText());
 * ```
 */
export class PipeBackend implements CharacterBackend {
  private readonly input = new InputQueue();
  private output: number[] = [];
  /** Called for every chunk the guest writes. */
  onOutput: ((data: Uint8Array) => void) | undefined;

  write(data: Uint8Array): void {
    for (const byte of data) this.output.push(byte);
    this.onOutput?.(data);
  }

  connect(frontend: CharacterFrontend): void {
    this.input.connect(frontend);
  }

  notifyReceiveReady(): void {
    this.input.pump();
  }

  /** Queues host → guest bytes (a string is sent as UTF-8). */
  send(data: Uint8Array | string): void {
    this.input.push(typeof data === 'string' ? new TextEncoder().encode(data) : data);
  }

  /** Host bytes not yet taken by the device. */
  get pendingInput(): number {
    return this.input.length;
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
