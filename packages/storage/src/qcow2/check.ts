import { ImageCorruptError } from '../errors.js';
import { decodeDescriptor, makeDescriptor, readEntry } from './entries.js';
import { AUTOCLEAR_BITMAPS, EXT_BITMAPS, INCOMPAT_CORRUPT, INCOMPAT_DIRTY, readU64 } from './format.js';
import { parseL1, type L1Entry } from './metadata.js';
import type { Qcow2Backend } from './qcow2.js';
import { readSnapshotTable } from './snapshots.js';

export type RepairMode = 'leaks' | 'all';

/** The result of a consistency check, with qemu-img's figures. */
export interface CheckReport {
  corruptions: number;
  leaks: number;
  checkErrors: number;
  corruptionsFixed: number;
  leaksFixed: number;
  totalClusters: number;
  allocatedClusters: number;
  fragmentedClusters: number;
  compressedClusters: number;
  imageEndOffset: number;
  /** One line per finding, worded like qemu-img's. */
  messages: string[];
}

/** The largest file this checker will account for, in clusters (bounds its own memory). */
const MAX_CHECKED_CLUSTERS = 1 << 27;

/**
 * Recounts every reference in the image (header, L1/L2 tables, data,
 * snapshots, refcount structures) and compares with the stored refcounts
 * and COPIED flags. With `repair`, fixes leaks (and, with 'all', errors).
 * The caller must not use the image concurrently.
 */
export async function checkQcow2(image: Qcow2Backend, options: { repair?: RepairMode } = {}): Promise<CheckReport> {
  return image.lock.run(() => checkLocked(image, options.repair));
}

/** Rebuilds refcounts from the metadata (an image left dirty by lazy refcounts). */
export async function repairRefcounts(image: Qcow2Backend): Promise<void> {
  const report = await checkLocked(image, 'all');
  if (report.corruptions > report.corruptionsFixed) {
    throw new ImageCorruptError(`refcount rebuild left ${report.corruptions - report.corruptionsFixed} error(s)`);
  }
}

