import { ImageToolError } from '../errors.js';
import { openImage } from '../open.js';
import { decodeDescriptor, makeDescriptor, readEntry, storeEntry } from '../qcow2/entries.js';
import { AUTOCLEAR_DATA_FILE_RAW, COMPAT_LAZY_REFCOUNTS, INCOMPAT_DATA_FILE, INCOMPAT_DIRTY, parseHeader, serializeHeader } from '../qcow2/format.js';
import { parseL1 } from '../qcow2/metadata.js';
import { Qcow2Backend } from '../qcow2/qcow2.js';
import { writeRefcountStructures } from '../qcow2/refcount-order.js';
import { readSnapshotTable } from '../qcow2/snapshots.js';
import { refuseCorrupt } from './operations.js';

export interface AmendOptions {
  compat?: '0.10' | '1.1';
  lazyRefcounts?: boolean;
  size?: number;
  /** Refcount width in bits (1 to 64, a power of two); every refcount is carried over. */
  refcountBits?: number;
  /** Renames the external data file (only for images that have one; '' forgets the name). */
  dataFile?: string;
  /** Can only be cleared: setting it on an existing image is refused, as by qemu-img. */
  dataFileRaw?: boolean;
}

/**
 * `qemu-img amend` for qcow2: compat level (up, or down when nothing needs
 * version 3; zero clusters, in snapshots too, are expanded on the way down,
 * as version 2 cannot express them), lazy refcounts, size, refcount width,
 * the data file's name. Refused as qemu-img refuses them: the other creation
 * options and impossible combinations.
 */
export async function amendImage(path: string, options: AmendOptions): Promise<void> {
  const refcountOrder = options.refcountBits === undefined ? undefined : Math.log2(options.refcountBits);
  if (refcountOrder !== undefined && (!Number.isInteger(refcountOrder) || refcountOrder < 0 || refcountOrder > 6)) {
    throw new ImageToolError('Refcount width must be a power of two and may not exceed 64 bits');
  }
  const opened = await openImage(path);
  try {
    const image = opened.backend;
    if (!(image instanceof Qcow2Backend)) throw new ImageToolError('only qcow2 images can be amended');
    await refuseCorrupt(image, path, 'be amended');
    const header = image.metadata.header;
    const targetVersion = options.compat === '0.10' ? 2 : options.compat === '1.1' ? 3 : header.version;
    if (targetVersion === 2 && refcountOrder !== undefined && refcountOrder !== 4) {
      throw new ImageToolError('Refcount widths other than 16 bits require compatibility level 1.1 or above (use compat=1.1 or greater)');
    }
    if (targetVersion === 2 && refcountOrder === undefined && header.refcountOrder !== 4) throw new ImageToolError('compat=0.10 requires refcount_bits=16');
    const hasDataFile = (header.incompatibleFeatures & INCOMPAT_DATA_FILE) !== 0n;
    if (options.dataFile !== undefined && !hasDataFile) throw new ImageToolError('data-file can only be set for images that use an external data file');
    if (options.dataFileRaw && (header.autoclearFeatures & AUTOCLEAR_DATA_FILE_RAW) === 0n) throw new ImageToolError('data-file-raw cannot be set on existing images');
    if (options.size !== undefined && options.size !== image.size) await image.resize(options.size, { shrink: options.size < image.size });
    const next = { ...header };
    const extensions = { ...image.probe.extensions };
    if (options.compat === '1.1' && header.version === 2) {
      next.version = 3;
      next.headerLength = 112;
    }
    if (options.compat === '0.10' && header.version === 3) {
      const blocking = header.incompatibleFeatures & ~INCOMPAT_DIRTY;
      if (blocking !== 0n || (options.lazyRefcounts ?? (header.compatibleFeatures & COMPAT_LAZY_REFCOUNTS) !== 0n)) {
        throw new ImageToolError('compat=0.10 needs refcount_bits=16 and no lazy refcounts, extended L2, external data file or zstd compression');
      }
      await expandZeroClusters(image);
      next.version = 2;
      next.headerLength = 72;
      next.incompatibleFeatures = 0n;
      next.compatibleFeatures = 0n;
      next.autoclearFeatures = 0n;
    }
    if (options.lazyRefcounts !== undefined) {
      if (next.version === 2 && options.lazyRefcounts) throw new ImageToolError('lazy refcounts only supported with compatibility level 1.1 and above');
      next.compatibleFeatures = options.lazyRefcounts ? next.compatibleFeatures | COMPAT_LAZY_REFCOUNTS : next.compatibleFeatures & ~COMPAT_LAZY_REFCOUNTS;
    }
    if (options.dataFileRaw === false) next.autoclearFeatures &= ~AUTOCLEAR_DATA_FILE_RAW;
    if (options.dataFile === '') delete extensions.dataFile;
    else if (options.dataFile !== undefined) extensions.dataFile = options.dataFile;
    if (refcountOrder !== undefined && refcountOrder !== header.refcountOrder) {
      // New structures first, then the header that points at them: the last write switches.
      const { tableOffset, tableClusters } = await writeRefcountStructures(image, refcountOrder);
      next.refcountOrder = refcountOrder;
      next.refcountTableOffset = tableOffset;
      next.refcountTableClusters = tableClusters;
    }
    const { file } = image.metadata;
    if (next.version === 2) Object.assign(extensions, { featureNames: [], unknown: [] });
    const bytes = serializeHeader(next, extensions, image.probe.backingFile);
    parseHeader(bytes, await file.size());
    await file.write(0, bytes);
    await file.flush();
  } finally {
    await opened.backend.close();
  }
}

