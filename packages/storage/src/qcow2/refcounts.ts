import { ImageCorruptError, ImageFormatError } from '../errors.js';
import type { ImageFile } from '../image-file.js';
import { MAX_REFTABLE_BYTES, readU64, writeU64 } from './format.js';
import { MetadataKind, MetadataRegions } from './overlap.js';

/** Reads a refcount of `1 << order` bits at `index` in a refcount block (QEMU's packing: low bits first within a byte). */
export function getRefcountEntry(block: Uint8Array, order: number, index: number): number {
  switch (order) {
    case 0:
    case 1:
    case 2: {
      const perByte = 8 >> order;
      const shift = (index % perByte) << order;
      return (block[Math.floor(index / perByte)]! >> shift) & ((1 << (1 << order)) - 1);
    }
    case 3:
      return block[index]!;
    case 4:
      return (block[index * 2]! << 8) | block[index * 2 + 1]!;
    case 5:
      return new DataView(block.buffer, block.byteOffset).getUint32(index * 4);
    default: {
      const view = new DataView(block.buffer, block.byteOffset);
      const value = view.getUint32(index * 8) * 2 ** 32 + view.getUint32(index * 8 + 4);
      return Math.min(value, Number.MAX_SAFE_INTEGER);
    }
  }
}

/** Stores a refcount; returns the byte range of the block that changed. */
export function setRefcountEntry(block: Uint8Array, order: number, index: number, value: number): [number, number] {
  switch (order) {
    case 0:
    case 1:
    case 2: {
      const perByte = 8 >> order;
      const shift = (index % perByte) << order;
      const mask = ((1 << (1 << order)) - 1) << shift;
      const at = Math.floor(index / perByte);
      block[at] = (block[at]! & ~mask) | ((value << shift) & mask);
      return [at, at + 1];
    }
    case 3:
      block[index] = value;
      return [index, index + 1];
    case 4:
      block[index * 2] = value >>> 8;
      block[index * 2 + 1] = value & 0xff;
      return [index * 2, index * 2 + 2];
    case 5:
      new DataView(block.buffer, block.byteOffset).setUint32(index * 4, value);
      return [index * 4, index * 4 + 4];
    default:
      writeU64(new DataView(block.buffer, block.byteOffset), index * 8, value);
      return [index * 8, index * 8 + 8];
  }
}

export function maxRefcount(order: number): number {
  return order >= 6 ? Number.MAX_SAFE_INTEGER : 2 ** (1 << order) - 1;
}

const BLOCK_CACHE_LIMIT = 64;

/**
 * The refcount table and its blocks, written through on every change so a
 * killed writer leaves at worst leaked clusters: a cluster's refcount is
 * raised before anything points at it and lowered after nothing does.
 */
export class Refcounts {
  private readonly clusterSize: number;
  private readonly entriesPerBlock: number;
  private readonly blocks = new Map<number, Uint8Array>();
  private readonly reserved = new Set<number>();
  private freeHint = 0;
  /** Clusters from here on lie past the file's end and are free whatever a (possibly corrupt) block says. */
  private endCluster = 0;
  /** During a repair: clusters in use whose stored refcount may still be wrong. */
  private inUse: ((cluster: number) => boolean) | undefined;
  /** Table entries that had reserved bits (0–8) set in the file; check reports them. */
  readonly reservedEntries: number[] = [];

  private constructor(
    private readonly file: ImageFile,
    private readonly clusterBits: number,
    readonly order: number,
    private tableOffset: number,
    private table: number[],
    /** Called when the refcount table moves, to rewrite the header fields. */
    private readonly onTableMoved: (offset: number, clusters: number) => Promise<void>,
    /** The image's metadata map: every write here is checked against it and keeps it current. */
    private readonly regions: MetadataRegions,
  ) {
    this.clusterSize = 2 ** clusterBits;
    this.entriesPerBlock = (this.clusterSize * 8) >> order;
    regions.add(MetadataKind.RefcountTable, tableOffset, table.length * 8);
    for (const block of table) if (block !== 0) regions.add(MetadataKind.RefcountBlock, block, this.clusterSize);
  }

