import { stat } from 'node:fs/promises';
import { INCOMPAT_CORRUPT, INCOMPAT_DIRTY, INCOMPAT_EXTENDED_L2, COMPAT_LAZY_REFCOUNTS } from '../qcow2/format.js';
import { Qcow2Backend } from '../qcow2/qcow2.js';
import { readSnapshotTable } from '../qcow2/snapshots.js';
import { isNbdUri, type OpenedImage, openImage, resolveBackingPath } from '../open.js';

/** `qemu-img info --output=json`, field for field where this library has the answer. */
export interface ImageInfo {
  'virtual-size': number;
  filename: string;
  format: string;
  'actual-size': number;
  'cluster-size'?: number;
  'dirty-flag': boolean;
  'backing-filename'?: string;
  'full-backing-filename'?: string;
  'backing-filename-format'?: string;
  snapshots?: Array<{ id: string; name: string; 'vm-state-size': number; 'date-sec': number; 'date-nsec': number; 'vm-clock-sec': number; 'vm-clock-nsec': number }>;
  'format-specific'?: {
    type: 'qcow2';
    data: {
      compat: string;
      'compression-type': string;
      'lazy-refcounts': boolean;
      'refcount-bits': number;
      corrupt: boolean;
      'extended-l2': boolean;
      'data-file'?: string;
      'data-file-raw'?: boolean;
    };
  };
}

async function describe(image: OpenedImage): Promise<ImageInfo> {
  const stats = isNbdUri(image.path) ? { blocks: 0 } : await stat(image.path);
  const info: ImageInfo = {
    'virtual-size': image.backend.size,
    filename: image.path,
    format: image.format,
    'actual-size': stats.blocks * 512,
    'dirty-flag': false,
  };
  const backend = image.backend;
  if (backend instanceof Qcow2Backend) {
    const header = backend.header;
    info['cluster-size'] = backend.clusterSize;
    info['dirty-flag'] = (header.incompatibleFeatures & INCOMPAT_DIRTY) !== 0n;
    if (image.backingFile !== undefined) {
      info['backing-filename'] = image.backingFile;
      info['full-backing-filename'] = resolveBackingPath(image.path, image.backingFile);
      if (image.backingFormat !== undefined) info['backing-filename-format'] = image.backingFormat;
    }
    if (header.snapshotCount > 0) {
      const { snapshots } = await readSnapshotTable(backend);
      info.snapshots = snapshots.map((snapshot) => ({
        id: snapshot.id,
        name: snapshot.name,
        'vm-state-size': snapshot.vmStateSize,
        'date-sec': snapshot.dateSeconds,
        'date-nsec': snapshot.dateNanoseconds,
        'vm-clock-sec': Math.floor(snapshot.vmClockNanoseconds / 1e9),
        'vm-clock-nsec': snapshot.vmClockNanoseconds % 1e9,
      }));
    }
    const data: NonNullable<ImageInfo['format-specific']>['data'] = {
      compat: header.version === 2 ? '0.10' : '1.1',
      'compression-type': header.compressionType,
      'lazy-refcounts': (header.compatibleFeatures & COMPAT_LAZY_REFCOUNTS) !== 0n,
      'refcount-bits': 2 ** header.refcountOrder,
      corrupt: (header.incompatibleFeatures & INCOMPAT_CORRUPT) !== 0n,
      'extended-l2': (header.incompatibleFeatures & INCOMPAT_EXTENDED_L2) !== 0n,
    };
    if (backend.probe.extensions.dataFile !== undefined) {
      data['data-file'] = backend.probe.extensions.dataFile;
      data['data-file-raw'] = (header.autoclearFeatures & 2n) !== 0n;
    }
    if (header.version === 2) {
      // qemu-img reports only these for compat 0.10.
      info['format-specific'] = { type: 'qcow2', data: { compat: '0.10', 'compression-type': 'zlib', 'refcount-bits': 16 } as typeof data };
    } else {
      info['format-specific'] = { type: 'qcow2', data };
    }
  }
  return info;
}

/** Describes an image, and with `backingChain` every image under it (top first). */
export async function imageInfo(path: string, options: { backingChain?: boolean; format?: 'raw' | 'qcow2'; forceShare?: boolean } = {}): Promise<ImageInfo[]> {
  const opened = await openImage(path, {
    readOnly: true,
    backing: options.backingChain ?? false,
    forceShare: options.forceShare ?? false,
    ...(options.format ? { format: options.format } : {}),
  });
  try {
    const result: ImageInfo[] = [];
    for (let layer: OpenedImage | undefined = opened; layer !== undefined; layer = layer.backing) {
      result.push(await describe(layer));
      if (!options.backingChain) break;
    }
    return result;
  } finally {
    await opened.backend.close();
  }
}
