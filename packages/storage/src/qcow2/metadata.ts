import { ImageCorruptError, ImageFormatError } from '../errors.js';
import type { ImageFile } from '../image-file.js';
import { type EntryContext, makeDescriptor, standardOffset } from './entries.js';
import { entryBytes, INCOMPAT_DATA_FILE, INCOMPAT_EXTENDED_L2, type Qcow2Header, writeU64 } from './format.js';
import { Refcounts } from './refcounts.js';

export interface L1Entry {
  offset: number;
  copied: boolean;
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
    entries.push({ offset, copied: (high & 0x80000000) !== 0 });
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

  constructor(
    readonly file: ImageFile,
    readonly header: Qcow2Header,
    public l1: L1Entry[],
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
  }

  static async load(file: ImageFile, header: Qcow2Header): Promise<Qcow2Metadata> {
    const clusterSize = 2 ** header.clusterBits;
    const bytes = new Uint8Array(header.l1Size * 8);
    await file.read(header.l1TableOffset, bytes);
    const metadata = new Qcow2Metadata(file, header, parseL1(bytes, clusterSize));
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
        await file.write(48, field);
      },
    );
    return metadata;
  }

  /** Reads an L2 table (cached). The offset comes from an L1 entry, already checked for alignment. */
  async l2Table(offset: number): Promise<Uint8Array> {
    let table = this.l2Cache.get(offset);
    if (table === undefined) {
      if (offset === 0) throw new ImageFormatError('L2 table at offset 0');
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
    await this.file.write(this.header.l1TableOffset + index * 8, serializeL1([this.l1[index]!]));
  }

  /** Rewrites the 8-byte virtual size field. */
  async writeSize(size: number): Promise<void> {
    this.header.size = size;
    const field = new Uint8Array(8);
    writeU64(new DataView(field.buffer), 0, size);
    await this.file.write(24, field);
  }

  /** Moves the active L1 table to a new place with `entries`; frees the old one. */
  async replaceL1(entries: L1Entry[]): Promise<void> {
    const oldOffset = this.header.l1TableOffset;
    const oldClusters = Math.ceil((this.header.l1Size * 8) / this.clusterSize);
    const clusters = Math.max(1, Math.ceil((entries.length * 8) / this.clusterSize));
    const offset = await this.refcounts.allocate(clusters);
    const bytes = new Uint8Array(clusters * this.clusterSize);
    bytes.set(serializeL1(entries));
    await this.file.write(offset, bytes);
    const field = new Uint8Array(12);
    const view = new DataView(field.buffer);
    view.setUint32(0, entries.length);
    writeU64(view, 4, offset);
    await this.file.write(36, field);
    this.header.l1Size = entries.length;
    this.header.l1TableOffset = offset;
    this.l1 = entries;
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
    await this.file.write(72, field);
  }
}
