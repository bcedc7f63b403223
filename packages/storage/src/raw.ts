import {
  BlockError,
  type BlockBackend,
  type BlockStatusCapable,
  type BlockStatusExtent,
  type DiscardCapable,
  type ResizeCapable,
} from '@tsvirt/interfaces';
import { CHUNK, checkRange } from './block-range.js';
import type { ImageFile } from './image-file.js';

/**
 * A raw image: the disk's bytes are the file's bytes. Where the host file can
 * (a Linux file system, through the native addon) holes are reported by block
 * status as unallocated zeros (SEEK_DATA/SEEK_HOLE), and discard punches them
 * (fallocate PUNCH_HOLE), as QEMU's file driver does; elsewhere discard
 * writes zeros and everything is data.
 */
export class RawBackend implements BlockBackend, DiscardCapable, ResizeCapable, BlockStatusCapable {
  private closed = false;

  private constructor(
    private readonly file: ImageFile,
    private currentSize: number,
    /** Where the file ends: a file of 1000 bytes is a disk of 1024, whose last 24 read as zeros. */
    private fileEnd: number,
  ) {}

  /** The disk is the file rounded up to whole 512-byte sectors, as QEMU sizes it. */
  static async open(file: ImageFile): Promise<RawBackend> {
    const fileSize = await file.size();
    return new RawBackend(file, Math.ceil(fileSize / 512) * 512, fileSize);
  }

  get size(): number {
    return this.currentSize;
  }

  get readOnly(): boolean {
    return this.file.readOnly;
  }

  async readAt(offset: number, into: Uint8Array): Promise<void> {
    this.check(offset, into.length, false);
    if (into.length > 0) await this.file.read(offset, into);
  }

  async writeAt(offset: number, from: Uint8Array): Promise<void> {
    this.check(offset, from.length, true);
    if (from.length === 0) return;
    await this.file.write(offset, from);
    this.fileEnd = Math.max(this.fileEnd, offset + from.length);
  }

  async discard(offset: number, length: number): Promise<void> {
    await this.writeZeroes(offset, length, { mayUnmap: true });
  }

  async writeZeroes(offset: number, length: number, options: { mayUnmap?: boolean } = {}): Promise<void> {
    this.check(offset, length, true);
    // Without mayUnmap the range stays allocated, as QEMU's write-zeroes keeps it.
    if (options.mayUnmap && length > 0 && (await this.file.punchHole?.(offset, length))) return;
    const zeros = new Uint8Array(Math.min(CHUNK, length));
    for (let done = 0; done < length; done += zeros.length) {
      await this.file.write(offset + done, zeros.subarray(0, Math.min(zeros.length, length - done)));
    }
    if (length > 0) this.fileEnd = Math.max(this.fileEnd, offset + length);
  }

  async resize(newSize: number, options: { shrink?: boolean } = {}): Promise<void> {
    this.check(0, 0, true);
    if (!Number.isSafeInteger(newSize) || newSize < 0) throw new BlockError('BLOCK_RANGE', `invalid size ${newSize}`);
    if (newSize < this.currentSize && !options.shrink) {
      throw new BlockError('BLOCK_RANGE', 'shrinking needs the shrink option: data past the new end is lost');
    }
    await this.file.truncate(newSize);
    this.currentSize = newSize;
    this.fileEnd = newSize;
  }

  async blockStatus(offset: number, length: number): Promise<BlockStatusExtent[]> {
    this.check(offset, 0, false);
    const end = Math.min(this.currentSize, offset + Math.max(0, length));
    const extents: BlockStatusExtent[] = [];
    for (let at = offset; at < end; ) {
      // Each answer covers at least one byte, so this ends. Past the file's end, the sector's tail reads as zeros.
      const inFile = at < this.fileEnd;
      const extent = inFile ? (this.file.extentAt?.(at) ?? { data: true, length: this.fileEnd - at }) : { data: false, length: end - at };
      const stop = Math.min(end, at + extent.length, inFile ? this.fileEnd : end);
      const last = extents[extents.length - 1];
      if (last !== undefined && last.allocated === extent.data) extents[extents.length - 1] = { ...last, length: stop - last.offset };
      else extents.push({ offset: at, length: stop - at, allocated: extent.data, zero: !extent.data });
      at = stop;
    }
    return extents;
  }

  async flush(): Promise<void> {
    if (this.closed) throw new BlockError('BLOCK_CLOSED', 'the disk is closed');
    await this.file.flush();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.file.close();
  }

  private check(offset: number, length: number, write: boolean): void {
    if (this.closed) throw new BlockError('BLOCK_CLOSED', 'the disk is closed');
    checkRange(offset, length, this.currentSize);
    if (write && this.readOnly) throw new BlockError('BLOCK_READ_ONLY', 'the disk is read-only');
  }
}
