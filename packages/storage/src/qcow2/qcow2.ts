import {
  BlockError,
  type BlockBackend,
  type BlockStatusCapable,
  type BlockStatusExtent,
  type DiscardCapable,
  type BlockSnapshotInfo,
  type ResizeCapable,
  type SnapshotCapable,
} from '@tsvirt/interfaces';
import { AsyncLock } from '../async-lock.js';
import { checkRange } from '../block-range.js';
import { ImageCorruptError, ImageFormatError } from '../errors.js';
import type { ImageFile } from '../image-file.js';
import { compressCluster, decompressCluster } from './compression.js';
import {
  type ClusterMapping,
  COMPRESSED_HIGH,
  decodeDescriptor,
  decodeSubcluster,
  type L2Entry,
  makeDescriptor,
  readEntry,
  storeEntry,
  ZERO_LOW,
} from './entries.js';
import {
  AUTOCLEAR_DATA_FILE_RAW,
  INCOMPAT_CORRUPT,
  INCOMPAT_DATA_FILE,
  INCOMPAT_DIRTY,
  parseExtensions,
  parseHeader,
  type Qcow2Extensions,
  type Qcow2Header,
  readBackingName,
  serializeHeader,
} from './format.js';
import { Qcow2Metadata } from './metadata.js';
import { MetadataKind, type OverlapCheck } from './overlap.js';
import { applySnapshot, createSnapshot, deleteSnapshot, listSnapshots } from './snapshots.js';

export interface Qcow2OpenOptions {
  /** The opened backing image, if the image names one and the caller resolved it. */
  backing?: BlockBackend;
  /** The external data file, required when the header says there is one. */
  dataFile?: ImageFile;
  /** Rebuild refcounts of an image left dirty (lazy refcounts); the default when writable. */
  repairDirty?: (backend: Qcow2Backend) => Promise<void>;
  /** Open an image marked corrupt for writing, to repair it (qemu-img check -r). */
  forRepair?: boolean;
  /**
   * QEMU's `overlap-check`: which metadata every write is checked against
   * before it is made (default `cached`). A write that would land on
   * metadata is refused and the image marked corrupt.
   */
  overlapCheck?: OverlapCheck;
}

/** What the first cluster of a qcow2 file says, read without opening it. */
export interface Qcow2Probe {
  header: Qcow2Header;
  extensions: Qcow2Extensions;
  backingFile: string | undefined;
  headerCluster: Uint8Array;
}

/** Reads and validates the header cluster. */
export async function probeQcow2(file: ImageFile): Promise<Qcow2Probe> {
  const fileSize = await file.size();
  const first = new Uint8Array(Math.min(4096, Math.max(fileSize, 0)));
  await file.read(0, first);
  const header = parseHeader(first, fileSize);
  const headerCluster = new Uint8Array(2 ** header.clusterBits);
  await file.read(0, headerCluster);
  const extensions = parseExtensions(headerCluster, header);
  return { header, extensions, backingFile: readBackingName(headerCluster, header), headerCluster };
}

/** One run of the map: where guest bytes come from. */
export interface Qcow2MapExtent {
  offset: number;
  length: number;
  kind: 'unallocated' | 'zero' | 'data' | 'compressed';
  /** Host offset in the image (or data) file for `data`. */
  host?: number;
}

/**
 * A qcow2 image (version 2 or 3) as a block device. Metadata changes are
 * serialised and written through, so `flush` only has to sync the file.
 */
export class Qcow2Backend implements BlockBackend, DiscardCapable, ResizeCapable, BlockStatusCapable, SnapshotCapable {
  /** @internal */ readonly lock = new AsyncLock();
  private closed = false;
  /** Set when metadata was found inconsistent during a write: no more writes, like QEMU. */
  private corrupt = false;
  private lastCompressed: { host: number; bytes: Uint8Array } | undefined;

  private constructor(
    /** @internal */ readonly metadata: Qcow2Metadata,
    readonly probe: Qcow2Probe,
    readonly backing: BlockBackend | undefined,
    private readonly dataFile: ImageFile,
  ) {}