/**
 * Replaces zero clusters by what version 2 can say, in the active table and
 * in every snapshot's: unallocated without a backing file, else a cluster of
 * written zeros. Each L2 table is changed in place, shared or not, as QEMU
 * does: every change keeps what the entry reads as, for every table holding
 * it. Unlike QEMU 7.2, a preallocated zero cluster whose host cluster another
 * entry still uses (a snapshot's data) is not zeroed in place, which would
 * change that snapshot: the entry lets go of it instead.
 */
async function expandZeroClusters(image: Qcow2Backend): Promise<void> {
  const { metadata } = image;
  const { clusterSize, l2Entries, context, refcounts, file } = metadata;
  const l2Offsets = new Set<number>();
  for (const entry of metadata.l1) if (entry.offset !== 0) l2Offsets.add(entry.offset);
  for (const snapshot of (await readSnapshotTable(image)).snapshots) {
    const bytes = new Uint8Array(snapshot.l1Size * 8);
    await file.read(snapshot.l1Offset, bytes);
    for (const entry of parseL1(bytes, clusterSize)) if (entry.offset !== 0) l2Offsets.add(entry.offset);
  }
  const zeros = new Uint8Array(clusterSize);
  for (const offset of l2Offsets) {
    const table = new Uint8Array(clusterSize);
    await file.read(offset, table);
    const tableRefcount = await refcounts.get(offset / clusterSize);
    // Host clusters this table stops using: released once the table no longer points at them.
    const released: number[] = [];
    let changed = false;
    for (let index = 0; index < l2Entries; index++) {
      const mapping = decodeDescriptor(readEntry(table, index, false), context);
      if (mapping.kind !== 'zero') continue;
      changed = true;
      const shared = mapping.host !== 0 && (await refcounts.get(mapping.host / clusterSize)) > 1;
      if (shared) released.push(mapping.host);
      let host = shared ? 0 : mapping.host;
      if (host === 0 && image.backing === undefined) {
        storeEntry(table, index, false, { high: 0, low: 0, allocated: 0, zeroes: 0 });
        continue;
      }
      if (host === 0) {
        // A new cluster, referenced once by each holder of this table.
        host = await refcounts.allocate(1);
        if (tableRefcount > 1) await refcounts.set(host / clusterSize, tableRefcount);
      }
      await file.write(host, zeros);
      storeEntry(table, index, false, { ...makeDescriptor(host, tableRefcount === 1), allocated: 0, zeroes: 0 });
    }
    if (!changed) continue;
    await file.write(offset, table);
    metadata.forgetL2(offset);
    for (const host of released) await refcounts.set(host / clusterSize, (await refcounts.get(host / clusterSize)) - 1);
  }
  await file.flush();
}
