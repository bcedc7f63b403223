/**
 * A virtual disk's contents: a byte-addressed, fixed-size store with
 * asynchronous I/O. Implementations: raw files, qcow2, NBD (`@tsvirt/storage`).
 *
 * Edge cases: a zero-length request resolves at once (at any offset up to
 * `size`); a request that runs past `size` rejects with a `BLOCK_RANGE`
 * {@link BlockError} and transfers nothing; writes to a read-only backend
 * reject with `BLOCK_READ_ONLY`. A write is durable only after a later
 * `flush` resolves.
 *
 * @example
 * ```ts
 * // given: disk (a 1 MiB writable BlockBackend)
 * await disk.writeAt(512, new Uint8Array([1, 2, 3]));
 * const back = new Uint8Array(3);
 * await disk.readAt(512, back);
 * assert.deepEqual([...back], [1, 2, 3]);
 * await disk.flush();
 * await assert.rejects(disk.readAt(disk.size - 1, new Uint8Array(2)), BlockError);
 * ```
 */
export interface BlockBackend {
  /** Size in bytes. */
  readonly size: number;
  readonly readOnly: boolean;
  readAt(offset: number, into: Uint8Array): Promise<void>;
  writeAt(offset: number, from: Uint8Array): Promise<void>;
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** Unmapping and efficient zeroing (TRIM/UNMAP, WRITE ZEROES). */
export interface DiscardCapable {
  /** The range may read back as anything afterwards; most backends return zeros. */
  discard(offset: number, length: number): Promise<void>;
  /** The range reads as zeros afterwards; with `mayUnmap` the backend may deallocate it. */
  writeZeroes(offset: number, length: number, options?: { mayUnmap?: boolean }): Promise<void>;
}

export interface ResizeCapable {
  /** Grows or (with `shrink: true`) shrinks the disk. New space reads as zeros. */
  resize(newSize: number, options?: { shrink?: boolean }): Promise<void>;
}

/** One run of bytes with the same allocation status. */
export interface BlockStatusExtent {
  readonly offset: number;
  readonly length: number;
  /** Data is stored in this image (not a hole, not inherited from a backing file). */
  readonly allocated: boolean;
  /** The range is known to read as zeros. */
  readonly zero: boolean;
}

export interface BlockStatusCapable {
  /** Extents covering `[offset, offset + length)` in order, clipped to `size`. */
  blockStatus(offset: number, length: number): Promise<BlockStatusExtent[]>;
}

export interface BlockSnapshotInfo {
  readonly id: string;
  readonly name: string;
  /** Guest-visible disk size when the snapshot was taken. */
  readonly size: number;
  /** Wall-clock time of creation, ms since the Unix epoch. */
  readonly createdAt: number;
  /** Virtual machine state size stored with the snapshot (0 for disk-only). */
  readonly vmStateSize: number;
}

/** Internal snapshots (qcow2). */
export interface SnapshotCapable {
  listSnapshots(): Promise<BlockSnapshotInfo[]>;
  createSnapshot(name: string): Promise<BlockSnapshotInfo>;
  applySnapshot(nameOrId: string): Promise<void>;
  deleteSnapshot(nameOrId: string): Promise<void>;
}

/** Persistent or in-memory dirty bitmaps for incremental backup. */
export interface DirtyBitmapCapable {
  addDirtyBitmap(name: string, options?: { granularity?: number; persistent?: boolean }): Promise<void>;
  removeDirtyBitmap(name: string): Promise<void>;
  /** Extents written since the bitmap was created or cleared. */
  dirtyExtents(name: string): Promise<Array<{ offset: number; length: number }>>;
  clearDirtyBitmap(name: string): Promise<void>;
}

export function canDiscard(backend: BlockBackend): backend is BlockBackend & DiscardCapable {
  return typeof (backend as Partial<DiscardCapable>).discard === 'function' && typeof (backend as Partial<DiscardCapable>).writeZeroes === 'function';
}

export function canResize(backend: BlockBackend): backend is BlockBackend & ResizeCapable {
  return typeof (backend as Partial<ResizeCapable>).resize === 'function';
}

export function hasBlockStatus(backend: BlockBackend): backend is BlockBackend & BlockStatusCapable {
  return typeof (backend as Partial<BlockStatusCapable>).blockStatus === 'function';
}

export function hasSnapshots(backend: BlockBackend): backend is BlockBackend & SnapshotCapable {
  const candidate = backend as Partial<SnapshotCapable>;
  return typeof candidate.listSnapshots === 'function' && typeof candidate.createSnapshot === 'function';
}

export function hasDirtyBitmaps(backend: BlockBackend): backend is BlockBackend & DirtyBitmapCapable {
  return typeof (backend as Partial<DirtyBitmapCapable>).addDirtyBitmap === 'function';
}
