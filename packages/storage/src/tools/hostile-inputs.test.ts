/**
 * The cases of the hostile-input campaign (522 damaged qcow2 variants through
 * the tools, each also tried with qemu-img 7.2), one named test each: what
 * tsvirt did, and what it does now.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NodeImageFile } from '../image-file.js';
import { createQcow2 } from '../qcow2/create.js';
import { QemuTools } from '../testing/qemu-tools.js';
import { runImg } from '../testing/img.js';

const qemu = QemuTools.find();
const dir = mkdtempSync(join(tmpdir(), 'tsvirt-hostile-inputs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const at = (name: string) => join(dir, name);

const img = runImg;

/** A qcow2 image written by us, then damaged by `damage` on its bytes. */
async function image(name: string, options: { size: number; clusterSize?: number; backingFile?: string }, damage: (bytes: Buffer) => void = () => {}): Promise<string> {
  const path = at(name);
  const created = await createQcow2(await NodeImageFile.open(path, { create: true }), {
    size: options.size,
    clusterSize: options.clusterSize ?? 65536,
    ...(options.backingFile ? { backingFile: options.backingFile, backingFormat: 'qcow2' } : {}),
  });
  await created.writeAt(0, new Uint8Array(8192).fill(0x42));
  await created.close();
  const bytes = readFileSync(path);
  damage(bytes);
  writeFileSync(path, bytes);
  return path;
}

const l2Of = (bytes: Buffer) => Number(bytes.readBigUInt64BE(Number(bytes.readBigUInt64BE(40))) & 0x00ff_ffff_ffff_fe00n);

describe('tsvirt img on hostile images', () => {
  it('snapshot -c on an image with an L2 entry of all ones (512-byte clusters) fails at once ("File too large"), where it ran forever', async () => {
    const path = await image('l2-all-ones.qcow2', { size: 1 << 20, clusterSize: 512 }, (bytes) => bytes.fill(0xff, l2Of(bytes) + 8, l2Of(bytes) + 16));
    const started = Date.now();
    const result = await img('snapshot', '-c', 's', path);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/File too large|error\(s\) were found on the image/);
    expect(Date.now() - started).toBeLessThan(30_000);
  }, 60_000);

  it('check finds an L1 entry with reserved bits set (it said "No errors")', async () => {
    const path = await image('l1-reserved.qcow2', { size: 1 << 20 }, (bytes) => {
      const l1 = Number(bytes.readBigUInt64BE(40));
      bytes.writeBigUInt64BE(bytes.readBigUInt64BE(l1) | 0x0100_0000_0000_0000n, l1);
    });
    const result = await img('check', path);
    expect(result.code).toBe(2);
    expect(result.stderr + result.stdout).toMatch(/L1 entry with reserved bits set/);
    if (qemu) expect(qemu.check(path).status).toBe(2);
  });

  it('check of an image whose backing file is missing exits 1, as qemu-img check (it exited 0)', async () => {
    const path = await image('orphan.qcow2', { size: 1 << 20, backingFile: at('no-such-base.qcow2') });
    const result = await img('check', path);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/no-such-base/);
  });

  it('check of a backing chain that loops exits 1 with a message (it exited 0; qemu-img 7.2 never returns)', async () => {
    const first = await image('loop-a.qcow2', { size: 1 << 20, backingFile: at('loop-b.qcow2') });
    await image('loop-b.qcow2', { size: 1 << 20, backingFile: first });
    const result = await img('check', first);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/loop/);
  });

  it('a snapshot table of 1000 garbage entries: the image is refused at open, by check, map and convert alike', async () => {
    const path = await image('garbage-snapshots.qcow2', { size: 1 << 20 }, (bytes) => {
      bytes.writeUInt32BE(1000, 60);
      // The "table" is the refcount block's cluster: garbage as snapshot entries.
      bytes.writeBigUInt64BE(bytes.readBigUInt64BE(48) + 65536n, 64);
      bytes.fill(0xee, 3 * 65536, 4 * 65536);
    });
    for (const argv of [['check', path], ['map', path], ['convert', '-O', 'raw', path, at('garbage.raw')]]) {
      const result = await img(...argv);
      expect(result.code, argv[0]).toBe(1);
      expect(result.stderr, argv[0]).not.toMatch(/internal error/);
    }
    if (qemu) expect(qemu.imgStatus(['convert', '-O', 'raw', path, at('garbage-q.raw')]).status).toBe(1);
  });

  it('data-file-raw without a data file is refused at open, as qemu-img refuses it (map and convert succeeded)', async () => {
    const path = await image('raw-without-data-file.qcow2', { size: 1 << 20 }, (bytes) => bytes.writeBigUInt64BE(2n, 88));
    for (const argv of [['map', path], ['convert', '-O', 'raw', path, at('raw-flag.raw')], ['info', path]]) {
      const result = await img(...argv);
      expect(result.code, argv[0]).toBe(1);
      expect(result.stderr, argv[0]).toMatch(/data-file-raw requires a data file/);
    }
  });

  it('a raw file of 1000 bytes is a disk of 1024, as QEMU sizes it: convert writes 1024 bytes, the tail zeros', async () => {
    const source = at('odd.raw');
    const bytes = Buffer.alloc(1000, 0x37);
    writeFileSync(source, bytes);
    expect((await img('convert', '-O', 'raw', source, at('odd-copy.raw'))).code).toBe(0);
    const copy = readFileSync(at('odd-copy.raw'));
    expect(copy.length).toBe(1024);
    expect(copy.subarray(0, 1000).equals(bytes)).toBe(true);
    expect(copy.subarray(1000).every((byte) => byte === 0)).toBe(true);
    expect(JSON.parse((await img('info', '--output=json', source)).stdout)['virtual-size']).toBe(1024);
    if (qemu) {
      qemu.img(['convert', '-O', 'raw', source, at('odd-qemu.raw')]);
      expect(statSync(at('odd-qemu.raw')).size).toBe(copy.length);
      expect(JSON.parse((await img('map', '--output=json', source)).stdout)).toEqual(JSON.parse(qemu.img(['map', '--output=json', source])));
    }
  });
});
