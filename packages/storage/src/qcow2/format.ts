import { ImageFormatError, ImageUnsupportedError } from '../errors.js';

/** 'QFI\xfb' */
export const QCOW2_MAGIC = 0x514649fb;

export const INCOMPAT_DIRTY = 1n << 0n;
export const INCOMPAT_CORRUPT = 1n << 1n;
export const INCOMPAT_DATA_FILE = 1n << 2n;
export const INCOMPAT_COMPRESSION = 1n << 3n;
export const INCOMPAT_EXTENDED_L2 = 1n << 4n;
const KNOWN_INCOMPAT = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION | INCOMPAT_EXTENDED_L2;
export const COMPAT_LAZY_REFCOUNTS = 1n << 0n;
export const AUTOCLEAR_BITMAPS = 1n << 0n;
export const AUTOCLEAR_DATA_FILE_RAW = 1n << 1n;

export const EXT_END = 0;
export const EXT_BACKING_FORMAT = 0xe2792aca;
export const EXT_FEATURE_NAMES = 0x6803f857;
export const EXT_BITMAPS = 0x23852875;
export const EXT_ENCRYPTION = 0x0537be77;
export const EXT_DATA_FILE = 0x44415441;

/** QEMU's limits, which keep every table this library loads bounded. */
export const MAX_L1_BYTES = 32 << 20;
export const MAX_REFTABLE_BYTES = 8 << 20;
export const MAX_SNAPSHOTS = 65536;
export const MAX_BACKING_NAME = 1023;
/** Offsets past 2^53 cannot be held in a number; images that large are refused. */
const MAX_OFFSET = Number.MAX_SAFE_INTEGER;

export type CompressionType = 'zlib' | 'zstd';

/** The feature names of this library's writes, as QEMU spells them in the feature-name table. */
export const FEATURE_NAMES: ReadonlyArray<{ type: 0 | 1 | 2; bit: number; name: string }> = [
  { type: 0, bit: 0, name: 'dirty bit' },
  { type: 0, bit: 1, name: 'corrupt bit' },
  { type: 0, bit: 2, name: 'external data file' },
  { type: 0, bit: 3, name: 'compression type' },
  { type: 0, bit: 4, name: 'extended L2 entries' },
  { type: 1, bit: 0, name: 'lazy refcounts' },
  { type: 2, bit: 0, name: 'bitmaps' },
  { type: 2, bit: 1, name: 'raw external data' },
];

export interface Qcow2Header {
  version: 2 | 3;
  backingFileOffset: number;
  backingFileSize: number;
  clusterBits: number;
  size: number;
  cryptMethod: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  snapshotCount: number;
  snapshotsOffset: number;
  incompatibleFeatures: bigint;
  compatibleFeatures: bigint;
  autoclearFeatures: bigint;
  refcountOrder: number;
  headerLength: number;
  compressionType: CompressionType;
}

/** Header extensions this library understands; others are kept verbatim. */
export interface Qcow2Extensions {
  backingFormat?: string;
  dataFile?: string;
  featureNames: Array<{ type: number; bit: number; name: string }>;
  unknown: Array<{ type: number; data: Uint8Array }>;
  /** Where the extension area ends (for the backing file name check). */
  end: number;
}

export function readU64(view: DataView, at: number, what: string): number {
  const high = view.getUint32(at);
  const low = view.getUint32(at + 4);
  const value = high * 2 ** 32 + low;
  if (value > MAX_OFFSET) throw new ImageFormatError(`${what} ${value} is beyond 2^53`);
  return value;
}

export function writeU64(view: DataView, at: number, value: number): void {
  view.setUint32(at, Math.floor(value / 2 ** 32));
  view.setUint32(at + 4, value >>> 0);
}

