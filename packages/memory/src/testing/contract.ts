import { FrameAccess, GuestMemoryError, guestAddress, type GuestMemory } from '@tsvirt/interfaces';
import { describe, expect, it } from 'vitest';

export interface GuestMemoryContractOptions {
  /** A fresh memory with RAM from 0 to `size` (at least 64 KiB) and nothing written. */
  readonly create: (size: number) => GuestMemory;
}

const a = guestAddress;

/**
 * The behaviour any GuestMemory must show, as a vitest suite: zero reads,
 * little-endian fixed-width access, page-crossing access, range checks that
 * touch nothing, the dirty log, invalidation and discard.
 */
export function guestMemoryContract(name: string, { create }: GuestMemoryContractOptions): void {
  const size = 1 << 16;
  describe(`GuestMemory contract: ${name}`, () => {
    it('reads never-written memory as zeros', () => {
      const memory = create(size);
      const bytes = new Uint8Array(8192).fill(1);
      memory.read(a(0x1000), bytes);
      expect(bytes.every((b) => b === 0)).toBe(true);
      expect(memory.readU32(a(0x3000))).toBe(0);
      expect(memory.readU64(a(0x3000))).toBe(0n);
    });

    it('stores fixed-width values little-endian, aligned or not, across pages', () => {
      const memory = create(size);
      for (const at of [0x100, 0x101, 0xffd, 0xfff, 0x1ffe]) {
        memory.writeU32(a(at), 0x1234_5678);
        expect(memory.readU32(a(at))).toBe(0x1234_5678);
        expect(memory.readU8(a(at))).toBe(0x78);
        expect(memory.readU16(a(at + 2))).toBe(0x1234);
      }
      memory.writeU64(a(0x2ffc), 0x0102_0304_0506_0708n);
      expect(memory.readU64(a(0x2ffc))).toBe(0x0102_0304_0506_0708n);
      expect(memory.readU32(a(0x3000))).toBe(0x0102_0304);
      memory.writeU16(a(0x4fff), 0xbeef);
      expect(memory.readU8(a(0x4fff))).toBe(0xef);
      expect(memory.readU8(a(0x5000))).toBe(0xbe);
      memory.writeU8(a(0x10), 0x1ff);
      expect(memory.readU8(a(0x10))).toBe(0xff);
    });

    it('copies bulk data across page boundaries', () => {
      const memory = create(size);
      const data = Uint8Array.from({ length: 10_000 }, (_, i) => (i * 31) & 0xff);
      memory.write(a(0x0f00), data);
      const back = new Uint8Array(10_000);
      memory.read(a(0x0f00), back);
      expect(back).toEqual(data);
      memory.fill(a(0x1000), 0x10, 0xab);
      expect(memory.readU8(a(0x100f))).toBe(0xab);
      expect(memory.readU8(a(0x1010))).toBe(data[0x110]);
    });

    it('refuses out-of-range and non-integer accesses without touching anything', () => {
      const memory = create(size);
      memory.writeU8(a(size - 1), 7);
      expect(() => memory.writeU32(a(size - 2), 0xffff_ffff)).toThrow(GuestMemoryError);
      expect(memory.readU8(a(size - 1))).toBe(7);
      expect(() => memory.readU8(a(size))).toThrow(GuestMemoryError);
      expect(() => memory.read(a(size - 4), new Uint8Array(5))).toThrow(GuestMemoryError);
      expect(() => memory.readU32(1.5 as never)).toThrow(GuestMemoryError);
      expect(() => memory.readU32(-4 as never)).toThrow(GuestMemoryError);
      expect(() => memory.write(Number.NaN as never, new Uint8Array(1))).toThrow(GuestMemoryError);
      memory.read(a(size), new Uint8Array(0));
      expect(memory.isRam(a(size - 1))).toBe(true);
      expect(memory.isRam(a(size - 1), 2)).toBe(false);
      expect(memory.frameOf(a(size), FrameAccess.Read)).toBeUndefined();
    });

    it('logs the pages written by every path while dirty logging is on', () => {
      const memory = create(size);
      memory.writeU8(a(0x1000), 1);
      memory.startDirtyLog();
      expect(memory.dirtyLogging).toBe(true);
      expect(Array.from(memory.fetchAndClearDirty()).every((w) => w === 0)).toBe(true);
      memory.writeU32(a(0x2000), 1);
      memory.write(a(0x3fff), new Uint8Array(2));
      memory.frameOf(a(0x9000), FrameAccess.Write);
      const dirty = memory.fetchAndClearDirty();
      const pages = [...Array(size / 4096).keys()].filter((p) => (dirty[p >> 5]! >>> (p & 31)) & 1);
      expect(pages).toEqual([2, 3, 4, 9]);
      expect(Array.from(memory.fetchAndClearDirty()).every((w) => w === 0)).toBe(true);
      memory.stopDirtyLog();
      expect(() => memory.fetchAndClearDirty()).toThrow();
    });

    it('invalidates handed-out frames when another path writes the page', () => {
      const memory = create(size);
      const invalidated: Array<[number, number]> = [];
      const stop = memory.onInvalidate((first, count) => invalidated.push([first, count]));
      const frame = memory.frameOf(a(0x5000), FrameAccess.Read)!;
      expect(frame.u8[frame.byteOffset]).toBe(0);
      memory.writeU8(a(0x5000), 9); // the zero frame handed out is now stale
      expect(invalidated).toContainEqual([5, 1]);
      const fresh = memory.frameOf(a(0x5000), FrameAccess.Read)!;
      expect(fresh.u8[fresh.byteOffset]).toBe(9);
      const writable = memory.frameOf(a(0x6000), FrameAccess.Write)!;
      writable.u32[(writable.byteOffset + 8) >> 2] = 0xcafe;
      expect(memory.readU32(a(0x6008))).toBe(0xcafe);
      stop();
      invalidated.length = 0;
      memory.writeU8(a(0x5000), 1);
      expect(invalidated).toEqual([]);
    });

    it('discards whole pages to zeros and zeroes partial ends', () => {
      const memory = create(size);
      memory.fill(a(0), 0x4000, 0x55);
      memory.discard(a(0x0800), 0x2000);
      expect(memory.readU8(a(0x07ff))).toBe(0x55);
      expect(memory.readU8(a(0x0800))).toBe(0);
      expect(memory.readU8(a(0x1800))).toBe(0);
      expect(memory.readU8(a(0x27ff))).toBe(0);
      expect(memory.readU8(a(0x2800))).toBe(0x55);
    });
  });
}