  static async load(
    file: ImageFile,
    clusterBits: number,
    order: number,
    tableOffset: number,
    tableClusters: number,
    onTableMoved: (offset: number, clusters: number) => Promise<void>,
    regions: MetadataRegions = new MetadataRegions(2 ** clusterBits, 'none'),
  ): Promise<Refcounts> {
    const clusterSize = 2 ** clusterBits;
    const bytes = new Uint8Array(tableClusters * clusterSize);
    await file.read(tableOffset, bytes);
    const view = new DataView(bytes.buffer);
    const fileSize = await file.size();
    const table: number[] = [];
    const reserved: number[] = [];
    for (let i = 0; i < bytes.length / 8; i++) {
      const offset = readU64(view, i * 8, 'refcount block offset');
      const block = offset - (offset % 512);
      if (block % clusterSize !== 0) throw new ImageFormatError(`refcount block ${i} at ${block} is not cluster aligned`);
      table.push(block);
      if (offset !== block) reserved.push(i);
    }
    const refcounts = new Refcounts(file, clusterBits, order, tableOffset, table, onTableMoved, regions);
    refcounts.reservedEntries.push(...reserved);
    refcounts.endCluster = Math.ceil(fileSize / clusterSize);
    return refcounts;
  }

  get max(): number {
    return maxRefcount(this.order);
  }

  /** Offsets of the refcount blocks (0 where absent). */
  blockOffsets(): readonly number[] {
    return this.table;
  }

  get tableLocation(): { offset: number; clusters: number } {
    return { offset: this.tableOffset, clusters: Math.ceil((this.table.length * 8) / this.clusterSize) };
  }

  async get(cluster: number): Promise<number> {
    const tableIndex = Math.floor(cluster / this.entriesPerBlock);
    const blockOffset = this.table[tableIndex];
    if (blockOffset === undefined || blockOffset === 0) return 0;
    const block = await this.block(blockOffset);
    return getRefcountEntry(block, this.order, cluster % this.entriesPerBlock);
  }

  async set(cluster: number, value: number): Promise<void> {
    if (value > this.max || value < 0) throw new ImageCorruptError(`refcount of cluster ${cluster} would be ${value}, outside 0..${this.max}`);
    const tableIndex = Math.floor(cluster / this.entriesPerBlock);
    const blockOffset = await this.ensureBlock(tableIndex);
    const block = await this.block(blockOffset);
    const [from, to] = setRefcountEntry(block, this.order, cluster % this.entriesPerBlock, value);
    this.regions.check(blockOffset + from, to - from, MetadataKind.RefcountBlock);
    await this.file.write(blockOffset + from, block.subarray(from, to));
    if (value === 0 && cluster < this.freeHint) this.freeHint = cluster;
  }

  async change(cluster: number, delta: number): Promise<number> {
    const value = (await this.get(cluster)) + delta;
    if (value < 0) throw new ImageCorruptError(`refcount of cluster ${cluster} would drop below zero`);
    await this.set(cluster, value);
    return value;
  }

  /** Changes the refcount of every cluster touched by the host byte range `[offset, offset + length)`. */
  async changeRange(offset: number, length: number, delta: number): Promise<void> {
    const first = Math.floor(offset / this.clusterSize);
    const last = Math.floor((offset + length - 1) / this.clusterSize);
    for (let cluster = first; cluster <= last; cluster++) await this.change(cluster, delta);
  }

  /** Finds `count` contiguous free clusters, gives them refcount 1, and returns the host offset of the first. */
  async allocate(count: number): Promise<number> {
    const start = await this.findFree(count);
    // A cluster that reads free but holds metadata: the refcounts are wrong, and using it would destroy the image.
    this.regions.check(start * this.clusterSize, count * this.clusterSize);
    for (let i = 0; i < count; i++) this.reserved.add(start + i);
    try {
      for (let i = 0; i < count; i++) await this.set(start + i, 1);
    } finally {
      for (let i = 0; i < count; i++) this.reserved.delete(start + i);
    }
    this.freeHint = start + count;
    this.endCluster = Math.max(this.endCluster, start + count);
    return start * this.clusterSize;
  }

  /** Runs `section` with clusters for which `inUse` holds kept out of every allocation. */
  async protecting<T>(inUse: (cluster: number) => boolean, section: () => Promise<T>): Promise<T> {
    this.inUse = inUse;
    this.freeHint = 0;
    try {
      return await section();
    } finally {
      this.inUse = undefined;
    }
  }

  /** Drops the cache (after a refcount rebuild rewrote the blocks). */
  forget(): void {
    this.blocks.clear();
    this.freeHint = 0;
  }

  private async findFree(count: number): Promise<number> {
    let start = this.freeHint;
    let run = 0;
    for (let cluster = start; ; cluster++) {
      if (cluster >= this.endCluster && !this.reserved.has(cluster)) {
        if (++run === count) return start;
        continue;
      }
      if (this.reserved.has(cluster) || this.inUse?.(cluster) || (await this.get(cluster)) !== 0) {
        run = 0;
        start = cluster + 1;
        continue;
      }
      if (++run === count) return start;
    }
  }