/** Parses and validates the fixed header. `fileSize` bounds every table it names. */
export function parseHeader(bytes: Uint8Array, fileSize: number): Qcow2Header {
  if (bytes.length < 72) throw new ImageFormatError('file too short for a qcow2 header');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0) !== QCOW2_MAGIC) throw new ImageFormatError('not a qcow2 image (bad magic)');
  const version = view.getUint32(4);
  if (version !== 2 && version !== 3) throw new ImageUnsupportedError(`qcow2 version ${version} is not supported`);
  const clusterBits = view.getUint32(20);
  if (clusterBits < 9 || clusterBits > 21) throw new ImageFormatError(`cluster bits ${clusterBits} outside 9..21`);
  const clusterSize = 2 ** clusterBits;
  const header: Qcow2Header = {
    version,
    backingFileOffset: readU64(view, 8, 'backing file offset'),
    backingFileSize: view.getUint32(16),
    clusterBits,
    size: readU64(view, 24, 'virtual size'),
    cryptMethod: view.getUint32(32),
    l1Size: view.getUint32(36),
    l1TableOffset: readU64(view, 40, 'L1 table offset'),
    refcountTableOffset: readU64(view, 48, 'refcount table offset'),
    refcountTableClusters: view.getUint32(56),
    snapshotCount: view.getUint32(60),
    snapshotsOffset: readU64(view, 64, 'snapshot table offset'),
    incompatibleFeatures: 0n,
    compatibleFeatures: 0n,
    autoclearFeatures: 0n,
    refcountOrder: 4,
    headerLength: 72,
    compressionType: 'zlib',
  };
  if (version === 3) {
    if (bytes.length < 104) throw new ImageFormatError('file too short for a version 3 header');
    header.incompatibleFeatures = view.getBigUint64(72);
    header.compatibleFeatures = view.getBigUint64(80);
    header.autoclearFeatures = view.getBigUint64(88);
    header.refcountOrder = view.getUint32(96);
    header.headerLength = view.getUint32(100);
    if (header.headerLength < 104 || header.headerLength > clusterSize || header.headerLength > bytes.length) {
      throw new ImageFormatError(`header length ${header.headerLength} is invalid`);
    }
    if (header.refcountOrder > 6) throw new ImageFormatError(`refcount order ${header.refcountOrder} above 6`);
    const unknown = header.incompatibleFeatures & ~KNOWN_INCOMPAT;
    if (unknown !== 0n) {
      throw new ImageUnsupportedError(`unsupported incompatible features 0x${unknown.toString(16)}`);
    }
    const compressionByte = header.headerLength > 104 ? bytes[104]! : 0;
    if (compressionByte === 1) header.compressionType = 'zstd';
    else if (compressionByte !== 0) throw new ImageUnsupportedError(`unknown compression type ${compressionByte}`);
    if ((compressionByte !== 0) !== ((header.incompatibleFeatures & INCOMPAT_COMPRESSION) !== 0n)) {
      throw new ImageFormatError('compression type and its incompatible feature bit disagree');
    }
  }
  if (header.cryptMethod !== 0) throw new ImageUnsupportedError('encrypted qcow2 images are not supported');
  const aligned = (offset: number) => offset % clusterSize === 0;
  if (!aligned(header.l1TableOffset)) throw new ImageFormatError('L1 table offset is not cluster aligned');
  if (!aligned(header.refcountTableOffset) || header.refcountTableOffset === 0) {
    throw new ImageFormatError('refcount table offset is zero or not cluster aligned');
  }
  if (header.snapshotCount > MAX_SNAPSHOTS) throw new ImageFormatError(`${header.snapshotCount} snapshots is too many`);
  if (header.snapshotCount > 0 && !aligned(header.snapshotsOffset)) {
    throw new ImageFormatError('snapshot table offset is not cluster aligned');
  }
  if (header.l1Size * 8 > MAX_L1_BYTES) throw new ImageFormatError(`L1 table of ${header.l1Size} entries is too large`);
  const l2Entries = clusterSize / entryBytes(header);
  if (header.l1Size * l2Entries * clusterSize < header.size) {
    throw new ImageFormatError(`L1 table of ${header.l1Size} entries is too small for ${header.size} bytes`);
  }
  if (header.l1Size > 0 && header.l1TableOffset + header.l1Size * 8 > fileSize) {
    throw new ImageFormatError('L1 table runs past the end of the file');
  }
  const refcountTableBytes = header.refcountTableClusters * clusterSize;
  if (header.refcountTableClusters === 0 || refcountTableBytes > MAX_REFTABLE_BYTES) {
    throw new ImageFormatError(`refcount table of ${header.refcountTableClusters} clusters is invalid`);
  }
  if (header.refcountTableOffset + refcountTableBytes > fileSize) {
    throw new ImageFormatError('refcount table runs past the end of the file');
  }
  if (header.backingFileOffset !== 0) {
    if (header.backingFileSize === 0 || header.backingFileSize > MAX_BACKING_NAME) {
      throw new ImageFormatError(`backing file name of ${header.backingFileSize} bytes is invalid`);
    }
    if (header.backingFileOffset + header.backingFileSize > clusterSize) {
      throw new ImageFormatError('backing file name lies outside the header cluster');
    }
  }
  return header;
}

/** Bytes per L2 entry: 16 with extended L2 (entry plus subcluster bitmap), else 8. */
export function entryBytes(header: Pick<Qcow2Header, 'incompatibleFeatures'>): number {
  return (header.incompatibleFeatures & INCOMPAT_EXTENDED_L2) !== 0n ? 16 : 8;
}

const decoder = new TextDecoder('utf-8', { fatal: false });

