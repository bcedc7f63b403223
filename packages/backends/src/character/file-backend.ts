import { close, createWriteStream, open, write, type WriteStream } from 'node:fs';
import type { CharacterBackend, CharacterFrontend } from '@tsvirt/interfaces';

const NOTHING = new Uint8Array(0);

/**
 * Guest output appended to a file (a serial log); no input. Writes are
 * buffered by a stream, so the guest is never blocked on the disk.
 *
 * `FileBackend.open` opens the file before the guest runs and rejects when it
 * cannot be written; `new FileBackend(path)` opens it lazily, and a file that
 * cannot be written only shows in `failure`.
 *
 * @example
 * ```ts
 * const log = await FileBackend.open('/var/log/tsvirt/guest-serial.log'); // rejects: ENOENT, EISDIR, EACCES, ENOSPC …
 * const com1 = new Uart({ clock, irq, backend: log });
 * // … on shutdown:
 * await log.close();
 * ```
 */
export class FileBackend implements CharacterBackend {
  private readonly stream: WriteStream;
  private error: Error | undefined;

  /**
   * Opens `path` for appending now, so a path that cannot be opened for
   * writing (missing directory, a directory, no permission) rejects here with
   * the system error (`code`, `syscall: 'open'`). A write of zero bytes then
   * probes the file: Linux hands it to the driver, so a device that refuses
   * every write (`/dev/full`: ENOSPC) rejects too (`syscall: 'write'`), while
   * on a regular file, a terminal or a pipe it writes nothing. The callback
   * API is used because FileHandle.write skips zero-byte writes, and a
   * FileHandle would close its descriptor when collected, under the stream.
   */
  static async open(path: string): Promise<FileBackend> {
    const fd = await new Promise<number>((resolve, reject) => open(path, 'a', (error, opened) => (error === null ? resolve(opened) : reject(error))));
    try {
      await new Promise<void>((resolve, reject) => write(fd, NOTHING, 0, 0, null, (error) => (error === null ? resolve() : reject(error))));
    } catch (error) {
      close(fd, () => {});
      throw error;
    }
    return new FileBackend(path, { fd });
  }

  /** `fd`: a descriptor already open for writing on `path` (what `open` passes); the backend closes it. */
  constructor(path: string, options: { readonly fd?: number } = {}) {
    this.stream = createWriteStream(path, { flags: 'a', fd: options.fd });
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
