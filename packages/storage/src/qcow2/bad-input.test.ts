import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlockError } from '@tsvirt/interfaces';
import { afterAll, describe, expect, it } from 'vitest';
import { ImageCorruptError, ImageFormatError, ImageUnsupportedError } from '../errors.js';
import { MemoryImageFile, NodeImageFile } from '../image-file.js';
import { openImage } from '../open.js';
import { createQcow2 } from './create.js';
import { INCOMPAT_CORRUPT } from './format.js';
import { Qcow2Backend } from './qcow2.js';

/** A small valid image (64 KiB clusters: header, refcount table, refcount block, L1, one L2, data). */
async function sample(): Promise<Uint8Array> {
  const file = new MemoryImageFile();
  const image = await createQcow2(file, { size: 1 << 20 });
  await image.writeAt(0, new Uint8Array(4096).fill(0xab));
  return file.contents();
}

function patch(bytes: Uint8Array, at: number, values: number[]): Uint8Array {
  const copy = bytes.slice();
  copy.set(values, at);
  return copy;
}

const u32 = (value: number) => [value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff];
const u64 = (high: number, low: number) => [...u32(high), ...u32(low)];

async function open(bytes: Uint8Array, readOnly = true): Promise<Qcow2Backend> {
  return Qcow2Backend.open(new MemoryImageFile(bytes, 'fuzzed', readOnly));
}

describe('hostile qcow2 headers are refused with a clear error', () => {
  it('accepts the unmodified sample (so the cases below test what they claim)', async () => {
    const image = await open(await sample());
    const back = new Uint8Array(4);
    await image.readAt(0, back);
    expect([...back]).toEqual([0xab, 0xab, 0xab, 0xab]);
  });

  it.each([
    ['bad magic', 0, [0x51, 0x46, 0x49, 0x00], ImageFormatError],
    ['version 4', 4, u32(4), ImageUnsupportedError],
    ['cluster bits 8', 20, u32(8), ImageFormatError],
    ['cluster bits 22', 20, u32(22), ImageFormatError],
    ['encryption', 32, u32(1), ImageUnsupportedError],
    ['an L1 table far past the end of the file', 40, u64(0, 0x40000000), ImageFormatError],
    ['an unaligned L1 table', 40, u64(0, 0x30200), ImageFormatError],
    ['an L1 table of 2^31 entries', 36, u32(0x80000000), ImageFormatError],
    ['an L1 table too small for the disk', 36, u32(0), ImageFormatError],
    ['a refcount table of 2^32-1 clusters', 56, u32(0xffffffff), ImageFormatError],
    ['a refcount table at offset 0', 48, u64(0, 0), ImageFormatError],
    ['a virtual size beyond 2^53', 24, u64(0x00400000, 0), ImageFormatError],
    ['70000 snapshots', 60, u32(70000), ImageFormatError],
    ['an unknown incompatible feature', 72, u64(0x100, 0), ImageUnsupportedError],
    ['refcount order 7', 96, u32(7), ImageFormatError],
    ['a header length past the cluster', 100, u32(0x20000), ImageFormatError],
    ['a backing file name of 1 MiB', 8, [...u64(0, 512), ...u32(1 << 20)], ImageFormatError],
    ['a backing file name outside the header cluster', 8, [...u64(0, 65530), ...u32(100)], ImageFormatError],
  ] as const)('%s', async (_name, at, values, errorType) => {
    const bytes = patch(await sample(), at, [...values]);
    await expect(open(bytes)).rejects.toBeInstanceOf(errorType);
  });

  it('a file too short for a header', async () => {
    await expect(open((await sample()).slice(0, 50))).rejects.toBeInstanceOf(ImageFormatError);
    await expect(open(new Uint8Array(0))).rejects.toBeInstanceOf(ImageFormatError);
  });

  it('a truncated file: tables past its end are refused', async () => {
    const bytes = await sample();
    await expect(open(bytes.slice(0, 65536 * 2))).rejects.toBeInstanceOf(ImageFormatError);
  });

  it('the corrupt bit: read-only opens work, writable opens are refused', async () => {
    const bytes = await sample();
    const flagged = patch(bytes, 72, u64(0, Number(INCOMPAT_CORRUPT)));
    await expect(open(flagged, false)).rejects.toBeInstanceOf(ImageCorruptError);
    const image = await open(flagged, true);
    expect(image.size).toBe(1 << 20);
  });

  it('an L2 entry with reserved bits fails the read with a BlockError and marks nothing', async () => {
    const bytes = await sample();
    // The L2 table is the cluster the L1 entry names.
    const view = new DataView(bytes.buffer);
    const l1Offset = view.getUint32(44);
    const l2Offset = view.getUint32(l1Offset + 4) & ~0x1ff;
    const bad = patch(bytes, l2Offset + 7, [0x10]);
    const image = await open(bad, false);
    await expect(image.readAt(0, new Uint8Array(16))).rejects.toBeInstanceOf(BlockError);
    // A write that trips over it marks the image corrupt and stops further writes.
    await expect(image.writeAt(0, new Uint8Array(16))).rejects.toBeInstanceOf(BlockError);
    await expect(image.writeAt(1 << 19, new Uint8Array(16))).rejects.toThrow(/corrupt/);
  });

  it('a compressed cluster that inflates to more than a cluster is refused, not allocated', async () => {
    const { deflateRawSync } = await import('node:zlib');
    const file = new MemoryImageFile();
    const image = await createQcow2(file, { size: 1 << 20, clusterSize: 4096 });
    await image.writeCompressed(0, new Uint8Array(4096).fill(7));
    const bytes = file.contents();
    const view = new DataView(bytes.buffer);
    const l2Offset = view.getUint32(view.getUint32(44) + 4) & ~0x1ff;
    // Point the descriptor at a bomb: 1 MiB of zeros deflated.
    const bomb = deflateRawSync(new Uint8Array(1 << 20));
    const at = bytes.length;
    const grown = new Uint8Array(at + bomb.length + 512);
    grown.set(bytes);
    grown.set(bomb, at);
    const offsetBits = 62 - (12 - 8);
    const descriptor = (1n << 62n) | (BigInt(Math.ceil(bomb.length / 512)) << BigInt(offsetBits)) | BigInt(at);
    new DataView(grown.buffer).setBigUint64(l2Offset, descriptor);
    const fuzzed = await open(grown);
    await expect(fuzzed.readAt(0, new Uint8Array(4096))).rejects.toThrow(/decompress/);
  });
});

