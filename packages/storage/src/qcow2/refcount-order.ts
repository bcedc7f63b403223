import { ImageToolError } from '../errors.js';
import { MAX_REFTABLE_BYTES, writeU64 } from './format.js';
import type { Qcow2Backend } from './qcow2.js';
import { maxRefcount, setRefcountEntry } from './refcounts.js';

/**
 * Writes a complete new refcount table and blocks of width `1 << order` past
 * the end of the file, carrying every cluster's refcount over, and returns
 * where the table is. Nothing points at the new structures until the caller
 * writes them into the header, so a crash before that leaves the image as it
 * was (with unreferenced space at its end); after it, the old structures are
 * merely unreferenced. The caller holds the image open for writing and does
 * nothing else with it meanwhile.
 */
export async function writeRefcountStructures(image: Qcow2Backend, order: number): Promise<{ tableOffset: number; tableClusters: number }> {
  const { metadata } = image;
  const { clusterSize, refcounts, file } = metadata;
  const fileClusters = Math.ceil((await file.size()) / clusterSize);
  const max = maxRefcount(order);
  const counts = new Array<number>(fileClusters);
  for (let cluster = 0; cluster < fileClusters; cluster++) {
    const count = await refcounts.get(cluster);
    if (count > max) {
      throw new ImageToolError(`Cannot decrease refcount entry width to ${2 ** order} bits: Cluster at offset 0x${(cluster * clusterSize).toString(16)} has a refcount of ${count}`);
    }
    counts[cluster] = count;
  }
  // The old table and blocks are referenced only by themselves: after the switch they are free.
  const old = refcounts.tableLocation;
  const oldClusters = [...refcounts.blockOffsets().filter((offset) => offset !== 0).map((offset) => offset / clusterSize)];
  for (let cluster = old.offset / clusterSize; cluster < old.offset / clusterSize + old.clusters; cluster++) oldClusters.push(cluster);
  for (const cluster of oldClusters) if (cluster < fileClusters && counts[cluster]! > 0) counts[cluster] = counts[cluster]! - 1;
  // The new blocks must also count themselves and the table: grow until the layout covers itself.
  const perBlock = (clusterSize * 8) >> order;
  let blocks = 0;
  let tableClusters = 0;
  for (;;) {
    const total = fileClusters + tableClusters + blocks;
    const neededBlocks = Math.ceil(total / perBlock);
    const neededTable = Math.max(1, Math.ceil((neededBlocks * 8) / clusterSize));
    if (neededBlocks === blocks && neededTable === tableClusters) break;
    blocks = neededBlocks;
    tableClusters = neededTable;
  }
  if (tableClusters * clusterSize > MAX_REFTABLE_BYTES) throw new ImageToolError(`a refcount table of ${tableClusters} clusters is too large`);
  const tableOffset = fileClusters * clusterSize;
  const firstBlock = fileClusters + tableClusters;
  const table = new Uint8Array(tableClusters * clusterSize);
  const tableView = new DataView(table.buffer);
  const block = new Uint8Array(clusterSize);
  for (let index = 0; index < blocks; index++) {
    block.fill(0);
    for (let entry = 0; entry < perBlock; entry++) {
      const cluster = index * perBlock + entry;
      const count = cluster < fileClusters ? counts[cluster]! : cluster < firstBlock + blocks ? 1 : 0;
      if (count !== 0) setRefcountEntry(block, order, entry, count);
    }
    const offset = (firstBlock + index) * clusterSize;
    await file.write(offset, block);
    writeU64(tableView, index * 8, offset);
  }
  await file.write(tableOffset, table);
  await file.flush();
  return { tableOffset, tableClusters };
}
