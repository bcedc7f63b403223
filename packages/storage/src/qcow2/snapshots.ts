import type { BlockSnapshotInfo } from '@tsvirt/interfaces';
import { BlockError } from '@tsvirt/interfaces';
import { ImageCorruptError, ImageFormatError } from '../errors.js';
import { decodeDescriptor, makeDescriptor, readEntry } from './entries.js';
import { MAX_L1_BYTES, readU64, writeU64 } from './format.js';
import { type L1Entry, parseL1, type Qcow2Metadata, serializeL1 } from './metadata.js';
import type { Qcow2Backend } from './qcow2.js';

/** One entry of the snapshot table. */
export interface Qcow2Snapshot {
  l1Offset: number;
  l1Size: number;
  id: string;
  name: string;
  dateSeconds: number;
  dateNanoseconds: number;
  vmClockNanoseconds: number;
  vmStateSize: number;
  /** Guest disk size when taken (from the extra data; the current size if absent). */
  diskSize: number;
  /** Extra data bytes beyond what this library interprets, kept verbatim. */
  extraData: Uint8Array;
  /** A version 3 entry without the extra data version 3 requires (the VM state size and disk size): check reports it. */
  incomplete?: boolean;
}

/** QEMU's bounds on the snapshot table. */
const MAX_EXTRA_DATA = 1024;
const MAX_TABLE_BYTES = 64 << 20;

const decoder = new TextDecoder();
const encoder = new TextEncoder();

export async function readSnapshotTable(image: Qcow2Backend): Promise<{ snapshots: Qcow2Snapshot[]; byteLength: number }> {
  return readSnapshots(image.metadata);
}

/** @internal The snapshot table of an image being opened (its metadata loaded, the backend not yet made). */
export async function readSnapshots(metadata: Qcow2Metadata): Promise<{ snapshots: Qcow2Snapshot[]; byteLength: number }> {
  const { header, file, clusterSize } = metadata;
  const fileSize = await file.size();
  const snapshots: Qcow2Snapshot[] = [];
  let at = header.snapshotsOffset;
  for (let i = 0; i < header.snapshotCount; i++) {
    if (at - header.snapshotsOffset > MAX_TABLE_BYTES || at + 40 > fileSize) throw new ImageFormatError('snapshot table runs past the end of the file');
    const fixed = new Uint8Array(40);
    await file.read(at, fixed);
    const view = new DataView(fixed.buffer);
    const l1Offset = readU64(view, 0, 'snapshot L1 offset');
    const l1Size = view.getUint32(8);
    const idSize = view.getUint16(12);
    const nameSize = view.getUint16(14);
    const extraSize = view.getUint32(36);
    if (extraSize > MAX_EXTRA_DATA) throw new ImageFormatError(`snapshot ${i} has ${extraSize} bytes of extra data`);
    if (l1Size * 8 > MAX_L1_BYTES || l1Offset % clusterSize !== 0) throw new ImageFormatError(`snapshot ${i} has an invalid L1 table`);
    if (l1Size > 0 && l1Offset + l1Size * 8 > fileSize) throw new ImageFormatError(`snapshot ${i} L1 table runs past the end of the file`);
    const variable = new Uint8Array(extraSize + idSize + nameSize);
    await file.read(at + 40, variable);
    const extra = new DataView(variable.buffer, 0, extraSize);
    snapshots.push({
      l1Offset,
      l1Size,
      dateSeconds: view.getUint32(16),
      dateNanoseconds: view.getUint32(20),
      vmClockNanoseconds: readU64(view, 24, 'snapshot vm clock'),
      vmStateSize: extraSize >= 8 ? readU64(extra, 0, 'snapshot vm state size') : view.getUint32(32),
      diskSize: extraSize >= 16 ? readU64(extra, 8, 'snapshot disk size') : header.size,
      extraData: variable.slice(Math.min(extraSize, 16), extraSize),
      id: decoder.decode(variable.subarray(extraSize, extraSize + idSize)),
      name: decoder.decode(variable.subarray(extraSize + idSize)),
      ...(header.version >= 3 && extraSize < 16 ? { incomplete: true } : {}),
    });
    at += Math.ceil((40 + variable.length) / 8) * 8;
  }
  return { snapshots, byteLength: at - header.snapshotsOffset };
}

