import { ImageCorruptError, ImageFormatError } from '../errors.js';
import type { ImageFile } from '../image-file.js';
import { type EntryContext, makeDescriptor, standardOffset } from './entries.js';
import { AUTOCLEAR_BITMAPS, EXT_BITMAPS, entryBytes, INCOMPAT_DATA_FILE, INCOMPAT_EXTENDED_L2, type Qcow2Extensions, type Qcow2Header, readU64, writeU64 } from './format.js';
import { MetadataKind, MetadataRegions, type OverlapCheck } from './overlap.js';
import { Refcounts } from './refcounts.js';
import { readSnapshots, type Qcow2Snapshot } from './snapshots.js';

export interface L1Entry {
  offset: number;
  copied: boolean;
  /**
   * What is wrong with the entry as stored, though readers can still use it
   * (reserved bits set, the COPIED flag without a table): readers ignore it,
   * as QEMU does, and check reports it.
   */
  malformed?: string;
}

/** Decodes an L1 table read from the file. */
export function parseL1(bytes: Uint8Array, clusterSize: number): L1Entry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const entries: L1Entry[] = [];
  for (let i = 0; i < bytes.length / 8; i++) {
    const high = view.getUint32(i * 8);
    const low = view.getUint32(i * 8 + 4);
    const offset = standardOffset(high, low);
    if (offset % clusterSize !== 0) throw new ImageCorruptError(`L1 entry ${i} points to unaligned offset ${offset}`);
    const entry: L1Entry = { offset, copied: (high & 0x80000000) !== 0 };
    if ((high & 0x7f000000) !== 0 || (low & 0x1ff) !== 0) entry.malformed = 'ERROR found L1 entry with reserved bits set';
    else if (offset === 0 && entry.copied) entry.malformed = `ERROR L1 entry ${i} has the COPIED flag but no L2 table`;
    entries.push(entry);
  }
  return entries;
}

export function serializeL1(entries: readonly L1Entry[]): Uint8Array {
  const bytes = new Uint8Array(entries.length * 8);
  const view = new DataView(bytes.buffer);
  entries.forEach((entry, index) => {
    const { high, low } = makeDescriptor(entry.offset, entry.copied);
    view.setUint32(index * 8, high);
    view.setUint32(index * 8 + 4, low);
  });
  return bytes;
}

/**
 * The mutable metadata of an open qcow2 image: header, active L1 table, an
 * L2 table cache, refcounts. Every change is written through at once, in an
 * order that leaves at worst leaked clusters if the writer dies.
 */
export class Qcow2Metadata {
  readonly clusterSize: number;
  readonly l2Entries: number;
  readonly extended: boolean;
  readonly context: EntryContext;
  private readonly l2Cache = new Map<number, Uint8Array>();
  private readonly l2CacheLimit: number;
  refcounts!: Refcounts;
  /** Where every metadata structure lives, for the overlap checks on every write. */
  readonly regions: MetadataRegions;

  constructor(
    readonly file: ImageFile,
    readonly header: Qcow2Header,
    public l1: L1Entry[],
    overlapCheck: OverlapCheck = 'cached',
  ) {
    this.clusterSize = 2 ** header.clusterBits;
    this.extended = (header.incompatibleFeatures & INCOMPAT_EXTENDED_L2) !== 0n;
    this.l2Entries = this.clusterSize / entryBytes(header);
    this.l2CacheLimit = Math.max(16, Math.floor((32 << 20) / this.clusterSize));
    this.context = {
      clusterBits: header.clusterBits,
      version: header.version,
      extended: this.extended,
      dataFile: (header.incompatibleFeatures & INCOMPAT_DATA_FILE) !== 0n,
    };
    this.regions = new MetadataRegions(this.clusterSize, overlapCheck);
  }