async function checkLocked(image: Qcow2Backend, repair: RepairMode | undefined): Promise<CheckReport> {
  const { metadata } = image;
  const { clusterSize, header, context, refcounts, file, l2Entries, extended } = metadata;
  const fileSize = await file.size();
  const fileClusters = Math.ceil(fileSize / clusterSize);
  const report: CheckReport = {
    corruptions: 0,
    leaks: 0,
    checkErrors: 0,
    corruptionsFixed: 0,
    leaksFixed: 0,
    totalClusters: Math.ceil(header.size / clusterSize),
    allocatedClusters: 0,
    fragmentedClusters: 0,
    compressedClusters: 0,
    imageEndOffset: 0,
    messages: [],
  };
  if (fileClusters > MAX_CHECKED_CLUSTERS) {
    report.checkErrors++;
    report.messages.push(`image of ${fileClusters} clusters is too large to check`);
    return report;
  }
  const expected = new Uint32Array(fileClusters);
  const reference = (offset: number, length: number, what: string) => {
    const first = Math.floor(offset / clusterSize);
    const last = Math.floor((offset + Math.max(length, 1) - 1) / clusterSize);
    for (let cluster = first; cluster <= last; cluster++) {
      if (cluster >= fileClusters) {
        report.corruptions++;
        report.messages.push(`ERROR: ${what} at offset ${offset} is beyond the end of the image file`);
        return;
      }
      expected[cluster]! += 1;
    }
  };

  reference(0, clusterSize, 'header');
  const walk = async (l1: readonly L1Entry[], active: boolean) => {
    let nextContiguous = 0;
    for (const entry of l1) {
      if (entry.malformed !== undefined) {
        report.corruptions++;
        report.messages.push(entry.malformed);
      }
      if (entry.offset === 0) continue;
      reference(entry.offset, clusterSize, 'L2 table');
      if (entry.offset >= fileSize) continue;
      const table = new Uint8Array(clusterSize);
      await file.read(entry.offset, table);
      for (let index = 0; index < l2Entries; index++) {
        let mapping;
        const l2 = readEntry(table, index, extended);
        try {
          mapping = decodeDescriptor(l2, context);
        } catch (error) {
          report.corruptions++;
          report.messages.push(`ERROR: L2 table at ${entry.offset} entry ${index}: ${(error as Error).message}`);
          continue;
        }
        if (mapping.kind === 'compressed' && (l2.high & 0x80000000) !== 0) {
          report.corruptions++;
          report.messages.push(`ERROR: coffset=0x${mapping.host.toString(16)}: copied flag must never be set for compressed clusters`);
        }
        if (mapping.kind === 'compressed') {
          if (active) {
            report.allocatedClusters++;
            report.compressedClusters++;
          }
          const start = mapping.host - (mapping.host % 512);
          reference(start, mapping.length + (mapping.host % 512), 'compressed cluster');
        } else if (mapping.kind === 'data' || (mapping.kind === 'zero' && mapping.host !== 0)) {
          if (active) {
            report.allocatedClusters++;
            if (nextContiguous !== 0 && mapping.host !== nextContiguous) report.fragmentedClusters++;
            nextContiguous = mapping.host + clusterSize;
          }
          if (!context.dataFile) reference(mapping.host, clusterSize, 'data cluster');
        }
      }
    }
  };

  reference(header.l1TableOffset, header.l1Size * 8, 'L1 table');
  await walk(metadata.l1, true);
  if (header.snapshotCount > 0) {
    const table = await readSnapshotTable(image);
    reference(header.snapshotsOffset, table.byteLength, 'snapshot table');
    for (const [index, snapshot] of table.snapshots.entries()) {
      if (snapshot.incomplete) {
        report.corruptions++;
        report.messages.push(`ERROR snapshot table entry ${index} is incomplete`);
      }
      if (snapshot.l1Size === 0) continue;
      reference(snapshot.l1Offset, snapshot.l1Size * 8, 'snapshot L1 table');
      const bytes = new Uint8Array(snapshot.l1Size * 8);
      await file.read(snapshot.l1Offset, bytes);
      try {
        await walk(parseL1(bytes, clusterSize), false);
      } catch (error) {
        report.corruptions++;
        report.messages.push(`ERROR: snapshot ${snapshot.id}: ${(error as Error).message}`);
      }
    }
  }
  await referenceBitmaps(image, fileSize, reference, report);
  const location = refcounts.tableLocation;
  for (const index of refcounts.reservedEntries) {
    report.corruptions++;
    report.messages.push(`ERROR refcount table entry ${index} has reserved bits set`);
  }
  reference(location.offset, location.clusters * clusterSize, 'refcount table');
  for (const block of refcounts.blockOffsets()) if (block !== 0) reference(block, clusterSize, 'refcount block');

  // Compare; stored above counted is a leak, below it an error.
  const mismatches: Array<{ cluster: number; stored: number; counted: number }> = [];
  for (let cluster = 0; cluster < fileClusters; cluster++) {
    const stored = await refcounts.get(cluster);
    const counted = expected[cluster]!;
    if (stored !== counted) mismatches.push({ cluster, stored, counted });
  }
  const fixes: typeof mismatches = [];
  for (const mismatch of mismatches) {
    const leak = mismatch.stored > mismatch.counted;
    const fixing = leak ? repair !== undefined : repair === 'all';
    report.messages.push(
      `${fixing ? 'Repairing' : leak ? 'Leaked' : 'ERROR'} cluster ${mismatch.cluster} refcount=${mismatch.stored} reference=${mismatch.counted}`,
    );
    if (leak) report.leaks++;
    else report.corruptions++;
    if (fixing) fixes.push(mismatch);
  }
  if (fixes.length > 0) {
    await refcounts.protecting(
      (cluster) => cluster < fileClusters && expected[cluster]! > 0,
      async () => {
        for (const fix of fixes) {
          if (fix.counted > refcounts.max) continue;
          await refcounts.set(fix.cluster, fix.counted);
          if (fix.stored > fix.counted) report.leaksFixed++;
          else report.corruptionsFixed++;
        }
      },
    );
  }

  // COPIED flags of the active tables: set exactly when the refcount is 1.
  for (let l1Index = 0; l1Index < metadata.l1.length; l1Index++) {
    const entry = metadata.l1[l1Index]!;
    if (entry.offset === 0 || entry.offset >= fileSize) continue;
    const refcount = await refcounts.get(entry.offset / clusterSize);
    if ((refcount === 1) !== entry.copied) {
      const fixing = repair === 'all';
      report.messages.push(`${fixing ? 'Repairing' : 'ERROR'} OFLAG_COPIED L2 cluster: l1_index=${l1Index} refcount=${refcount}`);
      report.corruptions++;
      if (fixing) {
        await metadata.setL1Entry(l1Index, { offset: entry.offset, copied: refcount === 1 });
        report.corruptionsFixed++;
      }
    }
    const table = await metadata.l2Table(entry.offset);
    for (let index = 0; index < l2Entries; index++) {
      const l2 = readEntry(table, index, extended);
      let mapping;
      try {
        mapping = decodeDescriptor(l2, context);
      } catch {
        continue;
      }
      if (!(mapping.kind === 'data' || (mapping.kind === 'zero' && mapping.host !== 0))) continue;
      const copied = (l2.high & 0x80000000) !== 0;
      const dataRefcount = context.dataFile ? 1 : await refcounts.get(mapping.host / clusterSize);
      if ((dataRefcount === 1) === copied) continue;
      const fixing = repair === 'all' && entry.copied;
      report.messages.push(`${fixing ? 'Repairing' : 'ERROR'} OFLAG_COPIED data cluster: l2_entry=${l2.high.toString(16)}${l2.low.toString(16).padStart(8, '0')} refcount=${dataRefcount}`);
      report.corruptions++;
      if (fixing) {
        await image.setEntry({ offset: entry.offset, table }, index, { ...l2, ...makeDescriptor(mapping.host, dataRefcount === 1), low: (l2.low & 1) | makeDescriptor(mapping.host, false).low });
        report.corruptionsFixed++;
      }
    }
  }

  // A repair that left nothing wrong lifts the corrupt and dirty marks, as qemu-img check -r does.
  if (repair === 'all' && report.corruptions === report.corruptionsFixed && report.checkErrors === 0) {
    await metadata.setIncompatible(INCOMPAT_CORRUPT, false);
    await metadata.setIncompatible(INCOMPAT_DIRTY, false);
  }

  let highest = -1;
  for (let cluster = fileClusters - 1; cluster >= 0; cluster--) {
    if (expected[cluster]! > 0) {
      highest = cluster;
      break;
    }
  }
  report.imageEndOffset = (highest + 1) * clusterSize;
  return report;
}