  static async open(file: ImageFile, options: Qcow2OpenOptions = {}): Promise<Qcow2Backend> {
    const probe = await probeQcow2(file);
    const { header } = probe;
    const hasDataFile = (header.incompatibleFeatures & INCOMPAT_DATA_FILE) !== 0n;
    if (!hasDataFile && (header.autoclearFeatures & AUTOCLEAR_DATA_FILE_RAW) !== 0n) throw new ImageFormatError(`${file.name}: data-file-raw requires a data file`);
    if (hasDataFile && options.dataFile === undefined) {
      throw new ImageFormatError(`${file.name} needs its external data file${probe.extensions.dataFile ? ` (${probe.extensions.dataFile})` : ''}`);
    }
    if ((header.incompatibleFeatures & INCOMPAT_CORRUPT) !== 0n && !file.readOnly && !options.forRepair) {
      throw new ImageCorruptError(`${file.name} is marked corrupt; open it read-only or repair it with check -r all`);
    }
    const metadata = await Qcow2Metadata.load(file, header, probe.extensions, options.overlapCheck);
    const backend = new Qcow2Backend(metadata, probe, options.backing, hasDataFile ? options.dataFile! : file);
    if (!file.readOnly && (header.autoclearFeatures & ~AUTOCLEAR_DATA_FILE_RAW) !== 0n) {
      // Autoclear features this writer does not maintain (bitmaps) must be cleared, so readers stop trusting them.
      header.autoclearFeatures &= AUTOCLEAR_DATA_FILE_RAW;
      const field = new Uint8Array(8);
      new DataView(field.buffer).setBigUint64(0, header.autoclearFeatures);
      await metadata.writeHeaderField(88, field);
    }
    if ((header.incompatibleFeatures & INCOMPAT_DIRTY) !== 0n && !file.readOnly && !options.forRepair) {
      if (options.repairDirty) await options.repairDirty(backend);
      await metadata.setIncompatible(INCOMPAT_DIRTY, false);
    }
    return backend;
  }

  get size(): number {
    return this.metadata.header.size;
  }

  get readOnly(): boolean {
    return this.metadata.file.readOnly;
  }

  get header(): Readonly<Qcow2Header> {
    return this.metadata.header;
  }

  get clusterSize(): number {
    return this.metadata.clusterSize;
  }

  /** @internal The file holding guest data (the image itself or its external data file). */
  get dataTarget(): ImageFile {
    return this.dataFile;
  }

  async readAt(offset: number, into: Uint8Array): Promise<void> {
    this.check(offset, into.length, false);
    if (into.length === 0) return;
    await this.lock.run(() => this.readGuest(offset, into)).catch((error: unknown) => this.fail(error, false));
  }

  async writeAt(offset: number, from: Uint8Array): Promise<void> {
    this.check(offset, from.length, true);
    if (from.length === 0) return;
    await this.lock.run(async () => {
      const { clusterSize } = this.metadata;
      for (let done = 0; done < from.length; ) {
        const position = offset + done;
        const inCluster = position % clusterSize;
        const length = Math.min(from.length - done, clusterSize - inCluster);
        await this.writeCluster(Math.floor(position / clusterSize), inCluster, from.subarray(done, done + length));
        done += length;
      }
    }).catch((error: unknown) => this.fail(error, true));
  }

  /** Writes whole clusters compressed (convert -c); `offset` and the data must be cluster aligned, the clusters unallocated. */
  async writeCompressed(offset: number, from: Uint8Array): Promise<void> {
    this.check(offset, from.length, true);
    const { clusterSize, header } = this.metadata;
    if (offset % clusterSize !== 0 || (from.length % clusterSize !== 0 && offset + from.length !== this.size)) {
      throw new BlockError('BLOCK_RANGE', 'compressed writes must cover whole clusters');
    }
    if (this.metadata.context.dataFile) throw new BlockError('BLOCK_IO', 'compression is not possible with an external data file');
    await this.lock.run(async () => {
      for (let done = 0; done < from.length; done += clusterSize) {
        const cluster = new Uint8Array(clusterSize);
        cluster.set(from.subarray(done, Math.min(from.length, done + clusterSize)));
        const compressed = compressCluster(header.compressionType, cluster);
        const guestCluster = (offset + done) / clusterSize;
        // QEMU stores a compressed cluster only if it is at least a byte shorter than the cluster.
        if (compressed === undefined || compressed.length > clusterSize - 1) {
          await this.writeCluster(guestCluster, 0, cluster);
          continue;
        }
        await this.writeCompressedCluster(guestCluster, compressed);
      }
    }).catch((error: unknown) => this.fail(error, true));
  }

