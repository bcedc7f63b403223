import type { CharacterBackend, CharacterFrontend } from '@tsvirt/interfaces';
import { InputQueue } from './input-queue.js';

/** The parts of a TTY-capable input stream the backend uses (process.stdin fits). */
export interface InputStream {
  on(event: 'data', listener: (data: Buffer) => void): unknown;
  off(event: 'data', listener: (data: Buffer) => void): unknown;
  pause(): unknown;
  resume(): unknown;
  isTTY?: boolean;
  setRawMode?: (raw: boolean) => unknown;
  isRaw?: boolean;
}

export interface OutputStream {
  write(data: Uint8Array): unknown;
}

export interface StdioBackendOptions {
  input?: InputStream;
  output?: OutputStream;
  /**
   * Sees every chunk of host input first and returns what the guest should
   * get (`null` to swallow it): the CLI's escape keys (Ctrl-A x) go here.
   */
  onInput?: (data: Uint8Array) => Uint8Array | null;
}

/**
 * The terminal: guest output to stdout, keyboard input to the guest. On a
 * TTY the input is switched to raw mode (so Ctrl-C reaches the guest) and
 * restored by `close`.
 *
 * @example
 * ```ts
 * const terminal = new StdioBackend({ onInput: (data) => (data[0] === 0x01 ? (escape(), null) : data) });
 * const com1 = new Uart({ clock, irq, backend: terminal });
 * // … on exit:
 * terminal.close();
 * ```
 */
export class StdioBackend implements CharacterBackend {
  private readonly inputStream: InputStream;
  private readonly outputStream: OutputStream;
  private readonly onInput: ((data: Uint8Array) => Uint8Array | null) | undefined;
  private readonly queue: InputQueue;
  private readonly wasRaw: boolean;
  private readonly listener = (data: Buffer) => this.handle(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  private open = true;

  constructor(options: StdioBackendOptions = {}) {
    this.inputStream = options.input ?? process.stdin;
    this.outputStream = options.output ?? process.stdout;
    this.onInput = options.onInput;
    this.queue = new InputQueue((full) => {
      if (full) this.inputStream.pause();
      else this.inputStream.resume();
    });
    this.wasRaw = this.inputStream.isRaw === true;
    if (this.inputStream.isTTY === true) this.inputStream.setRawMode?.(true);
    this.inputStream.on('data', this.listener);
    this.inputStream.resume();
  }

  /** Injects input as if typed (after the `onInput` hook). */
  type(data: Uint8Array): void {
    this.queue.push(data);
  }

  private handle(data: Uint8Array): void {
    const forwarded = this.onInput === undefined ? data : this.onInput(data);
    if (forwarded !== null && forwarded.length > 0) this.queue.push(forwarded);
  }

  write(data: Uint8Array): void {
    if (this.open) this.outputStream.write(data);
  }

  connect(frontend: CharacterFrontend): void {
    this.queue.connect(frontend);
  }

  notifyReceiveReady(): void {
    this.queue.pump();
  }

  /** Stops reading and restores the terminal mode. */
  close(): void {
    if (!this.open) return;
    this.open = false;
    this.inputStream.off('data', this.listener);
    this.inputStream.pause();
    if (this.inputStream.isTTY === true) this.inputStream.setRawMode?.(this.wasRaw);
  }
}
