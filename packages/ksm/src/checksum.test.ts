import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { PAGE_WORDS, pageChecksum } from './checksum.js';

function page(fill: (index: number) => number): Uint32Array {
  return Uint32Array.from({ length: PAGE_WORDS }, (_, index) => fill(index));
}

describe('pageChecksum', () => {
  it('depends only on the page, wherever it sits in the slab', () => {
    const slab = new Uint32Array(PAGE_WORDS * 3);
    const content = page((index) => index * 2_654_435_761);
    slab.set(content, PAGE_WORDS * 2);
    expect(pageChecksum(slab, PAGE_WORDS * 2, 1)).toBe(pageChecksum(content, 0, 1));
    expect(pageChecksum(slab, 0, 1)).toBe(pageChecksum(new Uint32Array(PAGE_WORDS), 0, 1));
  });

  it('is a 53-bit non-negative integer that changes with the key', () => {
    const content = page((index) => index);
    const one = pageChecksum(content, 0, 1);
    expect(Number.isSafeInteger(one) && one >= 0).toBe(true);
    expect(pageChecksum(content, 0, 2)).not.toBe(one);
  });

  it('tells apart pages that differ in word order only', () => {
    const forward = page((index) => index);
    const backward = page((index) => PAGE_WORDS - 1 - index);
    expect(pageChecksum(forward, 0, 0)).not.toBe(pageChecksum(backward, 0, 0));
  });

  test.prop([fc.integer({ min: 0, max: PAGE_WORDS - 1 }), fc.integer({ min: 0, max: 31 }), fc.integer()], { numRuns: 300 })(
    'changes when any single bit of the page flips',
    (word, bit, seed) => {
      const content = page((index) => (index * 0x9e37_79b9) >>> 0);
      const before = pageChecksum(content, 0, seed);
      content[word] = (content[word]! ^ (1 << bit)) >>> 0;
      expect(pageChecksum(content, 0, seed)).not.toBe(before);
    },
  );
});
