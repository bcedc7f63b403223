import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlockError } from '@tsvirt/interfaces';
import { afterAll, describe, expect, it } from 'vitest';
import { ImageCorruptError } from '../errors.js';
import { NodeImageFile } from '../image-file.js';
import { NbdClient } from '../nbd/client.js';
import { NbdServer } from '../nbd/server.js';
import { openImage } from '../open.js';
import { QemuTools } from '../testing/qemu-tools.js';
import { runImgCommand } from '../tools/img-command.js';
import { createQcow2 } from './create.js';
import { INCOMPAT_CORRUPT } from './format.js';
import { MetadataKind, MetadataRegions } from './overlap.js';
import { Qcow2Backend } from './qcow2.js';

const qemu = QemuTools.find();
const dir = mkdtempSync(join(tmpdir(), 'tsvirt-overlap-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let serial = 0;

const MiB = 1 << 20;
const quiet = { stdout: () => {}, stderr: () => {} };

/** A fresh qcow2 v3 file (by qemu-img when installed, so the layout is QEMU's), with `damage` applied to its bytes. */
async function damagedImage(options: { size: number; clusterSize?: number; fill?: (image: Qcow2Backend) => Promise<void> }, damage: (bytes: Buffer) => void): Promise<string> {
  const path = join(dir, `image-${serial++}.qcow2`);
  const image = await createQcow2(await NodeImageFile.open(path, { create: true }), { size: options.size, clusterSize: options.clusterSize ?? 65536 });
  await options.fill?.(image);
  await image.close();
  const bytes = readFileSync(path);
  damage(bytes);
  writeFileSync(path, bytes);
  return path;
}

function u64(bytes: Buffer, at: number): number {
  return Number(bytes.readBigUInt64BE(at));
}

/** The first refcount-table entry zeroed: clusters 0.. (header, tables) look free. */
function zeroFirstRefcountTableEntry(bytes: Buffer): void {
  bytes.writeBigUInt64BE(0n, u64(bytes, 48));
}

function headerOf(path: string): { magic: string; incompatible: bigint } {
  const bytes = readFileSync(path);
  return { magic: bytes.subarray(0, 4).toString('latin1'), incompatible: bytes.readBigUInt64BE(72) };
}

function qemuCheckErrors(path: string): number {
  const { result } = qemu!.check(path);
  return Number(result['corruptions'] ?? 0) + Number(result['check-errors'] ?? 0);
}

describe('qcow2 metadata overlap checks (QEMU overlap-check=cached)', () => {
  it('a guest write on an image whose first refcount-table entry is zero is refused: the header survives, the image is marked corrupt, the guest sees nothing change', async () => {
    const path = await damagedImage({ size: 100 * MiB }, zeroFirstRefcountTableEntry);
    const errorsBefore = qemu ? qemuCheckErrors(path) : 0;
    const { backend } = await openImage(path);
    const write = backend.writeAt(50 * MiB, new Uint8Array(64 * 1024).fill(0x41));
    await expect(write).rejects.toBeInstanceOf(BlockError);
    await expect(write).rejects.toThrow(/Preventing invalid write on metadata \(overlaps with (qcow2_header|refcount table|active L1 table)\)/);
    // Later writes are refused without trying; reads still work and show nothing new.
    await expect(backend.writeAt(0, new Uint8Array(512))).rejects.toThrow(/corrupt/);
    const back = new Uint8Array(64 * 1024);
    await backend.readAt(50 * MiB, back);
    expect(back.every((byte) => byte === 0)).toBe(true);
    await backend.close();
    const header = headerOf(path);
    expect(header.magic).toBe('QFI\xfb');
    expect(header.incompatible & INCOMPAT_CORRUPT).toBe(INCOMPAT_CORRUPT);
    // Marked corrupt: a writable open is refused, as QEMU refuses it.
    await expect(openImage(path)).rejects.toBeInstanceOf(ImageCorruptError);
    // No worse than before by QEMU's own judgement (qemu-io leaves the same 3 errors).
    if (qemu) expect(qemuCheckErrors(path)).toBeLessThanOrEqual(errorsBefore);
  });

  it('the same write through an NBD export fails with an I/O error and leaves the header alone', async () => {
    const path = await damagedImage({ size: 100 * MiB }, zeroFirstRefcountTableEntry);
    const { backend } = await openImage(path);
    const server = new NbdServer({ exports: [{ name: 'disk', backend }] });
    const { port } = await server.listen({ port: 0 });
    try {
      const client = await NbdClient.connect({ host: '127.0.0.1', port: port!, exportName: 'disk' });
      await expect(client.writeAt(50 * MiB, new Uint8Array(64 * 1024).fill(0x41))).rejects.toBeInstanceOf(BlockError);
      await client.close();
    } finally {
      await server.close();
      await backend.close();
    }
    expect(headerOf(path).magic).toBe('QFI\xfb');
  });

  it('an L2 entry that points at the L1 table: a guest write there is refused (overlaps with active L1 table)', async () => {
    const path = await damagedImage({ size: 8 * MiB, fill: (image) => image.writeAt(0, new Uint8Array(4096).fill(1)) }, (bytes) => {
      const l1Offset = u64(bytes, 40);
      const l2Offset = u64(bytes, l1Offset) & 0x00ff_ffff_ffff_fe00;
      // Guest cluster 0 now claims to live where the L1 table is, owned (COPIED), so it would be written in place.
      bytes.writeBigUInt64BE(BigInt(l1Offset) | (1n << 63n), l2Offset);
    });
    const { backend } = await openImage(path);
    await expect(backend.writeAt(0, new Uint8Array(512).fill(0x41))).rejects.toThrow(/overlaps with active L1 table/);
    await backend.close();
    const bytes = readFileSync(path);
    expect(bytes.subarray(u64(bytes, 40), u64(bytes, 40) + 512).includes(0x41)).toBe(false);
  });

  it('an L1 entry that points at the refcount table as its L2 table: the L2 update is refused (overlaps with refcount table)', async () => {
    const path = await damagedImage({ size: 8 * MiB, fill: (image) => image.writeAt(0, new Uint8Array(4096).fill(1)) }, (bytes) => {
      bytes.writeBigUInt64BE(BigInt(u64(bytes, 48)) | (1n << 63n), u64(bytes, 40));
    });
    const refcountTableBefore = (() => {
      const bytes = readFileSync(path);
      return Buffer.from(bytes.subarray(u64(bytes, 48), u64(bytes, 48) + 65536));
    })();
    const { backend } = await openImage(path);
    await expect(backend.writeAt(65536 * 3, new Uint8Array(512).fill(0x41))).rejects.toThrow(/overlaps with refcount table/);
    await backend.close();
    const bytes = readFileSync(path);
    expect(Buffer.from(bytes.subarray(u64(bytes, 48), u64(bytes, 48) + 65536)).equals(refcountTableBefore)).toBe(true);
  });

  it('tsvirt img snapshot -c on an image with refcount block 0 zeroed (512-byte clusters) fails and leaves the header', async () => {
    const path = await damagedImage({ size: 4 * MiB, clusterSize: 512, fill: (image) => image.writeAt(0, new Uint8Array(8192).fill(7)) }, (bytes) => {
      const block = u64(bytes, u64(bytes, 48));
      bytes.fill(0, block, block + 512);
    });
    const errorsBefore = qemu ? qemuCheckErrors(path) : 0;
    expect(await runImgCommand(['snapshot', '-c', 's', path], quiet)).not.toBe(0);
    expect(headerOf(path).magic).toBe('QFI\xfb');
    if (qemu) expect(qemuCheckErrors(path)).toBeLessThanOrEqual(errorsBefore);
  });

  it('overlap-check=none lets the write through (the check, not luck, is what refuses it)', async () => {
    const path = await damagedImage({ size: 100 * MiB }, zeroFirstRefcountTableEntry);
    const image = await Qcow2Backend.open(await NodeImageFile.open(path), { overlapCheck: 'none' });
    await image.writeAt(50 * MiB, new Uint8Array(64 * 1024).fill(0x41));
    await image.close();
    expect(headerOf(path).magic).not.toBe('QFI\xfb');
  });

  it('healthy images are written as before under every mode', async () => {
    for (const mode of ['none', 'constant', 'cached', 'all'] as const) {
      const path = await damagedImage({ size: 16 * MiB, fill: (image) => image.writeAt(0, new Uint8Array(4096).fill(9)) }, () => {});
      const image = await Qcow2Backend.open(await NodeImageFile.open(path), { overlapCheck: mode });
      await image.createSnapshot('before');
      for (let at = 0; at < 16 * MiB; at += 3 * MiB + 12345) await image.writeAt(at, new Uint8Array(70000).fill(at & 0xff));
      await image.resize(32 * MiB);
      await image.writeAt(30 * MiB, new Uint8Array(4096).fill(3));
      await image.applySnapshot('before');
      await image.deleteSnapshot('before');
      await image.close();
      if (qemu) expect(qemu.check(path).status, mode).toBe(0);
    }
  });
});

describe('MetadataRegions', () => {
  it('finds the structure a range touches, ignoring the kind being updated', () => {
    const regions = new MetadataRegions(512, 'cached');
    regions.add(MetadataKind.MainHeader, 0, 512);
    regions.add(MetadataKind.ActiveL2, 4096, 512);
    regions.add(MetadataKind.ActiveL2, 4096, 512);
    expect(regions.find(100, 1)).toBe(MetadataKind.MainHeader);
    expect(regions.find(512, 3584)).toBeUndefined();
    expect(regions.find(4000, 200)).toBe(MetadataKind.ActiveL2);
    expect(regions.find(4096, 8, MetadataKind.ActiveL2)).toBeUndefined();
    // Counted: one of the two references goes, the cluster stays metadata.
    regions.remove(MetadataKind.ActiveL2, 4096, 512);
    expect(regions.find(0, 1 << 30, MetadataKind.MainHeader)).toBe(MetadataKind.ActiveL2);
    regions.remove(MetadataKind.ActiveL2, 4096, 512);
    expect(regions.find(0, 1 << 30, MetadataKind.MainHeader)).toBeUndefined();
    expect(() => regions.check(0, 8)).toThrow('Preventing invalid write on metadata (overlaps with qcow2_header)');
    // Inactive L2 tables only with overlap-check=all, as in QEMU.
    regions.add(MetadataKind.InactiveL2, 8192, 512);
    expect(regions.find(8192, 1)).toBeUndefined();
    const all = new MetadataRegions(512, 'all');
    all.add(MetadataKind.InactiveL2, 8192, 512);
    expect(all.find(8192, 1)).toBe(MetadataKind.InactiveL2);
  });
});