  private async block(offset: number): Promise<Uint8Array> {
    let block = this.blocks.get(offset);
    if (block === undefined) {
      block = new Uint8Array(this.clusterSize);
      await this.file.read(offset, block);
      if (this.blocks.size >= BLOCK_CACHE_LIMIT) {
        const oldest = this.blocks.keys().next().value;
        if (oldest !== undefined) this.blocks.delete(oldest);
      }
      this.blocks.set(offset, block);
    }
    return block;
  }

  private async ensureBlock(tableIndex: number): Promise<number> {
    // A reference far past anything the refcount table can describe comes from a bad entry: refuse before growing.
    if ((tableIndex + 1) * 8 > MAX_REFTABLE_BYTES) {
      throw new ImageFormatError(`cluster ${tableIndex * this.entriesPerBlock} lies beyond what the refcount table can describe (File too large)`);
    }
    if (tableIndex >= this.table.length) await this.growTable(tableIndex + 1);
    const existing = this.table[tableIndex]!;
    if (existing !== 0) return existing;
    const cluster = await this.findFree(1);
    this.reserved.add(cluster);
    try {
      const offset = cluster * this.clusterSize;
      const block = new Uint8Array(this.clusterSize);
      const selfCovered = Math.floor(cluster / this.entriesPerBlock) === tableIndex;
      if (selfCovered) setRefcountEntry(block, this.order, cluster % this.entriesPerBlock, 1);
      this.regions.check(offset, this.clusterSize);
      await this.file.write(offset, block);
      this.regions.add(MetadataKind.RefcountBlock, offset, this.clusterSize);
      this.endCluster = Math.max(this.endCluster, cluster + 1);
      this.blocks.set(offset, block);
      if (!selfCovered) await this.set(cluster, 1);
      // Linked only once it exists and is counted.
      this.table[tableIndex] = offset;
      await this.writeTableEntry(tableIndex);
      return offset;
    } finally {
      this.reserved.delete(cluster);
    }
  }

  private async writeTableEntry(index: number): Promise<void> {
    const bytes = new Uint8Array(8);
    writeU64(new DataView(bytes.buffer), 0, this.table[index]!);
    this.regions.check(this.tableOffset + index * 8, 8, MetadataKind.RefcountTable);
    await this.file.write(this.tableOffset + index * 8, bytes);
  }

  private async growTable(minEntries: number): Promise<void> {
    const perCluster = this.clusterSize / 8;
    const old = this.tableLocation;
    const tooLarge = () => new ImageFormatError('the refcount table would exceed its maximum size (File too large)');
    let clusters = Math.ceil(Math.max(minEntries, this.table.length * 2) / perCluster);
    if (clusters * this.clusterSize > MAX_REFTABLE_BYTES) throw tooLarge();
    let start = await this.findFree(clusters);
    // The new table's own clusters must be covered by its entries.
    while (Math.ceil((start + clusters) / this.entriesPerBlock) > clusters * perCluster) {
      clusters *= 2;
      if (clusters * this.clusterSize > MAX_REFTABLE_BYTES) throw tooLarge();
      start = await this.findFree(clusters);
    }
    const table = [...this.table];
    while (table.length < clusters * perCluster) table.push(0);
    const bytes = new Uint8Array(clusters * this.clusterSize);
    const view = new DataView(bytes.buffer);
    table.forEach((offset, index) => writeU64(view, index * 8, offset));
    for (let i = 0; i < clusters; i++) this.reserved.add(start + i);
    try {
      this.regions.check(start * this.clusterSize, bytes.length);
      await this.file.write(start * this.clusterSize, bytes);
      this.endCluster = Math.max(this.endCluster, start + clusters);
      const previousTable = this.table;
      const previousOffset = this.tableOffset;
      this.table = table;
      this.tableOffset = start * this.clusterSize;
      this.regions.add(MetadataKind.RefcountTable, this.tableOffset, bytes.length);
      try {
        for (let i = 0; i < clusters; i++) await this.set(start + i, 1);
      } catch (error) {
        this.regions.remove(MetadataKind.RefcountTable, this.tableOffset, bytes.length);
        this.table = previousTable;
        this.tableOffset = previousOffset;
        throw error;
      }
      // Blocks allocated meanwhile were linked in the new table only; it is complete now.
      await this.onTableMoved(this.tableOffset, clusters);
      this.regions.remove(MetadataKind.RefcountTable, old.offset, old.clusters * this.clusterSize);
    } finally {
      for (let i = 0; i < clusters; i++) this.reserved.delete(start + i);
    }
    const firstOld = old.offset / this.clusterSize;
    for (let i = 0; i < old.clusters; i++) await this.set(firstOld + i, 0);
  }
}
