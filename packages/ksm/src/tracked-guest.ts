import { PAGE_SIZE, type GuestAddress } from '@tsvirt/interfaces';
import type { GuestRam } from '@tsvirt/memory';

/** What the scanner last concluded about a page (Linux keeps the same facts in its rmap items). */
export const PageState = {
  /** Not scanned yet, frameless, or forgotten: no checksum on record. */
  Unseen: 0,
  /** Its checksum changed since the previous scan (or this was its first): not worth indexing yet. */
  Volatile: 1,
  /** Unchanged since the previous scan and matched nothing: in this full scan's unstable index. */
  Unshared: 2,
  /** Maps a merged frame (a stable node). */
  Stable: 3,
  /** All zeros; its frame was given back (`use_zero_pages`). */
  Zero: 4,
} as const;
export type PageState = (typeof PageState)[keyof typeof PageState];

/** Bytes of scanner bookkeeping per guest page (the arrays below). */
export const TRACKING_BYTES_PER_PAGE = 1 + 8 + 4 + 1 + 1;

/** How a guest takes part in merging. */
export interface KsmGuestOptions {
  /**
   * The merge domain (a tenant): pages merge across guests only when both
   * guests name the same domain. Without one, the guest merges only with
   * itself, because merging across tenants lets one time the other's
   * copy-on-write breaks and learn what it holds.
   */
  readonly domain?: string;
  /** False opts the guest out entirely: never scanned, never merged. Default true. */
  readonly mergeable?: boolean;
}

/** A registered guest memory and the scanner's per-page record of it. */
export class TrackedGuest {
  readonly pageCount: number;
  /** Runs of RAM pages: [first, end) pairs, holes left out. */
  readonly ranges: ReadonlyArray<readonly [number, number]>;
  readonly state: Uint8Array;
  /** The page's checksum at its last scan. */
  readonly checksum: Float64Array;
  /** The stable node the page was merged into, or -1. */
  readonly node: Int32Array;
  /** Consecutive scans without a merge, saturating (smart scan). */
  readonly age: Uint8Array;
  /** Scans still to skip before looking at the page again (smart scan). */
  readonly skips: Uint8Array;
  domainKey: string;
  domain: string | undefined;
  mergeable: boolean;
  registered = true;
  /** Pages this guest had scanned, cumulative. */
  pagesScanned = 0;

  constructor(
    readonly id: string,
    readonly ram: GuestRam,
    options: KsmGuestOptions,
  ) {
    this.pageCount = ram.size / PAGE_SIZE;
    this.ranges = ram.regions.map((region) => [region.start / PAGE_SIZE, (region.start + region.size) / PAGE_SIZE] as const);
    this.state = new Uint8Array(this.pageCount);
    this.checksum = new Float64Array(this.pageCount);
    this.node = new Int32Array(this.pageCount).fill(-1);
    this.age = new Uint8Array(this.pageCount);
    this.skips = new Uint8Array(this.pageCount);
    this.domain = options.domain;
    this.domainKey = domainKeyOf(id, options.domain);
    this.mergeable = options.mergeable ?? true;
  }

  address(page: number): GuestAddress {
    return (page * PAGE_SIZE) as GuestAddress;
  }

  frameOf(page: number): number {
    return this.ram.frameIdOf(this.address(page));
  }

  /** Forgets everything learnt about the pages (their contents stay as they are). */
  forget(): void {
    this.state.fill(PageState.Unseen);
    this.node.fill(-1);
    this.age.fill(0);
    this.skips.fill(0);
  }

  get trackingBytes(): number {
    return this.pageCount * TRACKING_BYTES_PER_PAGE;
  }
}

/** Guests without a domain each get one of their own; the prefixes keep the two kinds apart. */
export function domainKeyOf(id: string, domain: string | undefined): string {
  return domain === undefined ? `guest:${id}` : `domain:${domain}`;
}
