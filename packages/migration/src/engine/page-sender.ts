import { PAGE_SIZE, guestAddress, type GuestMemory } from '@tsvirt/interfaces';
import { FrameType } from '../stream/format.js';
import type { FrameWriter } from '../stream/frame-writer.js';
import { RamPageBatch } from '../stream/ram-pages.js';
import { xbzrleEncode } from '../stream/xbzrle.js';
import type { XbzrleCache } from '../stream/xbzrle-cache.js';

/** Page counters, as query-migrate reports them. */
export interface PageCounters {
  normal: number;
  duplicate: number;
  xbzrle: number;
  /** Dirty pages whose bytes had not changed since last sent (nothing sent). */
  unchanged: number;
}

/**
 * Turns pages into records: zero pages as zero records, re-sent pages as
 * XBZRLE deltas when the cache has them, the rest whole. Reads each page
 * once into an aligned scratch buffer, so what is sent and what the cache
 * keeps are the same snapshot of the page.
 */
export class PageSender {
  private batch: RamPageBatch;
  private readonly scratch = new Uint32Array(PAGE_SIZE / 4);
  private readonly scratchBytes = new Uint8Array(this.scratch.buffer);
  /** XBZRLE output is bounded below a page so a delta never costs more than the page. */
  private readonly delta = new Uint8Array(PAGE_SIZE - 256);
  readonly counters: PageCounters = { normal: 0, duplicate: 0, xbzrle: 0, unchanged: 0 };

  constructor(
    private readonly memory: GuestMemory,
    public writer: FrameWriter,
    private readonly batchBytes: number,
    private readonly cache: XbzrleCache | undefined,
  ) {
    this.batch = new RamPageBatch(batchBytes);
  }

  /** Adds one page; returns true when the batch is full and should be flushed. */
  add(page: number, useCache: boolean): boolean {
    this.memory.read(guestAddress(page * PAGE_SIZE), this.scratchBytes);
    if (isZero(this.scratch)) {
      this.batch.addZero(page);
      this.counters.duplicate++;
      this.cache?.refresh(page, this.scratchBytes);
    } else if (this.cache !== undefined && useCache) {
      this.addCached(page, this.cache);
    } else {
      this.batch.addNormal(page, this.scratchBytes);
      this.counters.normal++;
    }
    return this.batch.full;
  }

  async flush(): Promise<void> {
    if (this.batch.empty) return;
    const { buffer, payloadLength } = this.batch.take();
    await this.writer.writeBuilt(FrameType.RamPages, buffer, payloadLength);
  }

  /** Drops the records not yet flushed (their pages will be sent again). */
  discard(): void {
    this.batch.take();
  }

  private addCached(page: number, cache: XbzrleCache): void {
    const previous = cache.lookup(page);
    if (previous !== undefined) {
      const length = xbzrleEncode(previous, this.scratchBytes, this.delta);
      if (length === 0) {
        this.counters.unchanged++;
        return;
      }
      if (length > 0) {
        this.batch.addXbzrle(page, this.delta.subarray(0, length));
        cache.update(page, this.scratchBytes);
        cache.encodedPages++;
        cache.encodedBytes += length;
        this.counters.xbzrle++;
        return;
      }
      cache.overflows++;
    }
    this.batch.addNormal(page, this.scratchBytes);
    cache.update(page, this.scratchBytes);
    this.counters.normal++;
  }
}

function isZero(words: Uint32Array): boolean {
  for (let index = 0; index < words.length; index++) if (words[index] !== 0) return false;
  return true;
}
