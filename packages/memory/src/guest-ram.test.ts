import { FrameAccess, GuestMemoryError, PAGE_SIZE, StateError, guestAddress as a } from '@tsvirt/interfaces';
import { describe, expect, it } from 'vitest';
import { FramePool } from './frame-pool.js';
import { GuestRam } from './guest-ram.js';
import { guestMemoryContract } from './testing/index.js';

guestMemoryContract('GuestRam', { create: (size) => new GuestRam({ size }) });

describe('GuestRam', () => {
  it('holds no frame until a page is written', () => {
    const pool = new FramePool();
    const ram = new GuestRam({ size: 1 << 30, pool });
    expect(ram.readU32(a(0x3000_0000))).toBe(0);
    ram.fill(a(0), 1 << 20, 0);
    expect(pool.stats().framesHeld).toBe(0);
    ram.writeU8(a(0x3000_0000), 1);
    ram.writeU8(a(0x3000_0fff), 1);
    expect(pool.stats()).toMatchObject({ framesHeld: 1, bytesHeld: PAGE_SIZE, pagesMapped: 1 });
    expect(ram.stats()).toMatchObject({ ramPages: (1 << 30) / PAGE_SIZE, pagesMapped: 1, pagesShared: 0 });
  });

  it('reports holes between regions and refuses to touch them', () => {
    const ram = new GuestRam({ regions: [{ start: 0, size: 0xa_0000 }, { start: 0x10_0000, size: 0x10_0000 }] });
    expect(ram.size).toBe(0x20_0000);
    expect(ram.isRam(a(0x9_ffff))).toBe(true);
    expect(ram.isRam(a(0x9_ffff), 2)).toBe(false);
    expect(ram.isRam(a(0xb_8000))).toBe(false);
    expect(ram.frameOf(a(0xb_8000), FrameAccess.Read)).toBeUndefined();
    expect(() => ram.writeU32(a(0x9_fffe), 1)).toThrow(expect.objectContaining({ reason: 'not-ram' }));
    expect(ram.readU16(a(0x9_fffe))).toBe(0); // nothing was written by the refused access
    expect(() => ram.read(a(0x9_f000), new Uint8Array(0x2000))).toThrow(GuestMemoryError);
  });

  it('rejects malformed layouts', () => {
    expect(() => new GuestRam({})).toThrow(RangeError);
    expect(() => new GuestRam({ size: 100 })).toThrow(RangeError);
    expect(() => new GuestRam({ regions: [{ start: 0, size: 0x2000 }, { start: 0x1000, size: 0x1000 }] })).toThrow(/overlaps/);
  });

  it('shares identical pages across memories and copies on the first write', () => {
    const pool = new FramePool();
    const first = new GuestRam({ size: 0x10000, pool });
    const second = new GuestRam({ size: 0x10000, pool });
    first.fill(a(0x1000), PAGE_SIZE, 0x5a);
    second.fill(a(0x4000), PAGE_SIZE, 0x5a);
    second.fill(a(0x5000), PAGE_SIZE, 0x5b);
    expect(second.mergeFrom(a(0x5000), first, a(0x1000))).toBe(false);
    expect(second.mergeFrom(a(0x4000), first, a(0x1000))).toBe(true);
    expect(pool.stats()).toMatchObject({ framesHeld: 2, framesShared: 1, pagesMapped: 3, bytesSaved: PAGE_SIZE });
    expect(first.stats().pagesShared).toBe(1);

    const invalidated: number[] = [];
    first.onInvalidate((page) => invalidated.push(page));
    first.frameOf(a(0x1000), FrameAccess.Read);
    second.writeU8(a(0x4000), 1); // copy-on-write: only the writer sees the change
    expect(second.readU8(a(0x4000))).toBe(1);
    expect(first.readU8(a(0x1000))).toBe(0x5a);
    expect(pool.stats()).toMatchObject({ framesHeld: 3, framesShared: 0, bytesSaved: 0 });

    // A frame handed out for writing is taken back when its page becomes shared.
    second.fill(a(0x4000), PAGE_SIZE, 0x5a);
    first.frameOf(a(0x1000), FrameAccess.Write);
    invalidated.length = 0;
    expect(second.mergeFrom(a(0x4000), first, a(0x1000))).toBe(true);
    expect(invalidated).toEqual([1]);
    expect(first.unshare(a(0x1000))).toBe(true);
    expect(first.unshare(a(0x1000))).toBe(false);
    expect(pool.stats().framesShared).toBe(0);
  });

  it('refuses to merge memories of different pools', () => {
    const one = new GuestRam({ size: 0x2000 });
    const other = new GuestRam({ size: 0x2000 });
    expect(() => one.mergeFrom(a(0), other, a(0))).toThrow(/different frame pools/);
  });

  it('releases zero pages and returns emptied slabs to the host', () => {
    const pool = new FramePool();
    const ram = new GuestRam({ size: 16 << 20, pool });
    ram.fill(a(0), 16 << 20, 1);
    expect(pool.stats().slabBytes).toBe(16 << 20);
    ram.discard(a(0), 12 << 20);
    expect(pool.stats()).toMatchObject({ framesHeld: 1024, slabBytes: 8 << 20 });
    ram.fill(a(15 << 20), PAGE_SIZE, 0);
    expect(ram.releaseIfZero(a(15 << 20))).toBe(true);
    expect(ram.releaseIfZero(a(14 << 20))).toBe(false);
    expect(pool.stats().framesHeld).toBe(1023);
  });

  it('round-trips its contents and sharing through save and restore', () => {
    const ram = new GuestRam({ size: 0x8000 });
    ram.fill(a(0x1000), PAGE_SIZE, 3);
    ram.fill(a(0x2000), PAGE_SIZE, 3);
    expect(ram.mergeFrom(a(0x2000), ram, a(0x1000))).toBe(true);
    ram.writeU32(a(0x7ffc), 0xfeedface);
    const saved = JSON.parse(JSON.stringify(ram.save()));
    expect(saved.frames).toHaveLength(2);

    const copy = new GuestRam({ size: 0x8000 });
    copy.writeU8(a(0x3000), 9);
    copy.restore(saved);
    expect(copy.readU8(a(0x3000))).toBe(0);
    expect(copy.readU32(a(0x7ffc))).toBe(0xfeedface);
    expect(copy.stats()).toMatchObject({ pagesMapped: 3, pagesShared: 2 });
  });

  it('rejects saved states that do not fit, changing nothing', () => {
    const ram = new GuestRam({ size: 0x4000 });
    ram.writeU8(a(0), 1);
    const good = ram.save();
    const bad = [
      { ...good, version: 2 },
      { ...good, regions: [{ start: 0, size: 0x8000 }] },
      { ...good, frames: [{ pages: [7], data: good.frames[0]!.data }] },
      { ...good, frames: [{ pages: [0], data: 'AAAA' }] },
      { ...good, frames: [{ pages: [0, 0], data: good.frames[0]!.data }] },
      { ...good, frames: [{ pages: [], data: good.frames[0]!.data }] },
      null,
    ];
    for (const state of bad) expect(() => ram.restore(state)).toThrow(StateError);
    expect(ram.readU8(a(0))).toBe(1);
  });
});
