import { describe, expect, it } from 'vitest';
import { CodeCache } from './code-cache.js';

describe('CodeCache', () => {
  it('keeps a page array per physical page, below and above 4 GiB', () => {
    const cache = new CodeCache();
    expect(cache.get(5)).toBeUndefined();
    const low = cache.create(5);
    const high = cache.create(2 ** 21 + 3);
    expect(low).toHaveLength(4096);
    expect(cache.get(5)).toBe(low);
    expect(cache.get(2 ** 21 + 3)).toBe(high);
    expect(cache.get(4)).toBeUndefined();
    expect(cache.get(6)).toBeUndefined();
    expect(cache.size).toBe(2);
  });

  it('drops exactly the pages of a range', () => {
    const cache = new CodeCache();
    for (const page of [1, 2, 3, 9, 2 ** 21, 2 ** 21 + 1]) cache.create(page);
    cache.drop(2, 2);
    expect([1, 2, 3, 9].map((page) => cache.get(page) !== undefined)).toEqual([true, false, false, true]);
    cache.drop(2 ** 21 + 1, 1);
    expect(cache.get(2 ** 21)).toBeDefined();
    expect(cache.get(2 ** 21 + 1)).toBeUndefined();
    expect(cache.size).toBe(3);
    // A range wider than the map is scanned by key.
    cache.drop(0, 2 ** 22);
    expect(cache.size).toBe(0);
    expect(cache.get(1)).toBeUndefined();
    expect(cache.get(2 ** 21)).toBeUndefined();
  });

  it('replacing a page does not count it twice, and clear forgets everything', () => {
    const cache = new CodeCache();
    cache.create(7);
    const again = cache.create(7);
    expect(cache.get(7)).toBe(again);
    expect(cache.size).toBe(1);
    cache.clear();
    expect(cache.size).toBe(0);
    expect(cache.get(7)).toBeUndefined();
  });
});
