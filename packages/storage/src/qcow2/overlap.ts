import { ImageCorruptError } from '../errors.js';

/** The metadata structures a write must not land on (QEMU's QCOW2_OL_* bits). */
export enum MetadataKind {
  MainHeader = 1 << 0,
  ActiveL1 = 1 << 1,
  ActiveL2 = 1 << 2,
  RefcountTable = 1 << 3,
  RefcountBlock = 1 << 4,
  SnapshotTable = 1 << 5,
  InactiveL1 = 1 << 6,
  InactiveL2 = 1 << 7,
  BitmapDirectory = 1 << 8,
}

/** QEMU's names for them, as its "Preventing invalid write on metadata" message uses them. */
const NAMES: ReadonlyArray<[MetadataKind, string]> = [
  [MetadataKind.MainHeader, 'qcow2_header'],
  [MetadataKind.ActiveL1, 'active L1 table'],
  [MetadataKind.ActiveL2, 'active L2 table'],
  [MetadataKind.RefcountTable, 'refcount table'],
  [MetadataKind.RefcountBlock, 'refcount block'],
  [MetadataKind.SnapshotTable, 'snapshot table'],
  [MetadataKind.InactiveL1, 'inactive L1 table'],
  [MetadataKind.InactiveL2, 'inactive L2 table'],
  [MetadataKind.BitmapDirectory, 'bitmap directory'],
];

/**
 * QEMU's `overlap-check` option: which structures every write is checked
 * against. `cached` (QEMU's default) checks all but inactive L2 tables, which
 * would have to be read from the snapshots' L1 tables; `constant` only the
 * structures whose place is known without reading tables; `none` nothing.
 */
export type OverlapCheck = 'none' | 'constant' | 'cached' | 'all';

const CONSTANT = MetadataKind.MainHeader | MetadataKind.ActiveL1 | MetadataKind.RefcountTable | MetadataKind.SnapshotTable | MetadataKind.BitmapDirectory;
const CACHED = CONSTANT | MetadataKind.ActiveL2 | MetadataKind.RefcountBlock | MetadataKind.InactiveL1;
const MODES: Readonly<Record<OverlapCheck, number>> = { none: 0, constant: CONSTANT, cached: CACHED, all: CACHED | MetadataKind.InactiveL2 };

export function isOverlapCheck(value: string): value is OverlapCheck {
  return Object.hasOwn(MODES, value);
}

/**
 * Where an image's metadata lives, cluster by cluster, kept up to date as the
 * metadata changes, so every write to the image file can be checked before
 * it is made: a write of guest data or of one structure that would land on
 * another structure means the refcounts or tables are inconsistent, and the
 * write is refused (ImageCorruptError) instead of destroying the image.
 */
export class MetadataRegions {
  /** Per kind: cluster index → how many structures of that kind use it. */
  private readonly clusters = new Map<MetadataKind, Map<number, number>>();
  private readonly checked: number;

  constructor(
    private readonly clusterSize: number,
    mode: OverlapCheck,
  ) {
    this.checked = MODES[mode];
  }

  /** Whether structures of `kind` are checked (and so need tracking). */
  tracks(kind: MetadataKind): boolean {
    return (this.checked & kind) !== 0;
  }

  add(kind: MetadataKind, offset: number, length: number): void {
    if (!this.tracks(kind) || length <= 0) return;
    let map = this.clusters.get(kind);
    if (map === undefined) this.clusters.set(kind, (map = new Map()));
    const [first, last] = this.span(offset, length);
    for (let cluster = first; cluster <= last; cluster++) map.set(cluster, (map.get(cluster) ?? 0) + 1);
  }

  remove(kind: MetadataKind, offset: number, length: number): void {
    const map = this.clusters.get(kind);
    if (map === undefined || length <= 0) return;
    const [first, last] = this.span(offset, length);
    for (let cluster = first; cluster <= last; cluster++) {
      const count = map.get(cluster);
      if (count === undefined) continue;
      if (count <= 1) map.delete(cluster);
      else map.set(cluster, count - 1);
    }
  }

  clear(kind: MetadataKind): void {
    this.clusters.delete(kind);
  }

  /** The first structure (not of a kind in `ignore`) that `[offset, offset + length)` touches. */
  find(offset: number, length: number, ignore = 0): MetadataKind | undefined {
    if (length <= 0) return undefined;
    const [first, last] = this.span(offset, length);
    for (const [kind] of NAMES) {
      if ((kind & ignore) !== 0) continue;
      const map = this.clusters.get(kind);
      if (map === undefined || map.size === 0) continue;
      if (last - first + 1 <= map.size) {
        for (let cluster = first; cluster <= last; cluster++) if (map.has(cluster)) return kind;
      } else {
        for (const cluster of map.keys()) if (cluster >= first && cluster <= last) return kind;
      }
    }
    return undefined;
  }

  /** Throws QEMU's words if the write would land on metadata of a kind not in `ignore`. */
  check(offset: number, length: number, ignore = 0): void {
    const kind = this.find(offset, length, ignore);
    if (kind !== undefined) throw new ImageCorruptError(`Preventing invalid write on metadata (overlaps with ${nameOf(kind)})`);
  }

  private span(offset: number, length: number): [number, number] {
    return [Math.floor(offset / this.clusterSize), Math.floor((offset + length - 1) / this.clusterSize)];
  }
}

export function nameOf(kind: MetadataKind): string {
  return NAMES.find(([candidate]) => candidate === kind)?.[1] ?? 'metadata';
}
