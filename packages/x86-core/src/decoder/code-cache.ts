import type { Instruction } from './instruction.js';

/**
 * Decoded instructions per physical page, indexed by offset in the page.
 * Pages are dropped when their bytes may have changed.
 */
export class CodeCache {
  private readonly pages = new Map<number, Array<Instruction | undefined>>();

  get(physicalPage: number): Array<Instruction | undefined> | undefined {
    return this.pages.get(physicalPage);
  }

  create(physicalPage: number): Array<Instruction | undefined> {
    const page = new Array<Instruction | undefined>(4096).fill(undefined);
    this.pages.set(physicalPage, page);
    return page;
  }

  drop(first: number, count: number): void {
    if (count > this.pages.size) {
      for (const page of [...this.pages.keys()]) if (page >= first && page < first + count) this.pages.delete(page);
    } else {
      for (let page = first; page < first + count; page++) this.pages.delete(page);
    }
  }

  clear(): void {
    this.pages.clear();
  }

  get size(): number {
    return this.pages.size;
  }
}
