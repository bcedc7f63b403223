import { describe, expect, it } from 'vitest';
import type { BlockBackend } from '../block.js';
import { BlockError } from '../errors.js';

/**
 * The behaviour every BlockBackend must show, as a vitest suite. `create`
 * returns a fresh, writable, zero-filled backend of `size` bytes (at least
 * 64 KiB).
 */
export function blockBackendContract(name: string, create: (size: number) => Promise<BlockBackend>): void {
  const size = 1 << 16;
  describe(`BlockBackend contract: ${name}`, () => {
    it('reports its size and reads zeros when fresh', async () => {
      const disk = await create(size);
      expect(disk.size).toBe(size);
      const bytes = new Uint8Array(4096).fill(0xaa);
      await disk.readAt(8192, bytes);
      expect(bytes.every((b) => b === 0)).toBe(true);
      await disk.close();
    });

    it('reads back what it wrote, at unaligned offsets and lengths', async () => {
      const disk = await create(size);
      const data = Uint8Array.from({ length: 1500 }, (_, i) => (i * 7 + 3) & 0xff);
      await disk.writeAt(1234, data);
      const back = new Uint8Array(1500);
      await disk.readAt(1234, back);
      expect(back).toEqual(data);
      const around = new Uint8Array(2);
      await disk.readAt(1233, around);
      expect(around[0]).toBe(0);
      expect(around[1]).toBe(data[0]);
      await disk.flush();
      await disk.close();
    });

    it('accepts zero-length requests up to the end and rejects requests past it', async () => {
      const disk = await create(size);
      await disk.readAt(size, new Uint8Array(0));
      await disk.writeAt(size, new Uint8Array(0));
      await expect(disk.readAt(size - 1, new Uint8Array(2))).rejects.toBeInstanceOf(BlockError);
      await expect(disk.writeAt(size, new Uint8Array(1))).rejects.toBeInstanceOf(BlockError);
      await expect(disk.readAt(-1, new Uint8Array(1))).rejects.toBeInstanceOf(BlockError);
      const tail = new Uint8Array(1);
      await disk.readAt(size - 1, tail);
      expect(tail[0]).toBe(0);
      await disk.close();
    });
  });
}