function serializeSnapshots(snapshots: readonly Qcow2Snapshot[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const snapshot of snapshots) {
    const id = encoder.encode(snapshot.id);
    const name = encoder.encode(snapshot.name);
    const extraSize = 16 + snapshot.extraData.length;
    const length = Math.ceil((40 + extraSize + id.length + name.length) / 8) * 8;
    const bytes = new Uint8Array(length);
    const view = new DataView(bytes.buffer);
    writeU64(view, 0, snapshot.l1Offset);
    view.setUint32(8, snapshot.l1Size);
    view.setUint16(12, id.length);
    view.setUint16(14, name.length);
    view.setUint32(16, snapshot.dateSeconds);
    view.setUint32(20, snapshot.dateNanoseconds);
    writeU64(view, 24, snapshot.vmClockNanoseconds);
    view.setUint32(32, Math.min(snapshot.vmStateSize, 0xffffffff));
    view.setUint32(36, extraSize);
    writeU64(view, 40, snapshot.vmStateSize);
    writeU64(view, 48, snapshot.diskSize);
    bytes.set(snapshot.extraData, 56);
    bytes.set(id, 40 + extraSize);
    bytes.set(name, 40 + extraSize + id.length);
    parts.push(bytes);
  }
  const total = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    total.set(part, at);
    at += part.length;
  }
  return total;
}

function toInfo(snapshot: Qcow2Snapshot): BlockSnapshotInfo {
  return {
    id: snapshot.id,
    name: snapshot.name,
    size: snapshot.diskSize,
    createdAt: snapshot.dateSeconds * 1000 + Math.floor(snapshot.dateNanoseconds / 1e6),
    vmStateSize: snapshot.vmStateSize,
  };
}

function find(snapshots: readonly Qcow2Snapshot[], nameOrId: string): number {
  let index = snapshots.findIndex((snapshot) => snapshot.id === nameOrId);
  if (index < 0) index = snapshots.findIndex((snapshot) => snapshot.name === nameOrId);
  if (index < 0) throw new BlockError('BLOCK_IO', `snapshot ${JSON.stringify(nameOrId)} not found`);
  return index;
}

/**
 * Every host cluster an L1 table references (L2 tables, data, compressed
 * data), with multiplicity. A reference past the end of the file is refused
 * here, before any refcount changes.
 */
async function references(image: Qcow2Backend, l1: readonly L1Entry[]): Promise<Map<number, number>> {
  const { metadata } = image;
  const { clusterSize, l2Entries, extended, context } = metadata;
  const fileClusters = Math.ceil((await metadata.file.size()) / clusterSize);
  const counts = new Map<number, number>();
  const add = (cluster: number) => {
    if (cluster >= fileClusters) throw new ImageFormatError(`a table entry points at offset ${cluster * clusterSize}, past the end of the file`);
    counts.set(cluster, (counts.get(cluster) ?? 0) + 1);
  };
  for (const entry of l1) {
    if (entry.offset === 0) continue;
    add(entry.offset / clusterSize);
    const table = await metadata.l2Table(entry.offset);
    for (let index = 0; index < l2Entries; index++) {
      const mapping = decodeDescriptor(readEntry(table, index, extended), context);
      if (context.dataFile) continue;
      if (mapping.kind === 'compressed') {
        const start = mapping.host - (mapping.host % 512);
        const last = Math.floor((mapping.host + mapping.length - 1) / clusterSize);
        for (let cluster = Math.floor(start / clusterSize); cluster <= last; cluster++) add(cluster);
      } else if ((mapping.kind === 'data' || mapping.kind === 'zero') && mapping.host !== 0) {
        add(mapping.host / clusterSize);
      }
    }
  }
  return counts;
}