/** Parses the header extensions between the header and the end of the first cluster. */
export function parseExtensions(bytes: Uint8Array, header: Qcow2Header): Qcow2Extensions {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const limit = Math.min(bytes.length, header.backingFileOffset !== 0 ? header.backingFileOffset : bytes.length);
  const result: Qcow2Extensions = { featureNames: [], unknown: [], end: header.headerLength };
  let at = header.headerLength;
  while (at + 8 <= limit) {
    const type = view.getUint32(at);
    const length = view.getUint32(at + 4);
    at += 8;
    if (type === EXT_END) break;
    if (length > limit - at) throw new ImageFormatError(`header extension 0x${type.toString(16)} runs past its space`);
    const data = bytes.subarray(at, at + length);
    switch (type) {
      case EXT_BACKING_FORMAT:
        result.backingFormat = decoder.decode(data);
        break;
      case EXT_DATA_FILE:
        result.dataFile = decoder.decode(data);
        break;
      case EXT_FEATURE_NAMES:
        for (let entry = 0; entry + 48 <= length; entry += 48) {
          const nameBytes = data.subarray(entry + 2, entry + 48);
          const nul = nameBytes.indexOf(0);
          result.featureNames.push({
            type: data[entry]!,
            bit: data[entry + 1]!,
            name: decoder.decode(nul < 0 ? nameBytes : nameBytes.subarray(0, nul)),
          });
        }
        break;
      case EXT_ENCRYPTION:
        throw new ImageUnsupportedError('encrypted qcow2 images are not supported');
      default:
        result.unknown.push({ type, data: data.slice() });
    }
    at += Math.ceil(length / 8) * 8;
    result.end = at;
  }
  return result;
}

/**
 * Serialises the header cluster: fixed header, extensions, backing file name.
 * Throws if it does not fit in one cluster.
 */
export function serializeHeader(header: Qcow2Header, extensions: Qcow2Extensions, backingFile: string | undefined): Uint8Array {
  try {
    return serializeHeaderWith(header, extensions, backingFile, true);
  } catch (error) {
    // The feature-name table is optional; like QEMU, leave it out when the cluster is too small.
    if (!(error instanceof ImageFormatError)) throw error;
    return serializeHeaderWith(header, extensions, backingFile, false);
  }
}

function serializeHeaderWith(header: Qcow2Header, extensions: Qcow2Extensions, backingFile: string | undefined, featureNames: boolean): Uint8Array {
  const clusterSize = 2 ** header.clusterBits;
  const out = new Uint8Array(clusterSize);
  const view = new DataView(out.buffer);
  const headerLength = header.version === 3 ? 112 : 72;
  view.setUint32(0, QCOW2_MAGIC);
  view.setUint32(4, header.version);
  view.setUint32(20, header.clusterBits);
  writeU64(view, 24, header.size);
  view.setUint32(32, 0);
  view.setUint32(36, header.l1Size);
  writeU64(view, 40, header.l1TableOffset);
  writeU64(view, 48, header.refcountTableOffset);
  view.setUint32(56, header.refcountTableClusters);
  view.setUint32(60, header.snapshotCount);
  writeU64(view, 64, header.snapshotsOffset);
  if (header.version === 3) {
    view.setBigUint64(72, header.incompatibleFeatures);
    view.setBigUint64(80, header.compatibleFeatures);
    view.setBigUint64(88, header.autoclearFeatures);
    view.setUint32(96, header.refcountOrder);
    view.setUint32(100, headerLength);
    out[104] = header.compressionType === 'zstd' ? 1 : 0;
  }
  const encoder = new TextEncoder();
  let at = headerLength;
  const put = (type: number, data: Uint8Array) => {
    const padded = Math.ceil(data.length / 8) * 8;
    if (at + 8 + padded + 8 > clusterSize) throw new ImageFormatError('header extensions do not fit in the first cluster');
    view.setUint32(at, type);
    view.setUint32(at + 4, data.length);
    out.set(data, at + 8);
    at += 8 + padded;
  };
  if (header.version === 3) {
    if (extensions.backingFormat !== undefined) put(EXT_BACKING_FORMAT, encoder.encode(extensions.backingFormat));
    if (extensions.dataFile !== undefined) put(EXT_DATA_FILE, encoder.encode(extensions.dataFile));
    for (const extension of extensions.unknown) put(extension.type, extension.data);
    if (featureNames) {
      const table = new Uint8Array(FEATURE_NAMES.length * 48);
      FEATURE_NAMES.forEach((feature, index) => {
        table[index * 48] = feature.type;
        table[index * 48 + 1] = feature.bit;
        table.set(encoder.encode(feature.name), index * 48 + 2);
      });
      put(EXT_FEATURE_NAMES, table);
    }
  } else if (extensions.backingFormat !== undefined) {
    put(EXT_BACKING_FORMAT, encoder.encode(extensions.backingFormat));
  }
  at += 8; // the end-of-extensions marker (zeros)
  if (backingFile !== undefined) {
    const name = encoder.encode(backingFile);
    if (name.length > MAX_BACKING_NAME || at + name.length > clusterSize) {
      throw new ImageFormatError('backing file name does not fit in the header cluster');
    }
    out.set(name, at);
    writeU64(view, 8, at);
    view.setUint32(16, name.length);
  }
  return out;
}

export function readBackingName(bytes: Uint8Array, header: Qcow2Header): string | undefined {
  if (header.backingFileOffset === 0) return undefined;
  return decoder.decode(bytes.subarray(header.backingFileOffset, header.backingFileOffset + header.backingFileSize));
}
