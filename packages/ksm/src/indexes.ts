import type { TrackedGuest } from './tracked-guest.js';

/** One guest page, as the indexes refer to it. */
export interface PageRef {
  readonly guest: TrackedGuest;
  readonly page: number;
}

/**
 * A merged frame and the pages mapping it (Linux's stable node). `members`
 * may hold stale entries (pages that broke copy-on-write since): a member
 * counts only while its page still records this node and maps this frame.
 */
export interface StableNode {
  readonly id: number;
  readonly frame: number;
  /** Checksum of the frame's bytes, which cannot change while it is shared. */
  readonly key: number;
  readonly domain: string;
  members: PageRef[];
  /** Position in its stable bucket, for O(1) removal. */
  slot: number;
}

/** Longest unstable bucket kept: identical pages merge on contact, so only checksum collisions fill one. */
export const UNSTABLE_BUCKET_LIMIT = 8;

/**
 * The indexes of one merge domain. Linux keys its trees by page contents
 * (memcmp order); here both are hash maps keyed by the page checksum, and
 * every hit is confirmed by a full byte comparison before merging.
 */
export class DomainIndex {
  /** Checksum → merged frames with that checksum. Several when `max_page_sharing` split one content into a chain. */
  readonly stable = new Map<number, StableNode[]>();
  /** Checksum → pages seen unchanged twice this full scan; rebuilt every full scan. */
  readonly unstable = new Map<number, PageRef[]>();
  unstableEntries = 0;

  addNode(node: StableNode): void {
    let bucket = this.stable.get(node.key);
    if (bucket === undefined) {
      bucket = [];
      this.stable.set(node.key, bucket);
    }
    node.slot = bucket.length;
    bucket.push(node);
  }

  removeNode(node: StableNode): void {
    const bucket = this.stable.get(node.key);
    if (bucket === undefined || bucket[node.slot] !== node) return;
    const last = bucket.pop()!;
    if (last !== node) {
      bucket[node.slot] = last;
      last.slot = node.slot;
    }
    if (bucket.length === 0) this.stable.delete(node.key);
  }

  /** Returns false, indexing nothing, when the bucket is full. */
  addCandidate(key: number, ref: PageRef): boolean {
    let bucket = this.unstable.get(key);
    if (bucket === undefined) {
      bucket = [];
      this.unstable.set(key, bucket);
    }
    if (bucket.length >= UNSTABLE_BUCKET_LIMIT) return false;
    bucket.push(ref);
    this.unstableEntries++;
    return true;
  }

  removeCandidate(key: number, bucket: PageRef[], index: number): void {
    bucket.splice(index, 1);
    this.unstableEntries--;
    if (bucket.length === 0) this.unstable.delete(key);
  }

  clearUnstable(): void {
    this.unstable.clear();
    this.unstableEntries = 0;
  }
}