  async discard(offset: number, length: number): Promise<void> {
    this.check(offset, length, true);
    await this.lock.run(() => this.zeroRange(offset, length, 'discard')).catch((error: unknown) => this.fail(error, true));
  }

  async writeZeroes(offset: number, length: number, _options?: { mayUnmap?: boolean }): Promise<void> {
    this.check(offset, length, true);
    await this.lock.run(() => this.zeroRange(offset, length, 'zero')).catch((error: unknown) => this.fail(error, true));
  }

  /** Makes `[offset, offset + length)` unallocated (whole clusters only), so reads fall through to the backing file. */
  async unmap(offset: number, length: number): Promise<void> {
    this.check(offset, length, true);
    const { clusterSize } = this.metadata;
    const first = Math.ceil(offset / clusterSize);
    const end = offset + length === this.size ? Math.ceil(this.size / clusterSize) : Math.floor((offset + length) / clusterSize);
    if (end > first) await this.lock.run(() => this.dropClusters(first, end)).catch((error: unknown) => this.fail(error, true));
  }

  async blockStatus(offset: number, length: number): Promise<BlockStatusExtent[]> {
    this.check(offset, 0, false);
    const extents = await this.map(offset, Math.min(length, this.size - offset));
    const result: BlockStatusExtent[] = [];
    for (const extent of extents) {
      const allocated = extent.kind === 'data' || extent.kind === 'compressed';
      const zero = extent.kind === 'zero' || (extent.kind === 'unallocated' && this.backing === undefined);
      const last = result[result.length - 1];
      if (last && last.allocated === allocated && last.zero === zero) {
        result[result.length - 1] = { ...last, length: last.length + extent.length };
      } else {
        result.push({ offset: extent.offset, length: extent.length, allocated, zero });
      }
    }
    return result;
  }

  /** Where each guest byte of `[offset, offset + length)` lives in this image (not its backing chain). */
  async map(offset: number, length: number): Promise<Qcow2MapExtent[]> {
    this.check(offset, length, false);
    return this.lock.run(async () => {
      const result: Qcow2MapExtent[] = [];
      const end = offset + length;
      for (let position = offset; position < end; ) {
        const { mapping, length: run } = await this.lookup(position, end - position);
        // Like QEMU, report the host offset wherever the cluster has one (zero and unallocated subclusters included).
        const base = mapping.kind === 'data' ? mapping.host : mapping.kind === 'compressed' ? undefined : mapping.mappedAt;
        const host = base !== undefined ? base + (position % this.metadata.clusterSize) : undefined;
        const last = result[result.length - 1];
        const contiguous =
          last !== undefined &&
          last.kind === mapping.kind &&
          mapping.kind !== 'compressed' &&
          (last.host === undefined) === (host === undefined) &&
          (host === undefined || last.host! + last.length === host);
        if (contiguous) last.length += run;
        else result.push(host === undefined ? { offset: position, length: run, kind: mapping.kind } : { offset: position, length: run, kind: mapping.kind, host });
        position += run;
      }
      return result;
    });
  }