  static async load(file: ImageFile, header: Qcow2Header, extensions: Qcow2Extensions, overlapCheck: OverlapCheck = 'cached'): Promise<Qcow2Metadata> {
    const clusterSize = 2 ** header.clusterBits;
    const bytes = new Uint8Array(header.l1Size * 8);
    await file.read(header.l1TableOffset, bytes);
    const metadata = new Qcow2Metadata(file, header, parseL1(bytes, clusterSize), overlapCheck);
    metadata.refcounts = await Refcounts.load(
      file,
      header.clusterBits,
      header.refcountOrder,
      header.refcountTableOffset,
      header.refcountTableClusters,
      async (offset, clusters) => {
        header.refcountTableOffset = offset;
        header.refcountTableClusters = clusters;
        const field = new Uint8Array(12);
        const view = new DataView(field.buffer);
        writeU64(view, 0, offset);
        view.setUint32(8, clusters);
        await metadata.writeHeaderField(48, field);
      },
      metadata.regions,
    );
    const { regions } = metadata;
    regions.add(MetadataKind.MainHeader, 0, clusterSize);
    regions.add(MetadataKind.ActiveL1, header.l1TableOffset, header.l1Size * 8);
    for (const entry of metadata.l1) if (entry.offset !== 0) regions.add(MetadataKind.ActiveL2, entry.offset, clusterSize);
    // As QEMU, an image whose snapshot table cannot be read is not opened at all.
    await metadata.trackSnapshots(await readSnapshots(metadata));
    const bitmaps = extensions.unknown.find((item) => item.type === EXT_BITMAPS);
    if (bitmaps !== undefined && bitmaps.data.length >= 24 && (header.autoclearFeatures & AUTOCLEAR_BITMAPS) !== 0n) {
      const view = new DataView(bitmaps.data.buffer, bitmaps.data.byteOffset, bitmaps.data.byteLength);
      regions.add(MetadataKind.BitmapDirectory, readU64(view, 16, 'bitmap directory offset'), Math.min(readU64(view, 8, 'bitmap directory size'), 64 << 20));
    }
    return metadata;
  }

  /**
   * Tracks the snapshot table and the snapshots' L1 tables (and with
   * `overlap-check=all` their L2 tables) in place of what was tracked before.
   */
  async trackSnapshots(table: { snapshots: readonly Qcow2Snapshot[]; byteLength: number }): Promise<void> {
    const { regions, header, clusterSize } = this;
    for (const kind of [MetadataKind.SnapshotTable, MetadataKind.InactiveL1, MetadataKind.InactiveL2]) regions.clear(kind);
    if (header.snapshotCount > 0) regions.add(MetadataKind.SnapshotTable, header.snapshotsOffset, table.byteLength);
    for (const snapshot of table.snapshots) {
      regions.add(MetadataKind.InactiveL1, snapshot.l1Offset, snapshot.l1Size * 8);
      if (!regions.tracks(MetadataKind.InactiveL2) || snapshot.l1Size === 0) continue;
      const bytes = new Uint8Array(snapshot.l1Size * 8);
      await this.file.read(snapshot.l1Offset, bytes);
      for (const entry of parseL1(bytes, clusterSize)) if (entry.offset !== 0) regions.add(MetadataKind.InactiveL2, entry.offset, clusterSize);
    }
  }

  /**
   * Writes `bytes` at `offset` of the image file after the overlap check: a
   * write that updates a structure of kind `updating` may touch structures of
   * that kind only; a new structure or guest data (`updating` 0) none at all.
   */
  async writeChecked(offset: number, bytes: Uint8Array, updating: MetadataKind | 0): Promise<void> {
    this.regions.check(offset, bytes.length, updating);
    await this.file.write(offset, bytes);
  }

  /** Rewrites part of the header cluster. */
  async writeHeaderField(offset: number, bytes: Uint8Array): Promise<void> {
    await this.writeChecked(offset, bytes, MetadataKind.MainHeader);
  }

  /** Points active L1 entry `index` at another L2 table (or none) and writes it through. */
  async setL1Entry(index: number, entry: L1Entry): Promise<void> {
    const old = this.l1[index]!;
    if (entry.offset !== 0 && entry.offset !== old.offset) this.regions.check(entry.offset, this.clusterSize, MetadataKind.ActiveL2);
    this.l1[index] = entry;
    if (old.offset !== entry.offset) {
      if (old.offset !== 0) this.regions.remove(MetadataKind.ActiveL2, old.offset, this.clusterSize);
      if (entry.offset !== 0) this.regions.add(MetadataKind.ActiveL2, entry.offset, this.clusterSize);
    }
    await this.writeL1Entry(index);
  }

