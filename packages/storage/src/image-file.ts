import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { BlockError } from '@tsvirt/interfaces';
import { applyImageLocks, type LockRequest } from './file-locks.js';
import { ERRNO, FALLOC, loadNative } from './native.js';

/** A run of a file that is all data or all hole, from `offset` for `length` bytes. */
export interface FileExtent {
  data: boolean;
  length: number;
}

/**
 * The host file under an image: byte-addressed, growable. Reads past the end
 * see zeros, as a sparse file's tail would.
 */
export interface ImageFile {
  readonly readOnly: boolean;
  /** Where the file lives, for messages and for resolving relative backing file names. */
  readonly name: string;
  size(): Promise<number>;
  read(offset: number, into: Uint8Array): Promise<void>;
  write(offset: number, from: Uint8Array): Promise<void>;
  truncate(size: number): Promise<void>;
  flush(): Promise<void>;
  close(): Promise<void>;
  /**
   * Whether `offset` (inside the file) is in data or in a hole, and how far
   * that goes; undefined where the host cannot tell (then it is all data).
   */
  extentAt?(offset: number): FileExtent | undefined;
  /** Deallocates a range inside the file, which then reads as zeros; false where the host cannot. */
  punchHole?(offset: number, length: number): Promise<boolean>;
  /** Allocates blocks for a range (growing the file if it ends past it); false where the host cannot. */
  allocate?(offset: number, length: number): Promise<boolean>;
}

/** An ImageFile over a host file. */
export class NodeImageFile implements ImageFile {
  private closed = false;

  private constructor(
    private readonly handle: FileHandle,
    readonly name: string,
    readonly readOnly: boolean,
  ) {}

  /**
   * Opens an existing file; `create` makes it (empty) if missing and truncates
   * an existing one. With `lock`, QEMU's image locks are taken first (see
   * file-locks.ts): a file another process uses in a conflicting way is
   * refused with ImageLockedError, and `create` then leaves it untouched.
   */
  static async open(path: string, options: { readOnly?: boolean; create?: boolean; lock?: LockRequest } = {}): Promise<NodeImageFile> {
    const readOnly = (options.readOnly ?? false) && !options.create;
    const flags = options.create ? constants.O_RDWR | constants.O_CREAT : readOnly ? 'r' : 'r+';
    const handle = await open(path, flags);
    try {
      const native = options.lock ? loadNative().native : undefined;
      if (native && options.lock) applyImageLocks(native, handle.fd, path, options.lock);
      // Truncated only once the locks say nobody else uses it.
      if (options.create) await handle.truncate(0);
    } catch (error) {
      await handle.close();
      throw error;
    }
    return new NodeImageFile(handle, path, readOnly);
  }

  async size(): Promise<number> {
    this.check();
    return (await this.handle.stat()).size;
  }

  async read(offset: number, into: Uint8Array): Promise<void> {
    this.check();
    let done = 0;
    while (done < into.length) {
      const { bytesRead } = await this.handle.read(into, done, into.length - done, offset + done);
      if (bytesRead === 0) {
        into.fill(0, done);
        return;
      }
      done += bytesRead;
    }
  }

  async write(offset: number, from: Uint8Array): Promise<void> {
    this.check();
    if (this.readOnly) throw new BlockError('BLOCK_READ_ONLY', `${this.name} is open read-only`);
    let done = 0;
    while (done < from.length) {
      const { bytesWritten } = await this.handle.write(from, done, from.length - done, offset + done);
      done += bytesWritten;
    }
  }

  async truncate(size: number): Promise<void> {
    this.check();
    if (this.readOnly) throw new BlockError('BLOCK_READ_ONLY', `${this.name} is open read-only`);
    await this.handle.truncate(size);
  }

  async flush(): Promise<void> {
    this.check();
    if (!this.readOnly) await this.handle.datasync();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }

  extentAt(offset: number): FileExtent | undefined {
    this.check();
    const native = loadNative().native;
    if (native === undefined) return undefined;
    const data = native.seek(this.handle.fd, offset, 3);
    // No data at or after `offset`: a hole to the end of the file.
    if (data === -ERRNO.ENXIO) return { data: false, length: Number.POSITIVE_INFINITY };
    if (data < 0) return undefined;
    if (data > offset) return { data: false, length: data - offset };
    const hole = native.seek(this.handle.fd, offset, 4);
    return hole > offset ? { data: true, length: hole - offset } : undefined;
  }

  async punchHole(offset: number, length: number): Promise<boolean> {
    return this.fallocate(FALLOC.PUNCH_HOLE | FALLOC.KEEP_SIZE, offset, length);
  }

  async allocate(offset: number, length: number): Promise<boolean> {
    return this.fallocate(0, offset, length);
  }

  private fallocate(mode: number, offset: number, length: number): boolean {
    this.check();
    if (this.readOnly) throw new BlockError('BLOCK_READ_ONLY', `${this.name} is open read-only`);
    const native = loadNative().native;
    if (native === undefined || length <= 0) return false;
    const result = native.fallocate(this.handle.fd, offset, length, mode);
    if (result === 0) return true;
    // A file system that cannot (or a kernel without the mode) is not an error: the caller writes instead.
    if (result === -ERRNO.EOPNOTSUPP || result === -ERRNO.ENOSYS || result === -ERRNO.EINVAL) return false;
    throw new BlockError('BLOCK_IO', `fallocate on ${this.name} failed (errno ${-result})`);
  }

  private check(): void {
    if (this.closed) throw new BlockError('BLOCK_CLOSED', `${this.name} is closed`);
  }
}

/** An ImageFile in memory, growing on demand (tests, scratch images, conversions). */
export class MemoryImageFile implements ImageFile {
  private bytes: Uint8Array;
  private length: number;
  private closed = false;

  constructor(
    initial: Uint8Array = new Uint8Array(0),
    readonly name = 'memory',
    readonly readOnly = false,
  ) {
    this.bytes = initial;
    this.length = initial.length;
  }

  /** A copy of the whole file. */
  contents(): Uint8Array {
    return this.bytes.slice(0, this.length);
  }

  async size(): Promise<number> {
    this.check();
    return this.length;
  }

  async read(offset: number, into: Uint8Array): Promise<void> {
    this.check();
    into.fill(0);
    if (offset < this.length) into.set(this.bytes.subarray(offset, Math.min(this.length, offset + into.length)));
  }

  async write(offset: number, from: Uint8Array): Promise<void> {
    this.check();
    if (this.readOnly) throw new BlockError('BLOCK_READ_ONLY', `${this.name} is read-only`);
    this.reserve(offset + from.length);
    this.bytes.set(from, offset);
    this.length = Math.max(this.length, offset + from.length);
  }

  async truncate(size: number): Promise<void> {
    this.check();
    if (this.readOnly) throw new BlockError('BLOCK_READ_ONLY', `${this.name} is read-only`);
    this.reserve(size);
    if (size < this.length) this.bytes.fill(0, size, this.length);
    this.length = size;
  }

  async flush(): Promise<void> {
    this.check();
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private reserve(size: number): void {
    if (size <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(size, this.bytes.length * 2, 4096));
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
  }

  private check(): void {
    if (this.closed) throw new BlockError('BLOCK_CLOSED', `${this.name} is closed`);
  }
}