/** Adds `delta` times each reference; checks for overflow first so nothing changes on failure. */
async function changeReferences(image: Qcow2Backend, counts: Map<number, number>, delta: 1 | -1): Promise<void> {
  const { refcounts } = image.metadata;
  if (delta > 0) {
    for (const [cluster, times] of counts) {
      if ((await refcounts.get(cluster)) + times > refcounts.max) {
        throw new BlockError('BLOCK_IO', `refcount of cluster ${cluster} would overflow its ${refcounts.order === 0 ? 1 : 2 ** refcounts.order}-bit width`);
      }
    }
  }
  for (const [cluster, times] of counts) await refcounts.change(cluster, delta * times);
}

/** Sets the COPIED flags of the active tables to "refcount is 1" (after snapshots came or went). */
async function recomputeCopied(image: Qcow2Backend): Promise<void> {
  const { metadata } = image;
  const { refcounts, clusterSize, l2Entries, extended, context } = metadata;
  for (let l1Index = 0; l1Index < metadata.l1.length; l1Index++) {
    const entry = metadata.l1[l1Index]!;
    if (entry.offset === 0) continue;
    const tableOwned = (await refcounts.get(entry.offset / clusterSize)) === 1;
    if (tableOwned !== entry.copied) await metadata.setL1Entry(l1Index, { offset: entry.offset, copied: tableOwned });
    // Shared tables too: QEMU clears the flags of entries whose clusters became shared.
    const table = await metadata.l2Table(entry.offset);
    for (let index = 0; index < l2Entries; index++) {
      const l2 = readEntry(table, index, extended);
      const mapping = decodeDescriptor(l2, context);
      if (!((mapping.kind === 'data' || mapping.kind === 'zero') && mapping.host !== 0)) continue;
      const owned = context.dataFile || (await refcounts.get(mapping.host / clusterSize)) === 1;
      if (owned === ((l2.high & 0x80000000) !== 0)) continue;
      const descriptor = makeDescriptor(mapping.host, owned);
      await image.setEntry({ offset: entry.offset, table }, index, { ...l2, high: descriptor.high, low: descriptor.low | (l2.low & 1) });
    }
  }
}

/** Writes a new snapshot table and points the header at it; frees the old one. */
async function replaceTable(image: Qcow2Backend, snapshots: Qcow2Snapshot[], oldLength: number): Promise<void> {
  const { metadata } = image;
  const { header, clusterSize, refcounts } = metadata;
  const bytes = serializeSnapshots(snapshots);
  const clusters = Math.ceil(bytes.length / clusterSize);
  const offset = clusters > 0 ? await refcounts.allocate(clusters) : 0;
  if (clusters > 0) {
    const padded = new Uint8Array(clusters * clusterSize);
    padded.set(bytes);
    await metadata.writeChecked(offset, padded, 0);
  }
  const field = new Uint8Array(12);
  const view = new DataView(field.buffer);
  view.setUint32(0, snapshots.length);
  writeU64(view, 4, offset);
  await metadata.writeHeaderField(60, field);
  const oldOffset = header.snapshotsOffset;
  const oldCount = header.snapshotCount;
  header.snapshotCount = snapshots.length;
  header.snapshotsOffset = offset;
  await metadata.trackSnapshots({ snapshots, byteLength: bytes.length });
  if (oldCount > 0 && oldLength > 0) await refcounts.changeRange(oldOffset, oldLength, -1);
}

export async function listSnapshots(image: Qcow2Backend): Promise<BlockSnapshotInfo[]> {
  return image.lock.run(async () => (await readSnapshotTable(image)).snapshots.map(toInfo));
}

