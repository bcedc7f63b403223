import { type BlockBackend, hasBlockStatus } from '@tsvirt/interfaces';
import { ImageToolError } from '../errors.js';

/** `qemu-img measure`'s answer. */
export interface Measurement {
  /** File size needed for the data the input really holds (or the whole size without an input). */
  required: number;
  /** File size with every cluster allocated. */
  fullyAllocated: number;
}

const roundUp = (value: number, to: number) => Math.ceil(value / to) * to;

/** Refcount table and block bytes to count `clusters` clusters and themselves (QEMU's fixed point). */
export function refcountMetadataSize(clusters: number, clusterSize: number, refcountOrder: number): number {
  const blocksPerTableCluster = clusterSize / 8;
  const refcountsPerBlock = (clusterSize * 8) / 2 ** refcountOrder;
  let table = 0;
  let blocks = 0;
  let total = 0;
  for (;;) {
    const last = total;
    blocks = Math.ceil((clusters + table + blocks) / refcountsPerBlock);
    table = Math.ceil(blocks / blocksPerTableCluster);
    total = clusters + blocks + table;
    if (total === last) return (blocks + table) * clusterSize;
  }
}

/** Size of a fully preallocated qcow2 image: header, L1, L2, refcounts and data. */
export function qcow2FullSize(size: number, clusterSize: number, refcountOrder: number, extendedL2: boolean): number {
  const aligned = roundUp(size, clusterSize);
  const entryBytes = extendedL2 ? 16 : 8;
  let meta = clusterSize;
  const l2Entries = roundUp(aligned / clusterSize, clusterSize / entryBytes);
  meta += l2Entries * entryBytes;
  const l1Entries = roundUp((l2Entries * entryBytes) / clusterSize, clusterSize / 8);
  meta += l1Entries * 8;
  meta += refcountMetadataSize((meta + aligned) / clusterSize, clusterSize, refcountOrder);
  return meta + aligned;
}

/**
 * `qemu-img measure`: the file size a conversion of `source` (or a new image
 * of `size` bytes) into `format` needs.
 */
export async function measureImage(
  target: { format: 'raw' | 'qcow2'; clusterSize?: number; refcountBits?: number; extendedL2?: boolean },
  input: { source: BlockBackend } | { size: number },
): Promise<Measurement> {
  const size = roundUp('size' in input ? input.size : input.source.size, 512);
  if (target.format === 'raw') return { required: size, fullyAllocated: size };
  const clusterSize = target.clusterSize ?? 65536;
  const refcountOrder = Math.log2(target.refcountBits ?? 16);
  if (!Number.isInteger(Math.log2(clusterSize)) || !Number.isInteger(refcountOrder)) throw new ImageToolError('invalid cluster size or refcount width');
  const fullyAllocated = qcow2FullSize(size, clusterSize, refcountOrder, target.extendedL2 ?? false);
  // Without an input nothing but metadata is required (as qemu-img reports it).
  if ('size' in input) return { required: fullyAllocated - size, fullyAllocated };
  const source = input.source;
  const extents = hasBlockStatus(source)
    ? await source.blockStatus(0, source.size)
    : [{ offset: 0, length: source.size, allocated: true, zero: false }];
  // Data clusters a conversion allocates: everything not known to be zero, rounded out to whole clusters.
  let required = 0;
  let offset = 0;
  for (const extent of extents) {
    const end = extent.offset + extent.length;
    if (end <= offset) continue;
    const start = Math.max(offset, extent.offset);
    if (extent.zero) {
      offset = end;
      continue;
    }
    const length = roundUp(end, clusterSize) - start;
    required += (start % clusterSize) + length;
    offset = start + length;
  }
  return { required: fullyAllocated - size + required, fullyAllocated };
}
