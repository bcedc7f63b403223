import { ImageToolError } from '../errors.js';
import { openImage } from '../open.js';
import { decodeDescriptor, readEntry } from '../qcow2/entries.js';
import { COMPAT_LAZY_REFCOUNTS, INCOMPAT_DIRTY, parseHeader, serializeHeader } from '../qcow2/format.js';
import { Qcow2Backend } from '../qcow2/qcow2.js';

export interface AmendOptions {
  compat?: '0.10' | '1.1';
  lazyRefcounts?: boolean;
  size?: number;
}

/**
 * `qemu-img amend` for qcow2: compat level (up, or down when nothing needs
 * version 3), lazy refcounts, size. Zero clusters are expanded on the way
 * down, as version 2 cannot express them.
 */
export async function amendImage(path: string, options: AmendOptions): Promise<void> {
  const opened = await openImage(path);
  try {
    const image = opened.backend;
    if (!(image instanceof Qcow2Backend)) throw new ImageToolError('only qcow2 images can be amended');
    if (options.size !== undefined && options.size !== image.size) await image.resize(options.size, { shrink: options.size < image.size });
    const header = image.metadata.header;
    const next = { ...header };
    if (options.compat === '1.1' && header.version === 2) {
      next.version = 3;
      next.refcountOrder = 4;
      next.headerLength = 112;
    }
    if (options.compat === '0.10' && header.version === 3) {
      const blocking = header.incompatibleFeatures & ~INCOMPAT_DIRTY;
      if (blocking !== 0n || header.refcountOrder !== 4 || (options.lazyRefcounts ?? (header.compatibleFeatures & COMPAT_LAZY_REFCOUNTS) !== 0n)) {
        throw new ImageToolError('compat=0.10 needs refcount_bits=16 and no lazy refcounts, extended L2, external data file or zstd compression');
      }
      if (header.snapshotCount > 0) throw new ImageToolError('downgrading an image with internal snapshots is not supported');
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
    const { file } = image.metadata;
    const extensions = { ...image.probe.extensions, ...(next.version === 2 ? { featureNames: [], unknown: [] } : {}) };
    const bytes = serializeHeader(next, extensions, image.probe.backingFile);
    parseHeader(bytes, await file.size());
    await file.write(0, bytes);
    await file.flush();
  } finally {
    await opened.backend.close();
  }
}

/** Replaces zero clusters by what version 2 can say: unallocated (no backing file) or written zeros. */
async function expandZeroClusters(image: Qcow2Backend): Promise<void> {
  const { metadata } = image;
  const { clusterSize, l2Entries, extended, context } = metadata;
  const zeroClusters: number[] = [];
  for (let l1Index = 0; l1Index < metadata.l1.length; l1Index++) {
    const entry = metadata.l1[l1Index]!;
    if (entry.offset === 0) continue;
    const table = await metadata.l2Table(entry.offset);
    for (let index = 0; index < l2Entries; index++) {
      if (decodeDescriptor(readEntry(table, index, extended), context).kind === 'zero') zeroClusters.push(l1Index * l2Entries + index);
    }
  }
  for (const cluster of zeroClusters) {
    const offset = cluster * clusterSize;
    const length = Math.min(clusterSize, image.size - offset);
    if (length <= 0) continue;
    if (image.backing === undefined) await image.unmap(offset, length);
    else await image.writeAt(offset, new Uint8Array(length));
  }
}