  /** Replaces every entry of the active L1 table in place (same size), e.g. to apply a snapshot. */
  async rewriteL1(entries: L1Entry[]): Promise<void> {
    await this.writeChecked(this.header.l1TableOffset, serializeL1(entries), MetadataKind.ActiveL1);
    this.trackActiveL2(entries);
  }

  private trackActiveL2(entries: L1Entry[]): void {
    this.l1 = entries;
    this.regions.clear(MetadataKind.ActiveL2);
    for (const entry of entries) if (entry.offset !== 0) this.regions.add(MetadataKind.ActiveL2, entry.offset, this.clusterSize);
  }

  /** Reads an L2 table (cached). The offset comes from an L1 entry, already checked for alignment. */
  async l2Table(offset: number): Promise<Uint8Array> {
    let table = this.l2Cache.get(offset);
    if (table === undefined) {
      if (offset === 0) throw new ImageFormatError('L2 table at offset 0');
      // A table past the end of the file is a dangling pointer: using it would write metadata far out into nothing.
      if (offset + this.clusterSize > (await this.file.size())) throw new ImageCorruptError(`L2 table at offset ${offset} lies past the end of the file`);
      table = new Uint8Array(this.clusterSize);
      await this.file.read(offset, table);
      if (this.l2Cache.size >= this.l2CacheLimit) {
        const oldest = this.l2Cache.keys().next().value;
        if (oldest !== undefined) this.l2Cache.delete(oldest);
      }
      this.l2Cache.set(offset, table);
    }
    return table;
  }

  /** Puts a freshly written table in the cache. */
  cacheL2(offset: number, table: Uint8Array): void {
    this.l2Cache.delete(offset);
    this.l2Cache.set(offset, table);
  }

  forgetL2(offset: number): void {
    this.l2Cache.delete(offset);
  }

  async writeL1Entry(index: number): Promise<void> {
    await this.writeChecked(this.header.l1TableOffset + index * 8, serializeL1([this.l1[index]!]), MetadataKind.ActiveL1);
  }

  /** Rewrites the 8-byte virtual size field. */
  async writeSize(size: number): Promise<void> {
    const field = new Uint8Array(8);
    writeU64(new DataView(field.buffer), 0, size);
    await this.writeHeaderField(24, field);
    this.header.size = size;
  }

  /** Moves the active L1 table to a new place with `entries`; frees the old one. */
  async replaceL1(entries: L1Entry[]): Promise<void> {
    const oldOffset = this.header.l1TableOffset;
    const oldClusters = Math.ceil((this.header.l1Size * 8) / this.clusterSize);
    const clusters = Math.max(1, Math.ceil((entries.length * 8) / this.clusterSize));
    const offset = await this.refcounts.allocate(clusters);
    const bytes = new Uint8Array(clusters * this.clusterSize);
    bytes.set(serializeL1(entries));
    await this.writeChecked(offset, bytes, 0);
    const field = new Uint8Array(12);
    const view = new DataView(field.buffer);
    view.setUint32(0, entries.length);
    writeU64(view, 4, offset);
    await this.writeHeaderField(36, field);
    this.regions.remove(MetadataKind.ActiveL1, this.header.l1TableOffset, this.header.l1Size * 8);
    this.regions.add(MetadataKind.ActiveL1, offset, entries.length * 8);
    this.header.l1Size = entries.length;
    this.header.l1TableOffset = offset;
    this.trackActiveL2(entries);
    if (oldClusters > 0 && oldOffset !== 0) {
      for (let i = 0; i < oldClusters; i++) await this.refcounts.change(oldOffset / this.clusterSize + i, -1);
    }
  }

  /** Sets or clears an incompatible feature bit in the header (dirty, corrupt). */
  async setIncompatible(bit: bigint, on: boolean): Promise<void> {
    if (this.header.version < 3) return;
    const next = on ? this.header.incompatibleFeatures | bit : this.header.incompatibleFeatures & ~bit;
    if (next === this.header.incompatibleFeatures) return;
    this.header.incompatibleFeatures = next;
    const field = new Uint8Array(8);
    new DataView(field.buffer).setBigUint64(0, next);
    await this.writeHeaderField(72, field);
  }
}
