import { describe, expect, it } from 'vitest';
import { test, fc } from '@fast-check/vitest';
import { xbzrleDecode, xbzrleEncode } from './xbzrle.js';
import { XbzrleCache } from './xbzrle-cache.js';

const PAGE = 4096;
const page = fc.uint8Array({ minLength: PAGE, maxLength: PAGE });
const edits = fc.array(fc.tuple(fc.nat({ max: PAGE - 1 }), fc.uint8Array({ minLength: 1, maxLength: 64 })), { maxLength: 40 });

function applyEdits(base: Uint8Array, changes: Array<[number, Uint8Array]>): Uint8Array {
  const result = base.slice();
  for (const [at, bytes] of changes) result.set(bytes.subarray(0, PAGE - at), at);
  return result;
}

test.prop([page, edits], { numRuns: 200 })('decoding the delta of two pages rebuilds the new page', (old, changes) => {
  const current = applyEdits(old, changes);
  const out = new Uint8Array(PAGE);
  const length = xbzrleEncode(old, current, out);
  if (length < 0) return; // too different: sent whole instead (checked below)
  const rebuilt = old.slice();
  expect(xbzrleDecode(out.subarray(0, length), rebuilt)).toBeUndefined();
  expect(rebuilt).toEqual(current);
});

test.prop([page, page], { numRuns: 50 })('a delta that does not fit reports overflow instead of writing past its buffer', (old, current) => {
  // The output is a view into a larger buffer: bytes past it must stay untouched.
  const backing = new Uint8Array(PAGE);
  const out = backing.subarray(0, PAGE / 2);
  const length = xbzrleEncode(old, current, out);
  expect(length === -1 || length <= out.length).toBe(true);
  expect(backing.subarray(PAGE / 2).every((value) => value === 0)).toBe(true);
});

test.prop([fc.uint8Array({ maxLength: 5000 }), page], { numRuns: 300 })('any bytes given as a delta either decode within the page or are refused with a reason', (delta, base) => {
  const target = base.slice();
  const problem = xbzrleDecode(delta, target);
  expect(problem === undefined || typeof problem === 'string').toBe(true);
  expect(target.length).toBe(PAGE);
});

describe('xbzrle', () => {
  it('encodes a one-byte change in a few bytes, and nothing for an unchanged page', () => {
    const old = new Uint8Array(PAGE).fill(7);
    const current = old.slice();
    current[1000] = 8;
    const out = new Uint8Array(PAGE);
    // zrun 1000 = 0xe8 0x07 in LEB128, nzrun 1, then the byte.
    expect([...out.subarray(0, xbzrleEncode(old, current, out))]).toEqual([0xe8, 0x07, 1, 8]);
    expect(xbzrleEncode(old, old, out)).toBe(0);
  });

  it('refuses runs past the page, dangling runs and empty changed runs', () => {
    const target = new Uint8Array(PAGE);
    expect(xbzrleDecode(new Uint8Array([0x80, 0x20, 1, 5]), target)).toMatch(/past the page/); // zrun 4096 then 1 byte
    expect(xbzrleDecode(new Uint8Array([4]), target)).toMatch(/unchanged run/);
    expect(xbzrleDecode(new Uint8Array([0, 0]), target)).toMatch(/empty/);
    expect(xbzrleDecode(new Uint8Array([0, 3, 1]), target)).toMatch(/inside a changed run/);
    expect(xbzrleDecode(new Uint8Array([0xff, 0xff, 0x7f]), target)).toMatch(/bad run length/);
  });
});

describe('XbzrleCache', () => {
  it('keeps at most cacheSize bytes of pages, evicting the least recently sent', () => {
    const cache = new XbzrleCache(2 * PAGE);
    const bytes = new Uint8Array(PAGE);
    cache.update(1, bytes.fill(1));
    cache.update(2, bytes.fill(2));
    cache.update(1, bytes.fill(3)); // 1 is now the most recent
    cache.update(3, bytes.fill(4)); // evicts 2
    expect(cache.size).toBe(2);
    expect(cache.lookup(2)).toBeUndefined();
    expect(cache.lookup(1)![0]).toBe(3);
    expect(cache.lookup(3)![0]).toBe(4);
    expect(cache.stats()).toMatchObject({ cacheSize: 2 * PAGE, cacheMiss: 1, cacheMissRate: 1 / 3 });
  });
});