  async resize(newSize: number, options: { shrink?: boolean } = {}): Promise<void> {
    this.check(0, 0, true);
    if (!Number.isSafeInteger(newSize) || newSize < 0) throw new BlockError('BLOCK_RANGE', `invalid size ${newSize}`);
    if (newSize % 512 !== 0) throw new BlockError('BLOCK_RANGE', 'The new size must be a multiple of 512');
    await this.mutate(async () => {
      const { metadata } = this;
      // Version 3 snapshots record their own disk size (applying one restores it); version 2 ones do not.
      if (metadata.header.snapshotCount > 0 && metadata.header.version < 3) throw new BlockError('BLOCK_IO', "Can't resize a v2 image which has snapshots");
      const { clusterSize, l2Entries } = metadata;
      if (newSize < this.size) {
        if (!options.shrink) throw new BlockError('BLOCK_RANGE', 'shrinking needs the shrink option: data past the new end is lost');
        const firstWhole = Math.ceil(newSize / clusterSize) * clusterSize;
        if (firstWhole < this.size) await this.dropClusters(firstWhole / clusterSize, Math.ceil(this.size / clusterSize));
        if (newSize % clusterSize !== 0 && newSize < firstWhole) {
          // The tail of the last cluster must read as zeros if the image grows again.
          const tail = Math.min(firstWhole, this.size) - newSize;
          if (tail > 0) await this.zeroRangeInner(newSize, tail, 'zero');
        }
      }
      const needed = Math.ceil(newSize / (clusterSize * l2Entries));
      if (needed > metadata.l1.length) {
        const entries = [...metadata.l1];
        while (entries.length < needed) entries.push({ offset: 0, copied: false });
        await metadata.replaceL1(entries);
      }
      const oldSize = this.size;
      await metadata.writeSize(newSize);
      // Grown space must read as zeros, not as whatever a longer backing file holds there.
      const backingEnd = Math.min(newSize, this.backing?.size ?? 0);
      if (backingEnd > oldSize) await this.zeroRangeInner(oldSize, backingEnd - oldSize, 'zero');
    });
  }

  /** Runs a metadata change under the lock; metadata found inconsistent on the way marks the image corrupt. */
  private async mutate(change: () => Promise<void>): Promise<void> {
    await this.lock.run(change).catch((error: unknown) => this.fail(error, true));
  }

  /**
   * Points the image at another backing file (or none), rewriting the header
   * cluster. Contents are not touched: this is `rebase -u`.
   */
  async setBackingFile(backingFile: string | undefined, backingFormat: string | undefined): Promise<void> {
    this.check(0, 0, true);
    await this.mutate(async () => {
      const { header, file } = this.metadata;
      const extensions = { ...this.probe.extensions };
      delete extensions.backingFormat;
      if (backingFile !== undefined && backingFormat !== undefined) extensions.backingFormat = backingFormat;
      const bytes = serializeHeader(header, extensions, backingFile);
      const parsed = parseHeader(bytes, await file.size());
      await this.metadata.writeHeaderField(0, bytes);
      Object.assign(header, parsed);
      this.probe.extensions = extensions;
      this.probe.backingFile = backingFile;
    });
  }

  listSnapshots(): Promise<BlockSnapshotInfo[]> {
    this.check(0, 0, false);
    return listSnapshots(this);
  }

  createSnapshot(name: string): Promise<BlockSnapshotInfo> {
    this.check(0, 0, true);
    return createSnapshot(this, name).catch((error: unknown) => this.fail(error, true));
  }

  applySnapshot(nameOrId: string): Promise<void> {
    this.check(0, 0, true);
    return applySnapshot(this, nameOrId).catch((error: unknown) => this.fail(error, true));
  }

  deleteSnapshot(nameOrId: string): Promise<void> {
    this.check(0, 0, true);
    return deleteSnapshot(this, nameOrId).catch((error: unknown) => this.fail(error, true));
  }

