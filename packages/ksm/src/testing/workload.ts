import { PAGE_SIZE, guestAddress } from '@tsvirt/interfaces';
import { FramePool, GuestRam } from '@tsvirt/memory';

export interface IdenticalPagesOptions {
  readonly guests: number;
  readonly pagesPerGuest: number;
  /** Fraction of each guest's pages, in [0, 1], that hold contents every guest has (a shared kernel, say). */
  readonly identicalFraction: number;
  /** Distinct contents among the identical pages (each repeated across guests and within them). Default 64. */
  readonly templates?: number;
  readonly seed?: number;
}

export interface IdenticalPagesWorkload {
  readonly pool: FramePool;
  readonly rams: GuestRam[];
  /** Pages per guest holding template contents; the rest are unique. */
  readonly identicalPages: number;
}

/**
 * Guest memories in one pool, every page written: the first
 * `identicalFraction` of each guest's pages cycle through shared templates,
 * the others hold pseudo-random bytes unique to their guest and page.
 */
export function identicalPagesWorkload(options: IdenticalPagesOptions): IdenticalPagesWorkload {
  const pool = new FramePool();
  const templateCount = Math.max(1, options.templates ?? 64);
  let state = (options.seed ?? 0x5eed) >>> 0 || 1;
  const random = (): number => {
    // xorshift32: deterministic filler bytes.
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 0;
  };
  const fillRandom = (page: Uint8Array): void => {
    const words = new Uint32Array(page.buffer, page.byteOffset, PAGE_SIZE / 4);
    for (let i = 0; i < words.length; i++) words[i] = random();
  };
  const templates = Array.from({ length: templateCount }, () => {
    const page = new Uint8Array(PAGE_SIZE);
    fillRandom(page);
    return page;
  });
  const identicalPages = Math.round(options.pagesPerGuest * Math.min(1, Math.max(0, options.identicalFraction)));
  const scratch = new Uint8Array(PAGE_SIZE);
  const rams = Array.from({ length: options.guests }, () => {
    const ram = new GuestRam({ size: options.pagesPerGuest * PAGE_SIZE, pool });
    for (let page = 0; page < options.pagesPerGuest; page++) {
      if (page < identicalPages) {
        ram.write(guestAddress(page * PAGE_SIZE), templates[page % templateCount]!);
      } else {
        fillRandom(scratch);
        ram.write(guestAddress(page * PAGE_SIZE), scratch);
      }
    }
    return ram;
  });
  return { pool, rams, identicalPages };
}