export async function createSnapshot(image: Qcow2Backend, name: string, now = Date.now()): Promise<BlockSnapshotInfo> {
  if (image.readOnly) throw new BlockError('BLOCK_READ_ONLY', 'the disk is read-only');
  return image.lock.run(async () => {
    const { metadata } = image;
    if (metadata.context.dataFile) throw new BlockError('BLOCK_IO', 'internal snapshots are not possible with an external data file');
    const { snapshots, byteLength } = await readSnapshotTable(image);
    if (snapshots.some((snapshot) => snapshot.name === name)) throw new BlockError('BLOCK_IO', `a snapshot named ${JSON.stringify(name)} exists`);
    if (encoder.encode(name).length > 0xffff) throw new BlockError('BLOCK_IO', 'snapshot name too long');
    const counts = await references(image, metadata.l1);
    const { clusterSize } = metadata;
    const l1Bytes = serializeL1(metadata.l1.map((entry) => ({ offset: entry.offset, copied: false })));
    const l1Clusters = Math.ceil(l1Bytes.length / clusterSize);
    await changeReferences(image, counts, 1);
    const l1Offset = l1Clusters > 0 ? await metadata.refcounts.allocate(l1Clusters) : 0;
    if (l1Clusters > 0) {
      const padded = new Uint8Array(l1Clusters * clusterSize);
      padded.set(l1Bytes);
      await metadata.writeChecked(l1Offset, padded, 0);
    }
    await recomputeCopied(image);
    const nextId = snapshots.reduce((max, snapshot) => Math.max(max, Number.parseInt(snapshot.id, 10) || 0), 0) + 1;
    const snapshot: Qcow2Snapshot = {
      l1Offset,
      l1Size: metadata.l1.length,
      id: String(nextId),
      name,
      dateSeconds: Math.floor(now / 1000),
      dateNanoseconds: (now % 1000) * 1e6,
      vmClockNanoseconds: 0,
      vmStateSize: 0,
      diskSize: image.size,
      extraData: new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
    };
    await replaceTable(image, [...snapshots, snapshot], byteLength);
    return toInfo(snapshot);
  });
}

export async function applySnapshot(image: Qcow2Backend, nameOrId: string): Promise<void> {
  if (image.readOnly) throw new BlockError('BLOCK_READ_ONLY', 'the disk is read-only');
  await image.lock.run(async () => {
    const { metadata } = image;
    const { snapshots } = await readSnapshotTable(image);
    const snapshot = snapshots[find(snapshots, nameOrId)]!;
    const bytes = new Uint8Array(snapshot.l1Size * 8);
    await metadata.file.read(snapshot.l1Offset, bytes);
    const target = parseL1(bytes, metadata.clusterSize).map((entry) => ({ offset: entry.offset, copied: false }));
    const needed = Math.ceil(snapshot.diskSize / (metadata.clusterSize * metadata.l2Entries));
    if (target.length < needed) throw new ImageCorruptError(`snapshot ${snapshot.id} has an L1 table too small for its disk size`);
    if (target.length > metadata.l1.length) {
      const grown = [...metadata.l1];
      while (grown.length < target.length) grown.push({ offset: 0, copied: false });
      await metadata.replaceL1(grown);
    }
    const old = metadata.l1;
    await changeReferences(image, await references(image, target), 1);
    const oldCounts = await references(image, old);
    const next = target.concat(Array.from({ length: old.length - target.length }, () => ({ offset: 0, copied: false })));
    await metadata.rewriteL1(next);
    await changeReferences(image, oldCounts, -1);
    for (const [cluster] of oldCounts) metadata.forgetL2(cluster * metadata.clusterSize);
    await recomputeCopied(image);
    if (snapshot.diskSize !== image.size) await metadata.writeSize(snapshot.diskSize);
  });
}

export async function deleteSnapshot(image: Qcow2Backend, nameOrId: string): Promise<void> {
  if (image.readOnly) throw new BlockError('BLOCK_READ_ONLY', 'the disk is read-only');
  await image.lock.run(async () => {
    const { metadata } = image;
    const { snapshots, byteLength } = await readSnapshotTable(image);
    const index = find(snapshots, nameOrId);
    const snapshot = snapshots[index]!;
    const bytes = new Uint8Array(snapshot.l1Size * 8);
    await metadata.file.read(snapshot.l1Offset, bytes);
    const l1 = parseL1(bytes, metadata.clusterSize);
    const counts = await references(image, l1);
    await replaceTable(image, snapshots.filter((_, i) => i !== index), byteLength);
    await changeReferences(image, counts, -1);
    if (snapshot.l1Size > 0) await metadata.refcounts.changeRange(snapshot.l1Offset, snapshot.l1Size * 8, -1);
    await recomputeCopied(image);
  });
}
