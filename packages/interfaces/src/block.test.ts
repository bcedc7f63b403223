import { describe, expect, it } from 'vitest';
import { canDiscard, canResize, hasBlockStatus, hasDirtyBitmaps, hasSnapshots } from './block.js';
import { MemoryBlockBackend, blockBackendContract } from './testing/index.js';

blockBackendContract('MemoryBlockBackend', async (size) => new MemoryBlockBackend(size));

describe('capability guards', () => {
  it('see only the capabilities a backend has', () => {
    const plain = new MemoryBlockBackend(512);
    expect([canDiscard(plain), canResize(plain), hasBlockStatus(plain), hasSnapshots(plain), hasDirtyBitmaps(plain)]).toEqual([false, false, false, false, false]);
    const rich = Object.assign(new MemoryBlockBackend(512), {
      discard: async () => {},
      writeZeroes: async () => {},
      resize: async () => {},
      blockStatus: async () => [],
      listSnapshots: async () => [],
      createSnapshot: async () => {
        throw new Error('unused');
      },
      addDirtyBitmap: async () => {},
    });
    expect([canDiscard(rich), canResize(rich), hasBlockStatus(rich), hasSnapshots(rich), hasDirtyBitmaps(rich)]).toEqual([true, true, true, true, true]);
  });

  it('a read-only memory backend refuses writes', async () => {
    const disk = new MemoryBlockBackend(512, true);
    await expect(disk.writeAt(0, new Uint8Array(1))).rejects.toMatchObject({ code: 'BLOCK_READ_ONLY' });
  });
});
