import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NodeImageFile } from './image-file.js';
import { loadNative } from './native.js';
import { openImage } from './open.js';
import { RawBackend } from './raw.js';
import { runImg as img } from './testing/img.js';
import { QemuTools } from './testing/qemu-tools.js';
import { createImage } from './tools/operations.js';

const qemu = QemuTools.find();
const native = loadNative().native;
const dir = mkdtempSync(join(tmpdir(), 'tsvirt-sparse-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const at = (name: string) => join(dir, name);

/** Bytes the file system really holds for `path` (st_blocks is in 512-byte units). */
const held = (path: string) => statSync(path).blocks * 512;

describe.skipIf(native === undefined && !process.env.CI)('sparse raw files', () => {
  it('block status reports holes as unallocated zeros, and discard punches them', async () => {
    const path = at('holes.raw');
    const file = await NodeImageFile.open(path, { create: true });
    await file.truncate(1 << 20);
    const disk = await RawBackend.open(file);
    await disk.writeAt(65536, new Uint8Array(8192).fill(0xab));
    expect(await disk.blockStatus(0, 1 << 20)).toEqual([
      { offset: 0, length: 65536, allocated: false, zero: true },
      { offset: 65536, length: 8192, allocated: true, zero: false },
      { offset: 73728, length: (1 << 20) - 73728, allocated: false, zero: true },
    ]);
    // A window inside one extent is clipped to the window.
    expect(await disk.blockStatus(66000, 100)).toEqual([{ offset: 66000, length: 100, allocated: true, zero: false }]);
    expect(held(path)).toBe(8192);
    await disk.discard(65536, 4096);
    expect(held(path)).toBe(4096);
    const back = new Uint8Array(8192);
    await disk.readAt(65536, back);
    expect(back.subarray(0, 4096).every((byte) => byte === 0)).toBe(true);
    expect(back.subarray(4096).every((byte) => byte === 0xab)).toBe(true);
    // Write-zeroes keeps the blocks unless it may unmap them.
    await disk.writeZeroes(69632, 4096);
    expect(held(path)).toBe(4096);
    await disk.writeZeroes(69632, 4096, { mayUnmap: true });
    expect(held(path)).toBe(0);
    expect(await disk.blockStatus(0, 1 << 20)).toEqual([{ offset: 0, length: 1 << 20, allocated: false, zero: true }]);
    await expect(disk.blockStatus(2 << 20, 1)).rejects.toMatchObject({ code: 'BLOCK_RANGE' });
    await expect(disk.discard((1 << 20) - 512, 1024)).rejects.toMatchObject({ code: 'BLOCK_RANGE' });
    await disk.close();
    expect(() => file.extentAt(0)).toThrow(expect.objectContaining({ code: 'BLOCK_CLOSED' }));
  });

  it('a read-only file refuses to punch', async () => {
    const path = at('readonly.raw');
    await (await createImage(path, { format: 'raw', size: 65536 })).close();
    const file = await NodeImageFile.open(path, { readOnly: true });
    await expect(file.punchHole(0, 4096)).rejects.toMatchObject({ code: 'BLOCK_READ_ONLY' });
    await file.close();
  });
});

describe.skipIf((!qemu || native === undefined) && !process.env.CI)('sparse raw files against qemu-img', () => {
  const tools = qemu as QemuTools;

  it('map agrees with qemu-img map on files written and discarded by qemu-io', async () => {
    const path = at('qemu-written.raw');
    tools.img(['create', '-q', '-f', 'raw', path, '4M']);
    const expectations: string[] = [];
    const steps = [['write -P 1 300k 5k', 'write -P 2 1M 64k'], ['discard 1M 32k'], ['write -P 3 4032k 64k', 'discard 0 4k']];
    for (const commands of steps) {
      tools.io(path, 'raw', commands);
      const ours = await img('map', '--output=json', '-f', 'raw', path);
      expect(ours.code).toBe(0);
      expect(ours.stdout).toBe(tools.img(['map', '--output=json', '-f', 'raw', path]));
      expectations.push(ours.stdout);
    }
    // The map did change between the steps: it is not all data.
    expect(new Set(expectations).size).toBe(3);
    expect(expectations[0]).toContain('"zero": true, "data": false');
  });

  it('our writes and discards leave a file qemu-img maps as we do', async () => {
    const path = at('ours-written.raw');
    const disk = await createImage(path, { format: 'raw', size: 2 << 20 });
    await disk.writeAt(512 << 10, new Uint8Array(128 << 10).fill(9));
    await (disk as RawBackend).discard(544 << 10, 64 << 10);
    await disk.close();
    const theirs = tools.img(['map', '--output=json', '-f', 'raw', path]);
    expect((await img('map', '--output=json', '-f', 'raw', path)).stdout).toBe(theirs);
    expect(theirs).toContain(`"start": ${544 << 10}, "length": ${64 << 10}, "depth": 0, "present": true, "zero": true, "data": false`);
  });

  for (const preallocation of ['off', 'falloc', 'full'] as const) {
    it(`raw preallocation=${preallocation}: the same map and the same blocks held as qemu-img create`, async () => {
      const ours = at(`prealloc-${preallocation}.raw`);
      const theirs = at(`prealloc-${preallocation}-qemu.raw`);
      expect((await img('create', '-q', '-f', 'raw', '-o', `preallocation=${preallocation}`, ours, '1M')).code).toBe(0);
      tools.img(['create', '-q', '-f', 'raw', '-o', `preallocation=${preallocation}`, theirs, '1M']);
      expect(statSync(ours).size).toBe(statSync(theirs).size);
      expect(held(ours)).toBe(held(theirs));
      expect((await img('map', '--output=json', '-f', 'raw', ours)).stdout).toBe(tools.img(['map', '--output=json', '-f', 'raw', theirs]).replaceAll(theirs, ours));
    });
  }

  it('raw preallocation=metadata is refused as qemu-img refuses it', async () => {
    const result = await img('create', '-q', '-f', 'raw', '-o', 'preallocation=metadata', at('meta.raw'), '1M');
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('Unsupported preallocation mode: metadata');
    expect(tools.imgStatus(['create', '-q', '-f', 'raw', '-o', 'preallocation=metadata', at('meta-qemu.raw'), '1M']).stderr).toContain('Unsupported preallocation mode: metadata');
  });

  for (const preallocation of ['falloc', 'full'] as const) {
    it(`qcow2 preallocation=${preallocation}: check is clean, the blocks are held, map and size agree with qemu-img`, async () => {
      const ours = at(`prealloc-${preallocation}.qcow2`);
      const theirs = at(`prealloc-${preallocation}-qemu.qcow2`);
      const options = `preallocation=${preallocation},cluster_size=4096`;
      expect((await img('create', '-q', '-f', 'qcow2', '-o', options, ours, '256K')).code).toBe(0);
      tools.img(['create', '-q', '-f', 'qcow2', '-o', options, theirs, '256K']);
      expect(tools.check(ours).status).toBe(0);
      expect(statSync(ours).size).toBe(statSync(theirs).size);
      expect(held(ours)).toBeGreaterThanOrEqual(256 << 10);
      expect(tools.img(['map', '--output=json', ours])).toBe(tools.img(['map', '--output=json', theirs]));
    });
  }

  it('qcow2 preallocation=falloc holds its clusters without writing them (unlike full)', async () => {
    const falloc = at('prealloc-falloc.qcow2');
    await openImage(falloc, { readOnly: true }).then((opened) => opened.backend.close());
    // Unwritten blocks: SEEK_DATA sees the data area as a hole, so the file holds blocks but little data.
    const file = await NodeImageFile.open(falloc, { readOnly: true });
    const size = await file.size();
    let data = 0;
    for (let offset = 0; offset < size; ) {
      const extent = file.extentAt(offset)!;
      const length = Math.min(extent.length, size - offset);
      if (extent.data) data += length;
      offset += length;
    }
    await file.close();
    expect(data).toBeLessThan(256 << 10);
    expect(held(falloc)).toBeGreaterThanOrEqual(256 << 10);
  });
});