describe('backing chains', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvirt-chain-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a loop in the backing chain is refused', async () => {
    for (const [name, backing] of [
      ['a.qcow2', 'b.qcow2'],
      ['b.qcow2', 'c.qcow2'],
      ['c.qcow2', 'a.qcow2'],
    ] as const) {
      const image = await createQcow2(await NodeImageFile.open(join(dir, name), { create: true }), { size: 65536, backingFile: backing, backingFormat: 'qcow2' });
      await image.close();
    }
    await expect(openImage(join(dir, 'a.qcow2'))).rejects.toThrow(/loops/);
  });

  it('a chain deeper than the limit is refused', async () => {
    for (let i = 0; i < 6; i++) {
      const image = await createQcow2(await NodeImageFile.open(join(dir, `d${i}.qcow2`), { create: true }), {
        size: 65536,
        ...(i > 0 ? { backingFile: `d${i - 1}.qcow2`, backingFormat: 'qcow2' } : {}),
      });
      await image.close();
    }
    await expect(openImage(join(dir, 'd5.qcow2'), { maxChainDepth: 3 })).rejects.toThrow(/deeper/);
    const opened = await openImage(join(dir, 'd5.qcow2'));
    expect(opened.backing?.backing?.backing?.backing?.backing?.backingFile).toBeUndefined();
    await opened.backend.close();
  });

  it('a missing backing file is a clear error', async () => {
    const image = await createQcow2(await NodeImageFile.open(join(dir, 'orphan.qcow2'), { create: true }), { size: 65536, backingFile: 'gone.qcow2', backingFormat: 'qcow2' });
    await image.close();
    await expect(openImage(join(dir, 'orphan.qcow2'))).rejects.toThrow(/gone\.qcow2/);
  });
});
