import { createWriteStream, type WriteStream } from 'node:fs';
import type { CharacterBackend, CharacterFrontend } from '@tsvirt/interfaces';

/**
 * Guest output appended to a file (a serial log); no input. Writes are
 * buffered by a stream, so the guest is never blocked on the disk.
 *
 * @example
 * ```ts
 * const log = new FileBackend('/var/log/tsvirt/guest-serial.log');
 * const com1 = new Uart({ clock, irq, backend: log });
 * // … on shutdown:
 * await log.close();
 * ```
 */
export class FileBackend implements CharacterBackend {
  private readonly stream: WriteStream;
  private error: Error | undefined;

  constructor(path: string) {
    this.stream = createWriteStream(path, { flags: 'a' });
    // A failing disk must not crash the VM: remember the error, drop output.
    this.stream.on('error', (error) => {
      this.error = error;
    });
  }

  /** The write error that stopped logging, if any. */
  get failure(): Error | undefined {
    return this.error;
  }

  write(data: Uint8Array): void {
    if (this.error === undefined && !this.stream.destroyed) this.stream.write(Buffer.from(data));
  }

  connect(_frontend: CharacterFrontend): void {}

  notifyReceiveReady(): void {}

  /** Flushes and closes the file. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.stream.destroyed || this.stream.closed) {
        resolve();
        return;
      }
      this.stream.once('close', () => resolve());
      this.stream.end();
    });
  }
}
