import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlockError } from '@tsvirt/interfaces';
import { blockBackendContract } from '@tsvirt/interfaces/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryImageFile, NodeImageFile } from './image-file.js';
import { ImageLocks } from './image-locks.js';
import { openImage } from './open.js';
import { createQcow2 } from './qcow2/create.js';
import { RawBackend } from './raw.js';

const dir = mkdtempSync(join(tmpdir(), 'tsvirt-raw-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let counter = 0;

blockBackendContract('raw file', async (size) => {
  const file = await NodeImageFile.open(join(dir, `contract-${counter++}.raw`), { create: true });
  await file.truncate(size);
  return RawBackend.open(file);
});

blockBackendContract('qcow2 in memory', (size) => createQcow2(new MemoryImageFile(), { size }));
blockBackendContract('qcow2, 512-byte clusters, 1-bit refcounts', (size) => createQcow2(new MemoryImageFile(), { size, clusterSize: 512, compat: '1.1', refcountBits: 1 }));
blockBackendContract('qcow2 with extended L2', (size) => createQcow2(new MemoryImageFile(), { size, clusterSize: 32768, extendedL2: true }));

describe('raw backend', () => {
  it('zeroes, resizes (shrink only when asked), reports everything as data, refuses writes when read-only', async () => {
    const path = join(dir, 'raw.img');
    const file = await NodeImageFile.open(path, { create: true });
    await file.truncate(8192);
    const disk = await RawBackend.open(file);
    await disk.writeAt(0, new Uint8Array(8192).fill(5));
    await disk.writeZeroes(100, 1000);
    const back = new Uint8Array(1200);
    await disk.readAt(0, back);
    expect(back.subarray(0, 100).every((byte) => byte === 5)).toBe(true);
    expect(back.subarray(100, 1100).every((byte) => byte === 0)).toBe(true);
    expect(back[1100]).toBe(5);
    await disk.resize(16384);
    expect(disk.size).toBe(16384);
    await expect(disk.resize(4096)).rejects.toBeInstanceOf(BlockError);
    await disk.resize(4096, { shrink: true });
    expect(await disk.blockStatus(0, 1 << 20)).toEqual([{ offset: 0, length: 4096, allocated: true, zero: false }]);
    await disk.close();
    const readOnly = await openImage(path, { readOnly: true });
    await expect(readOnly.backend.writeAt(0, new Uint8Array(1))).rejects.toMatchObject({ code: 'BLOCK_READ_ONLY' });
    await readOnly.backend.close();
  });

  it('image locks: a second writer is refused, readers share, and closing releases', async () => {
    const path = join(dir, 'locked.img');
    const file = await NodeImageFile.open(path, { create: true });
    await file.truncate(4096);
    await file.close();
    const locks = new ImageLocks();
    const writer = await openImage(path, { locks });
    await expect(openImage(path, { locks })).rejects.toMatchObject({ code: 'IMAGE_LOCKED' });
    await expect(openImage(path, { locks, readOnly: true })).rejects.toMatchObject({ code: 'IMAGE_LOCKED' });
    const shared = await openImage(path, { locks, readOnly: true, forceShare: true });
    await shared.backend.close();
    await writer.backend.close();
    const again = await openImage(path, { locks });
    await again.backend.close();
  });
});
