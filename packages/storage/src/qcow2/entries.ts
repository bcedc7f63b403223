import { ImageCorruptError, ImageFormatError } from '../errors.js';

export const COPIED_HIGH = 0x80000000;
export const COMPRESSED_HIGH = 0x40000000;
export const ZERO_LOW = 1;

/** What one L2 entry (and, with extended L2, one subcluster of it) says about a guest cluster. */
export type ClusterMapping =
  /**
   * `mappedAt`: the cluster has a host offset though this part reads from
   * elsewhere (extended L2 subclusters, preallocated zero clusters); qemu-img
   * map reports it.
   */
  | { kind: 'unallocated'; mappedAt?: number }
  | { kind: 'zero'; host: number; mappedAt?: number }
  | { kind: 'data'; host: number; copied: boolean }
  | { kind: 'compressed'; host: number; length: number };

/** A decoded L2 entry: the 64-bit descriptor plus, with extended L2, the subcluster bitmap. */
export interface L2Entry {
  high: number;
  low: number;
  /** Subcluster allocation bits (extended L2 only). */
  allocated: number;
  /** Subcluster reads-as-zero bits (extended L2 only). */
  zeroes: number;
}

export function readEntry(table: Uint8Array, index: number, extended: boolean): L2Entry {
  const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
  const at = index * (extended ? 16 : 8);
  return {
    high: view.getUint32(at),
    low: view.getUint32(at + 4),
    zeroes: extended ? view.getUint32(at + 8) : 0,
    allocated: extended ? view.getUint32(at + 12) : 0,
  };
}

/** Stores an entry in the table; returns the byte range written. */
export function storeEntry(table: Uint8Array, index: number, extended: boolean, entry: L2Entry): [number, number] {
  const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
  const at = index * (extended ? 16 : 8);
  view.setUint32(at, entry.high >>> 0);
  view.setUint32(at + 4, entry.low >>> 0);
  if (extended) {
    view.setUint32(at + 8, entry.zeroes >>> 0);
    view.setUint32(at + 12, entry.allocated >>> 0);
    return [at, at + 16];
  }
  return [at, at + 8];
}

/** Host offset in bits 9..55 of a standard descriptor (also L1 entries). */
export function standardOffset(high: number, low: number): number {
  if ((high & 0x00e00000) !== 0) throw new ImageCorruptError('a table entry points beyond 2^53');
  return (high & 0x001fffff) * 2 ** 32 + (low >>> 9) * 512;
}

export function makeDescriptor(host: number, copied: boolean): { high: number; low: number } {
  return { high: (Math.floor(host / 2 ** 32) | (copied ? COPIED_HIGH : 0)) >>> 0, low: host % 2 ** 32 >>> 0 };
}

export interface EntryContext {
  clusterBits: number;
  version: number;
  extended: boolean;
  /** With an external data file, offset 0 with the copied flag is a real cluster. */
  dataFile: boolean;
}

/** The whole-cluster meaning of a descriptor (ignoring the subcluster bitmap). */
export function decodeDescriptor(entry: L2Entry, context: EntryContext): ClusterMapping {
  const { high, low } = entry;
  if ((high & COMPRESSED_HIGH) !== 0) {
    if (context.dataFile) throw new ImageCorruptError('compressed cluster in an image with an external data file');
    const offsetBits = 62 - (context.clusterBits - 8);
    const value = (BigInt(high & 0x3fffffff) << 32n) | BigInt(low);
    const hostBits = value & ((1n << BigInt(offsetBits)) - 1n);
    // With small clusters the field is wider than any offset this library handles (2^53, as for standard entries).
    if (hostBits > BigInt(Number.MAX_SAFE_INTEGER)) throw new ImageFormatError(`a compressed cluster at offset ${hostBits} lies beyond 2^53 (File too large)`);
    const host = Number(hostBits);
    const sectors = Number(value >> BigInt(offsetBits)) + 1;
    return { kind: 'compressed', host, length: sectors * 512 - (host % 512) };
  }
  const copied = (high & COPIED_HIGH) !== 0;
  if ((high & 0x3f000000) !== 0 || (low & 0x1fe) !== 0) throw new ImageCorruptError('reserved bits set in an L2 entry');
  const host = standardOffset(high, low);
  if (host % 2 ** context.clusterBits !== 0) throw new ImageCorruptError(`L2 entry points to unaligned offset ${host}`);
  if (!context.extended && context.version >= 3 && (low & ZERO_LOW) !== 0) {
    return host !== 0 || (context.dataFile && copied) ? { kind: 'zero', host, mappedAt: host } : { kind: 'zero', host };
  }
  if (host === 0 && !(context.dataFile && copied)) return { kind: 'unallocated' };
  return { kind: 'data', host, copied };
}

/** The meaning of subcluster `index` of an extended-L2 entry. */
export function decodeSubcluster(entry: L2Entry, whole: ClusterMapping, index: number): ClusterMapping {
  if (whole.kind === 'compressed') return whole;
  const bit = 1 << index;
  const allocated = (entry.allocated & bit) !== 0;
  const zero = (entry.zeroes & bit) !== 0;
  if (allocated && zero) throw new ImageCorruptError('a subcluster is marked both allocated and zero');
  if (allocated) {
    if (whole.kind !== 'data') throw new ImageCorruptError('an allocated subcluster in a cluster without a host offset');
    return whole;
  }
  if (whole.kind !== 'data') return zero ? { kind: 'zero', host: 0 } : { kind: 'unallocated' };
  return zero ? { kind: 'zero', host: 0, mappedAt: whole.host } : { kind: 'unallocated', mappedAt: whole.host };
}
