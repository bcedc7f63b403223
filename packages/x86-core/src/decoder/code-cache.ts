import type { Instruction } from './instruction.js';

/** Pages below this number (the first 4 GiB) are found by indexing an array; the rare ones above in a map. */
const INDEXED_PAGES = 1 << 20;

/**
 * Decoded instructions per physical page, indexed by offset in the page.
 * Pages are dropped when their bytes may have changed.
 */
export class CodeCache {
  /** Looked up every time execution moves to another code page: an element load, not a hash lookup. */
  private readonly indexed: Array<Array<Instruction | undefined> | undefined> = [];
  private readonly high = new Map<number, Array<Instruction | undefined>>();
  private count = 0;

  get(physicalPage: number): Array<Instruction | undefined> | undefined {
    return physicalPage < INDEXED_PAGES ? this.indexed[physicalPage] : this.high.get(physicalPage);
  }

  create(physicalPage: number): Array<Instruction | undefined> {
    const page = new Array<Instruction | undefined>(4096).fill(undefined);
    if (this.get(physicalPage) === undefined) this.count++;
    if (physicalPage < INDEXED_PAGES) {
      // Grow with undefined (not holes) so the array stays one elements kind.
      while (this.indexed.length <= physicalPage) this.indexed.push(undefined);
      this.indexed[physicalPage] = page;
    } else this.high.set(physicalPage, page);
    return page;
  }

  drop(first: number, count: number): void {
    if (this.count === 0) return;
    const indexedEnd = Math.min(first + count, this.indexed.length);
    for (let page = first; page < indexedEnd; page++) {
      if (this.indexed[page] !== undefined) {
        this.indexed[page] = undefined;
        this.count--;
      }
    }
    if (this.high.size === 0) return;
    if (count > this.high.size) {
      for (const page of [...this.high.keys()]) if (page >= first && page < first + count && this.high.delete(page)) this.count--;
    } else {
      for (let page = first; page < first + count; page++) if (this.high.delete(page)) this.count--;
    }
  }

  clear(): void {
    this.indexed.length = 0;
    this.high.clear();
    this.count = 0;
  }

  get size(): number {
    return this.count;
  }
}
