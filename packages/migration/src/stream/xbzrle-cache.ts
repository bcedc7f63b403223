import { PAGE_SIZE } from '@tsvirt/interfaces';

/** Counters in the shape of QEMU's `xbzrle-cache` figures. */
export interface XbzrleCacheStats {
  /** Configured cache size in bytes. */
  readonly cacheSize: number;
  /** Bytes of XBZRLE deltas sent. */
  readonly bytes: number;
  /** Pages sent as XBZRLE deltas. */
  readonly pages: number;
  /** Dirty pages not found in the cache (sent whole). */
  readonly cacheMiss: number;
  /** `cacheMiss` over pages looked up. */
  readonly cacheMissRate: number;
  /** Page bytes represented by deltas over delta bytes sent (a compression ratio). */
  readonly encodingRate: number;
  /** Deltas that came out too big and were sent whole instead. */
  readonly overflow: number;
}

/**
 * The source's copies of pages as last sent, bounded to `cacheSize` bytes
 * with least-recently-used eviction. The destination needs no cache: its
 * memory holds exactly these bytes.
 */
export class XbzrleCache {
  private readonly pages = new Map<number, Uint8Array>();
  private readonly capacity: number;
  encodedBytes = 0;
  encodedPages = 0;
  misses = 0;
  lookups = 0;
  overflows = 0;

  constructor(readonly cacheSize: number) {
    this.capacity = Math.floor(cacheSize / PAGE_SIZE);
  }

  /** The page as last sent, counting a miss when absent. */
  lookup(page: number): Uint8Array | undefined {
    this.lookups++;
    const cached = this.pages.get(page);
    if (cached === undefined) this.misses++;
    return cached;
  }

  /** Records what was sent for `page` (copies `bytes`). */
  update(page: number, bytes: Uint8Array): void {
    if (this.capacity === 0) return;
    let slot = this.pages.get(page);
    if (slot !== undefined) {
      this.pages.delete(page);
    } else if (this.pages.size >= this.capacity) {
      const oldest = this.pages.keys().next().value!;
      slot = this.pages.get(oldest);
      this.pages.delete(oldest);
    }
    slot ??= new Uint8Array(PAGE_SIZE);
    slot.set(bytes);
    this.pages.set(page, slot);
  }

  /** Updates `page` only if it is cached (a page sent by another path, e.g. as a zero page, must not leave a stale copy). */
  refresh(page: number, bytes: Uint8Array): void {
    this.pages.get(page)?.set(bytes);
  }

  get size(): number {
    return this.pages.size;
  }

  stats(): XbzrleCacheStats {
    return {
      cacheSize: this.cacheSize,
      bytes: this.encodedBytes,
      pages: this.encodedPages,
      cacheMiss: this.misses,
      cacheMissRate: this.lookups === 0 ? 0 : this.misses / this.lookups,
      encodingRate: this.encodedBytes === 0 ? 0 : (this.encodedPages * PAGE_SIZE) / this.encodedBytes,
      overflow: this.overflows,
    };
  }
}