/**
 * The clusters of persistent dirty bitmaps (directory, tables, data), counted
 * only while the bitmaps autoclear bit says they are valid, as QEMU does.
 */
async function referenceBitmaps(
  image: Qcow2Backend,
  fileSize: number,
  reference: (offset: number, length: number, what: string) => void,
  report: CheckReport,
): Promise<void> {
  const { header, file, clusterSize } = image.metadata;
  if ((header.autoclearFeatures & AUTOCLEAR_BITMAPS) === 0n) return;
  const extension = image.probe.extensions.unknown.find((item) => item.type === EXT_BITMAPS);
  if (extension === undefined || extension.data.length < 24) return;
  const view = new DataView(extension.data.buffer, extension.data.byteOffset, extension.data.byteLength);
  const count = view.getUint32(0);
  const directorySize = readU64(view, 8, 'bitmap directory size');
  const directoryOffset = readU64(view, 16, 'bitmap directory offset');
  if (count > 65535 || directorySize > 64 << 20 || directoryOffset + directorySize > fileSize) {
    report.corruptions++;
    report.messages.push('ERROR: the bitmap directory is invalid');
    return;
  }
  reference(directoryOffset, directorySize, 'bitmap directory');
  const directory = new Uint8Array(directorySize);
  await file.read(directoryOffset, directory);
  const entries = new DataView(directory.buffer);
  let at = 0;
  for (let i = 0; i < count && at + 24 <= directorySize; i++) {
    const tableOffset = readU64(entries, at, 'bitmap table offset');
    const tableSize = entries.getUint32(at + 8);
    const nameSize = entries.getUint16(at + 18);
    const extraSize = entries.getUint32(at + 20);
    at += Math.ceil((24 + extraSize + nameSize) / 8) * 8;
    if (tableSize * 8 > 64 << 20 || tableOffset + tableSize * 8 > fileSize) {
      report.corruptions++;
      report.messages.push(`ERROR: bitmap ${i} has an invalid table`);
      continue;
    }
    reference(tableOffset, tableSize * 8, 'bitmap table');
    const table = new Uint8Array(tableSize * 8);
    await file.read(tableOffset, table);
    const tableView = new DataView(table.buffer);
    for (let entry = 0; entry < tableSize; entry++) {
      const offset = readU64(tableView, entry * 8, 'bitmap data offset') % 2 ** 56;
      const cluster = offset - (offset % 512);
      if (cluster !== 0) reference(cluster, clusterSize, 'bitmap data');
    }
  }
}
