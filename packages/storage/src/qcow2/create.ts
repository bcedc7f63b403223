import { ImageToolError } from '../errors.js';
import type { ImageFile } from '../image-file.js';
import { makeDescriptor, readEntry } from './entries.js';
import {
  AUTOCLEAR_DATA_FILE_RAW,
  COMPAT_LAZY_REFCOUNTS,
  type CompressionType,
  INCOMPAT_COMPRESSION,
  INCOMPAT_DATA_FILE,
  INCOMPAT_EXTENDED_L2,
  type Qcow2Header,
  serializeHeader,
  writeU64,
} from './format.js';
import { Qcow2Backend } from './qcow2.js';
import { setRefcountEntry } from './refcounts.js';

/** qemu-img's preallocation modes: none, L2 tables only, plus fallocated data clusters, plus zeros written into them. */
export type Preallocation = 'off' | 'metadata' | 'falloc' | 'full';

/** qemu-img's `-o` options for qcow2, spelled as a library would. */
export interface Qcow2CreateOptions {
  size: number;
  /** '0.10' is version 2, '1.1' (default) version 3. */
  compat?: '0.10' | '1.1';
  clusterSize?: number;
  refcountBits?: number;
  backingFile?: string;
  backingFormat?: string;
  lazyRefcounts?: boolean;
  extendedL2?: boolean;
  compressionType?: CompressionType;
  /** Name recorded for the external data file (relative to the image). */
  dataFile?: string;
  /** The opened data file, required with `dataFile`. */
  dataFileHandle?: ImageFile;
  dataFileRaw?: boolean;
  preallocation?: Preallocation;
}

function validate(options: Qcow2CreateOptions): { clusterBits: number; refcountOrder: number; version: 2 | 3 } {
  const clusterSize = options.clusterSize ?? 65536;
  const clusterBits = Math.log2(clusterSize);
  if (!Number.isInteger(clusterBits) || clusterBits < 9 || clusterBits > 21) {
    throw new ImageToolError(`cluster size must be a power of two between 512 and 2M, got ${clusterSize}`);
  }
  const refcountBits = options.refcountBits ?? 16;
  const refcountOrder = Math.log2(refcountBits);
  if (!Number.isInteger(refcountOrder) || refcountOrder < 0 || refcountOrder > 6) {
    throw new ImageToolError(`refcount width must be a power of two between 1 and 64, got ${refcountBits}`);
  }
  if (!Number.isSafeInteger(options.size) || options.size < 0) throw new ImageToolError(`invalid image size ${options.size}`);
  const version = options.compat === '0.10' ? 2 : 3;
  if (version === 2) {
    if (refcountBits !== 16) throw new ImageToolError('compat=0.10 only supports refcount_bits=16');
    if (options.lazyRefcounts) throw new ImageToolError('lazy refcounts only supported with compatibility level 1.1 and above');
    if (options.extendedL2) throw new ImageToolError('extended L2 entries are only supported with compatibility level 1.1 and above');
    if (options.dataFile !== undefined) throw new ImageToolError('external data files are only supported with compatibility level 1.1 and above');
    if ((options.compressionType ?? 'zlib') !== 'zlib') throw new ImageToolError('compression types other than zlib need compatibility level 1.1');
  }
  if (options.extendedL2 && clusterSize < 16384) throw new ImageToolError('extended L2 entries are only supported with cluster sizes of at least 16384 bytes');
  if (options.dataFile !== undefined && options.dataFileHandle === undefined) throw new ImageToolError('the data file must be opened');
  if (options.dataFile !== undefined && options.backingFile !== undefined && options.dataFileRaw) {
    throw new ImageToolError('a backing file cannot be used with data-file-raw');
  }
  return { clusterBits, refcountOrder, version };
}

/**
 * Writes a new, empty qcow2 image into `file` (which should be empty) and
 * returns it opened read-write. Layout: header, refcount table, first
 * refcount block, then the L1 table — like qemu-img's.
 */