  async flush(): Promise<void> {
    if (this.closed) throw new BlockError('BLOCK_CLOSED', 'the disk is closed');
    await this.lock.run(async () => {
      if (this.dataFile !== this.metadata.file) await this.dataFile.flush();
      await this.metadata.file.flush();
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.lock.run(async () => {
      if (!this.readOnly) {
        if (this.dataFile !== this.metadata.file) await this.dataFile.flush();
        await this.metadata.file.flush();
      }
      if (this.dataFile !== this.metadata.file) await this.dataFile.close();
      await this.metadata.file.close();
      if (this.backing) await this.backing.close();
    });
  }

  // ---- internals (callers hold the lock) ----

  /** @internal The mapping of the cluster (or subcluster run) at `position`, and for how many bytes it holds. */
  async lookup(position: number, maxLength: number): Promise<{ mapping: ClusterMapping; length: number }> {
    const { clusterSize, l2Entries, extended } = this.metadata;
    const cluster = Math.floor(position / clusterSize);
    const inCluster = position % clusterSize;
    const l1Index = Math.floor(cluster / l2Entries);
    const l1 = this.metadata.l1[l1Index];
    const clusterRest = Math.min(maxLength, clusterSize - inCluster);
    if (l1 === undefined || l1.offset === 0) {
      // A whole missing L2 table is one unallocated run.
      const tableEnd = (l1Index + 1) * l2Entries * clusterSize;
      return { mapping: { kind: 'unallocated' }, length: Math.min(maxLength, tableEnd - position) };
    }
    const table = await this.metadata.l2Table(l1.offset);
    const entry = readEntry(table, cluster % l2Entries, extended);
    const whole = decodeDescriptor(entry, this.metadata.context);
    if (!extended) return { mapping: whole, length: clusterRest };
    const subclusterSize = clusterSize / 32;
    const index = Math.floor(inCluster / subclusterSize);
    const mapping = decodeSubcluster(entry, whole, index);
    let end = (index + 1) * subclusterSize;
    for (let next = index + 1; next < 32 && end < inCluster + clusterRest; next++) {
      if (decodeSubcluster(entry, whole, next).kind !== mapping.kind) break;
      end += subclusterSize;
    }
    return { mapping, length: Math.min(clusterRest, end - inCluster) };
  }

  /** @internal Reads guest bytes through the mapping, the backing file and decompression. */
  async readGuest(offset: number, into: Uint8Array): Promise<void> {
    const { clusterSize } = this.metadata;
    for (let done = 0; done < into.length; ) {
      const position = offset + done;
      const { mapping, length } = await this.lookup(position, into.length - done);
      const part = into.subarray(done, done + length);
      switch (mapping.kind) {
        case 'unallocated':
          await this.readBacking(position, part);
          break;
        case 'zero':
          part.fill(0);
          break;
        case 'data':
          await this.dataFile.read(mapping.host + (position % clusterSize), part);
          break;
        case 'compressed': {
          const bytes = await this.decompress(mapping);
          part.set(bytes.subarray(position % clusterSize, (position % clusterSize) + length));
          break;
        }
      }
      done += length;
    }
  }

  private async readBacking(position: number, into: Uint8Array): Promise<void> {
    const backing = this.backing;
    if (backing === undefined || position >= backing.size) {
      into.fill(0);
      return;
    }
    const inside = Math.min(into.length, backing.size - position);
    await backing.readAt(position, into.subarray(0, inside));
    into.fill(0, inside);
  }

  private async decompress(mapping: { host: number; length: number }): Promise<Uint8Array> {
    if (this.lastCompressed?.host === mapping.host) return this.lastCompressed.bytes;
    const { clusterSize } = this.metadata;
    // A descriptor may claim more sectors than a cluster could need; never read more than that.
    const length = Math.min(mapping.length, clusterSize + 1024);
    const raw = new Uint8Array(length);
    await this.metadata.file.read(mapping.host, raw);
    const bytes = decompressCluster(this.metadata.header.compressionType, raw, clusterSize);
    this.lastCompressed = { host: mapping.host, bytes };
    return bytes;
  }

  /** @internal A writable (refcount 1) L2 table for `l1Index`, allocating or copying one if needed. */
  async writableL2(l1Index: number): Promise<{ offset: number; table: Uint8Array }> {
    const { metadata } = this;
    const l1 = metadata.l1[l1Index];
    if (l1 === undefined) throw new ImageCorruptError(`L1 index ${l1Index} beyond the table`);
    if (l1.offset !== 0 && l1.copied) return { offset: l1.offset, table: await metadata.l2Table(l1.offset) };
    if (l1.offset !== 0 && (await metadata.refcounts.get(l1.offset / metadata.clusterSize)) === 1) {
      await metadata.setL1Entry(l1Index, { offset: l1.offset, copied: true });
      return { offset: l1.offset, table: await metadata.l2Table(l1.offset) };
    }
    const table = new Uint8Array(metadata.clusterSize);
    if (l1.offset !== 0) table.set(await metadata.l2Table(l1.offset));
    const offset = await metadata.refcounts.allocate(1);
    await metadata.writeChecked(offset, table, 0);
    metadata.cacheL2(offset, table);
    await metadata.setL1Entry(l1Index, { offset, copied: true });
    if (l1.offset !== 0) await metadata.refcounts.change(l1.offset / metadata.clusterSize, -1);
    return { offset, table };
  }

  /** @internal Stores one L2 entry and writes it through. */
  async setEntry(l2: { offset: number; table: Uint8Array }, index: number, entry: L2Entry): Promise<void> {
    const [from, to] = storeEntry(l2.table, index, this.metadata.extended, entry);
    // A table shared with a snapshot is still an L2 table: its flags may change (overlap-check=all tracks both).
    await this.metadata.writeChecked(l2.offset + from, l2.table.subarray(from, to), MetadataKind.ActiveL2 | MetadataKind.InactiveL2);
  }

  /** @internal Drops the references a mapping held (after nothing points at it any more). */
  async release(mapping: ClusterMapping): Promise<void> {
    const { refcounts, clusterSize, context } = this.metadata;
    if (context.dataFile) return;
    if (mapping.kind === 'compressed') await refcounts.changeRange(mapping.host - (mapping.host % 512), mapping.length + (mapping.host % 512), -1);
    else if ((mapping.kind === 'data' || mapping.kind === 'zero') && mapping.host !== 0) await refcounts.change(mapping.host / clusterSize, -1);
    if (mapping.kind === 'compressed' && this.lastCompressed?.host === mapping.host) this.lastCompressed = undefined;
  }

  private async writeCluster(cluster: number, inCluster: number, data: Uint8Array): Promise<void> {
    const { metadata } = this;
    const { clusterSize, l2Entries, extended, context } = metadata;
    const l2 = await this.writableL2(Math.floor(cluster / l2Entries));
    const index = cluster % l2Entries;
    const entry = readEntry(l2.table, index, extended);
    const whole = decodeDescriptor(entry, context);
    const guestBase = cluster * clusterSize;
    let inPlace = whole.kind === 'data' && (whole.copied || context.dataFile);
    if (whole.kind === 'data' && !inPlace && (await metadata.refcounts.get(whole.host / clusterSize)) === 1) inPlace = true;
    // An entry pointing past the end of the image file is dangling: writing there would grow the file into nothing.
    if (inPlace && whole.kind === 'data' && !context.dataFile && whole.host + clusterSize > (await metadata.file.size())) {
      throw new ImageCorruptError(`guest cluster ${cluster} points at offset ${whole.host}, past the end of the file`);
    }

    if (!extended) {
      if (inPlace && whole.kind === 'data') {
        await this.writeData(whole.host + inCluster, data);
        if (!whole.copied) await this.setEntry(l2, index, { ...entry, ...makeDescriptor(whole.host, true) });
        return;
      }
      const buffer = new Uint8Array(clusterSize);
      if (data.length < clusterSize) await this.readGuest(guestBase, buffer.subarray(0, Math.min(clusterSize, this.size - guestBase)));
      buffer.set(data, inCluster);
      const host = context.dataFile ? guestBase : await metadata.refcounts.allocate(1);
      await this.writeData(host, buffer);
      await this.setEntry(l2, index, { ...makeDescriptor(host, true), allocated: 0, zeroes: 0 });
      await this.release(whole);
      return;
    }

    const subclusterSize = clusterSize / 32;
    const first = Math.floor(inCluster / subclusterSize);
    const last = Math.floor((inCluster + data.length - 1) / subclusterSize);
    let touched = 0;
    for (let i = first; i <= last; i++) touched |= 1 << i;
    touched >>>= 0;
    const spanStart = first * subclusterSize;
    const span = new Uint8Array((last + 1 - first) * subclusterSize);
    const partial = inCluster !== spanStart || data.length !== span.length;
    const guestSpan = Math.min(span.length, this.size - guestBase - spanStart);
    if (partial) await this.readGuest(guestBase + spanStart, span.subarray(0, guestSpan));
    span.set(data, inCluster - spanStart);
    if (inPlace && whole.kind === 'data') {
      await this.writeData(whole.host + spanStart, span);
      const next = { ...entry, ...makeDescriptor(whole.host, true), allocated: (entry.allocated | touched) >>> 0, zeroes: (entry.zeroes & ~touched) >>> 0 };
      if (next.allocated !== entry.allocated || next.zeroes !== entry.zeroes || next.high !== entry.high) await this.setEntry(l2, index, next);
      return;
    }
    const host = context.dataFile ? guestBase : await metadata.refcounts.allocate(1);
    let allocated: number;
    let zeroes: number;
    if (whole.kind === 'compressed' || whole.kind === 'data') {
      // Copy-on-write of a shared or compressed cluster: keep every subcluster it had.
      const buffer = new Uint8Array(clusterSize);
      await this.readGuest(guestBase, buffer.subarray(0, Math.min(clusterSize, this.size - guestBase)));
      buffer.set(span.subarray(0, guestSpan), spanStart);
      await this.writeData(host, buffer);
      allocated = whole.kind === 'compressed' ? 0xffffffff : (entry.allocated | touched) >>> 0;
      zeroes = whole.kind === 'compressed' ? 0 : (entry.zeroes & ~touched) >>> 0;
    } else {
      if (!context.dataFile) await this.writeData(host, new Uint8Array(clusterSize));
      await this.writeData(host + spanStart, span);
      allocated = touched;
      zeroes = (entry.zeroes & ~touched) >>> 0;
    }
    await this.setEntry(l2, index, { ...makeDescriptor(host, true), allocated, zeroes });
    await this.release(whole);
  }

  /** Guest data into the image's own file passes the overlap check first; an external data file holds no metadata. */
  private async writeData(host: number, bytes: Uint8Array): Promise<void> {
    if (this.dataFile === this.metadata.file) await this.metadata.writeChecked(host, bytes, 0);
    else await this.dataFile.write(host, bytes);
  }

  private async writeCompressedCluster(cluster: number, compressed: Uint8Array): Promise<void> {
    const { metadata } = this;
    const { clusterSize, l2Entries, extended, context, header } = metadata;
    const l2 = await this.writableL2(Math.floor(cluster / l2Entries));
    const index = cluster % l2Entries;
    const old = decodeDescriptor(readEntry(l2.table, index, extended), context);
    const sectors = Math.ceil(compressed.length / 512);
    const host = await metadata.refcounts.allocate(Math.ceil((sectors * 512) / clusterSize));
    const padded = new Uint8Array(sectors * 512);
    padded.set(compressed);
    await metadata.writeChecked(host, padded, 0);
    const offsetBits = 62 - (header.clusterBits - 8);
    const value = (BigInt(sectors - 1) << BigInt(offsetBits)) | BigInt(host);
    await this.setEntry(l2, index, {
      high: Number(value >> 32n) | COMPRESSED_HIGH,
      low: Number(value & 0xffffffffn),
      allocated: 0,
      zeroes: 0,
    });
    await this.release(old);
  }

  private async zeroRange(offset: number, length: number, mode: 'zero' | 'discard'): Promise<void> {
    await this.zeroRangeInner(offset, length, mode);
  }

  private async zeroRangeInner(offset: number, length: number, mode: 'zero' | 'discard'): Promise<void> {
    const { clusterSize } = this.metadata;
    const end = offset + length;
    for (let position = offset; position < end; ) {
      const inCluster = position % clusterSize;
      const clusterEnd = position - inCluster + clusterSize;
      const pieceEnd = Math.min(end, clusterEnd);
      const cluster = Math.floor(position / clusterSize);
      const wholeCluster = inCluster === 0 && (pieceEnd === clusterEnd || pieceEnd === this.size);
      if (wholeCluster && (await this.zeroCluster(cluster))) {
        // done by metadata
      } else if (mode === 'zero') {
        await this.writeCluster(cluster, inCluster, new Uint8Array(pieceEnd - position));
      }
      position = pieceEnd;
    }
  }

  /** Makes a whole cluster read as zeros through metadata alone; false if the format cannot say so here. */
  private async zeroCluster(cluster: number): Promise<boolean> {
    const { metadata } = this;
    const { l2Entries, extended, context, header } = metadata;
    const l1 = metadata.l1[Math.floor(cluster / l2Entries)];
    if ((l1 === undefined || l1.offset === 0) && this.backing === undefined) return true;
    const canSayZero = header.version >= 3 && !context.dataFile;
    if (!canSayZero && this.backing !== undefined) return false;
    if (context.dataFile && header.version >= 3 && (header.autoclearFeatures & AUTOCLEAR_DATA_FILE_RAW) !== 0n) return false;
    const l2 = await this.writableL2(Math.floor(cluster / l2Entries));
    const index = cluster % l2Entries;
    const entry = readEntry(l2.table, index, extended);
    const old = decodeDescriptor(entry, context);
    let next: L2Entry;
    if (!canSayZero) next = { high: 0, low: 0, allocated: 0, zeroes: 0 };
    else if (extended) next = { high: 0, low: 0, allocated: 0, zeroes: 0xffffffff };
    else next = { high: 0, low: ZERO_LOW, allocated: 0, zeroes: 0 };
    await this.setEntry(l2, index, next);
    await this.release(old);
    return true;
  }

  /** Unmaps guest clusters `[first, end)` entirely (shrinking). */
  private async dropClusters(first: number, end: number): Promise<void> {
    const { metadata } = this;
    const { l2Entries, extended, context } = metadata;
    for (let cluster = first; cluster < end; cluster++) {
      const l1Index = Math.floor(cluster / l2Entries);
      const l1 = metadata.l1[l1Index];
      if (l1 === undefined || l1.offset === 0) {
        cluster = (l1Index + 1) * l2Entries - 1;
        continue;
      }
      const l2 = await this.writableL2(l1Index);
      const entry = readEntry(l2.table, cluster % l2Entries, extended);
      if (entry.high === 0 && entry.low === 0 && entry.allocated === 0 && entry.zeroes === 0) continue;
      await this.setEntry(l2, cluster % l2Entries, { high: 0, low: 0, allocated: 0, zeroes: 0 });
      await this.release(decodeDescriptor(entry, context));
    }
  }

  /**
   * Turns an internal failure into the BlockError a device expects. Metadata
   * found inconsistent during a write marks the image corrupt (the header bit)
   * and stops further writes, as QEMU does.
   */
  private async fail(error: unknown, write: boolean): Promise<never> {
    if (error instanceof BlockError) throw error;
    if (write && error instanceof ImageCorruptError && !this.corrupt) {
      this.corrupt = true;
      await this.lock.run(() => this.metadata.setIncompatible(INCOMPAT_CORRUPT, true)).catch(() => undefined);
    }
    throw new BlockError('BLOCK_IO', `${this.metadata.file.name}: ${(error as Error).message ?? String(error)}`, { cause: error });
  }

  private check(offset: number, length: number, write: boolean): void {
    if (this.closed) throw new BlockError('BLOCK_CLOSED', 'the disk is closed');
    if (write && this.corrupt) throw new BlockError('BLOCK_IO', `${this.metadata.file.name} was found corrupt; it is read-only until repaired`);
    checkRange(offset, length, this.size);
    if (write && this.readOnly) throw new BlockError('BLOCK_READ_ONLY', 'the disk is read-only');
  }
}