export async function createQcow2(file: ImageFile, options: Qcow2CreateOptions): Promise<Qcow2Backend> {
  const { clusterBits, refcountOrder, version } = validate(options);
  const clusterSize = 2 ** clusterBits;
  let incompatible = 0n;
  if (options.extendedL2) incompatible |= INCOMPAT_EXTENDED_L2;
  if (options.dataFile !== undefined) incompatible |= INCOMPAT_DATA_FILE;
  if (options.compressionType === 'zstd') incompatible |= INCOMPAT_COMPRESSION;
  const header: Qcow2Header = {
    version,
    backingFileOffset: 0,
    backingFileSize: 0,
    clusterBits,
    size: 0,
    cryptMethod: 0,
    l1Size: 0,
    l1TableOffset: 0,
    refcountTableOffset: clusterSize,
    refcountTableClusters: 1,
    snapshotCount: 0,
    snapshotsOffset: 0,
    incompatibleFeatures: incompatible,
    compatibleFeatures: options.lazyRefcounts ? COMPAT_LAZY_REFCOUNTS : 0n,
    autoclearFeatures: options.dataFile !== undefined && options.dataFileRaw ? AUTOCLEAR_DATA_FILE_RAW : 0n,
    refcountOrder,
    headerLength: version === 3 ? 112 : 72,
    compressionType: options.compressionType ?? 'zlib',
  };
  const extensions = {
    featureNames: [],
    unknown: [],
    end: 0,
    ...(options.backingFormat !== undefined ? { backingFormat: options.backingFormat } : {}),
    ...(options.dataFile !== undefined ? { dataFile: options.dataFile } : {}),
  };
  const image = new Uint8Array(3 * clusterSize);
  image.set(serializeHeader(header, extensions, options.backingFile));
  writeU64(new DataView(image.buffer), clusterSize, 2 * clusterSize);
  const block = image.subarray(2 * clusterSize);
  for (let cluster = 0; cluster < 3; cluster++) setRefcountEntry(block, refcountOrder, cluster, 1);
  await file.truncate(0);
  await file.write(0, image);
  const backend = await Qcow2Backend.open(file, options.dataFileHandle ? { dataFile: options.dataFileHandle } : {});
  // Like qemu-img, round the size up to whole sectors.
  await backend.resize(Math.ceil(options.size / 512) * 512);
  if (options.dataFileHandle && options.dataFileRaw) await options.dataFileHandle.truncate(options.size);
  const preallocation = options.preallocation ?? 'off';
  if (preallocation !== 'off') await preallocate(backend, preallocation);
  return backend;
}

/** Writes `length` zero bytes at `offset`, a megabyte at a time. */
export async function writeZeros(file: ImageFile, offset: number, length: number): Promise<void> {
  const zeros = new Uint8Array(Math.min(length, 1 << 20));
  for (let at = 0; at < length; at += zeros.length) await file.write(offset + at, zeros.subarray(0, Math.min(zeros.length, length - at)));
}

/** Maps every guest cluster to a host cluster (with `falloc` reserving its blocks, with `full` writing its zeros). */
async function preallocate(backend: Qcow2Backend, mode: Exclude<Preallocation, 'off'>): Promise<void> {
  const { metadata } = backend;
  const { clusterSize, l2Entries, extended, context } = metadata;
  const clusters = Math.ceil(backend.size / clusterSize);
  await backend.lock.run(async () => {
    for (let first = 0; first < clusters; first += l2Entries) {
      const l2 = await backend.writableL2(first / l2Entries);
      const count = Math.min(l2Entries, clusters - first);
      const hostStart = context.dataFile ? first * clusterSize : await metadata.refcounts.allocate(count);
      for (let i = 0; i < count; i++) {
        const host = hostStart + i * clusterSize;
        if (readEntry(l2.table, i, extended).high !== 0) continue;
        await backend.setEntry(l2, i, { ...makeDescriptor(host, true), allocated: extended ? 0xffffffff : 0, zeroes: 0 });
      }
      const target = backend.dataTarget;
      const end = hostStart + count * clusterSize;
      // falloc reserves the blocks without writing; where the host cannot, it writes zeros as glibc's posix_fallocate does.
      if (mode === 'full' || (mode === 'falloc' && !(await target.allocate?.(hostStart, end - hostStart)))) {
        await writeZeros(target, hostStart, end - hostStart);
      } else if ((await target.size()) < end) {
        await target.truncate(end);
      }
    }
  });
}
