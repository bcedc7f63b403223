import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ImageToolError } from '../errors.js';
import { openImage } from '../open.js';
import { QemuTools } from '../testing/qemu-tools.js';
import { StorageConnection } from './pool.js';
import { parsePoolXml, parseVolumeXml } from './xml.js';

const qemu = QemuTools.find();
const dir = mkdtempSync(join(tmpdir(), 'tsvirt-pool-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const poolXml = (name: string, path: string) => `
<pool type='dir'>
  <name>${name}</name>
  <uuid>3e3fce45-4f53-4fa7-bb32-11f34168b82b</uuid>
  <target><path>${path}</path></target>
</pool>`;

describe('pool and volume XML', () => {
  it('reads libvirt pool XML, with units on volumes', () => {
    expect(parsePoolXml(poolXml('default', '/var/lib/libvirt/images'), () => 'x')).toEqual({
      type: 'dir',
      name: 'default',
      uuid: '3e3fce45-4f53-4fa7-bb32-11f34168b82b',
      targetPath: '/var/lib/libvirt/images',
    });
    const netfs = parsePoolXml(`<pool type="netfs"><name>n</name><source><host name="nfs.example"/><dir path="/export"/><format type="nfs"/></source><target><path>/mnt/n</path></target></pool>`, () => 'fresh');
    expect(netfs).toMatchObject({ uuid: 'fresh', source: { host: 'nfs.example', dir: '/export', format: 'nfs' } });
    expect(parseVolumeXml(`<volume><name>a.qcow2</name><capacity unit='GiB'>10</capacity><allocation unit='KB'>2</allocation><target><format type='qcow2'/></target></volume>`)).toEqual({
      name: 'a.qcow2',
      capacity: 10 * 2 ** 30,
      allocation: 2000,
      format: 'qcow2',
    });
  });

  it.each([
    ['<pool type="logical"><name>x</name><target><path>/x</path></target></pool>', /not supported/],
    ['<pool type="dir"><target><path>/x</path></target></pool>', /needs <name>/],
    ['<pool type="dir"><name>../etc</name><target><path>/x</path></target></pool>', /invalid pool name/],
    ['<volume><name>v</name><capacity unit="parsecs">1</capacity></volume>', /unknown unit/],
    ['<volume><name>v</name><capacity>-5</capacity></volume>', /whole number/],
    ['<volume><name>v</name><capacity>1</capacity><target><format type="vmdk"/></target></volume>', /not supported/],
  ])('refuses %s', (xml, message) => {
    const parse = () => (xml.startsWith('<pool') ? parsePoolXml(xml, () => 'x') : parseVolumeXml(xml));
    expect(parse).toThrow(ImageToolError);
    expect(parse).toThrow(message);
  });
});

describe('a dir pool', () => {
  it('define, build, start, volumes through their life, info figures', async () => {
    const connection = new StorageConnection(join(dir, 'config'));
    const target = join(dir, 'images');
    const pool = await connection.definePool(poolXml('images', target));
    expect(await connection.listPools()).toEqual(['images']);
    await expect(pool.start()).rejects.toThrow(/not a directory/);
    await pool.build();
    await pool.start();
    const info = await pool.info();
    expect(info.state).toBe('running');
    expect(info.capacity).toBeGreaterThan(0);
    expect(info.available).toBeLessThanOrEqual(info.capacity);
    expect(info.allocation).toBeLessThanOrEqual(info.capacity);

    const thin = await pool.createVolume(`<volume><name>thin.qcow2</name><capacity unit='M'>64</capacity><allocation>0</allocation><target><format type='qcow2'/></target></volume>`);
    expect(thin.capacity).toBe(64 << 20);
    expect(thin.allocation).toBeLessThan(1 << 20);
    const raw = await pool.createVolume({ name: 'disk.raw', capacity: 8 << 20, format: 'raw' });
    expect(raw.allocation).toBeLessThan(raw.capacity);
    const overlay = await pool.createVolume({ name: 'overlay.qcow2', capacity: 64 << 20, format: 'qcow2', backingStore: { path: join(target, 'thin.qcow2'), format: 'qcow2' } });
    expect(overlay.backingStore).toBe(join(target, 'thin.qcow2'));
    await expect(pool.createVolume({ name: 'disk.raw', capacity: 1, format: 'raw' })).rejects.toThrow(/exists/);

    await pool.uploadVolume('disk.raw', [new Uint8Array(4096).fill(9)], 8192);
    const chunks: Uint8Array[] = [];
    for await (const chunk of pool.downloadVolume('disk.raw', 8192, 4096)) chunks.push(chunk);
    expect(chunks.length).toBe(1);
    expect(chunks[0]!.every((byte) => byte === 9)).toBe(true);

    const clone = await pool.cloneVolume('disk.raw', 'copy.raw');
    expect(clone.capacity).toBe(8 << 20);
    const copy = await openImage(clone.path, { readOnly: true });
    const back = new Uint8Array(4096);
    await copy.backend.readAt(8192, back);
    await copy.backend.close();
    expect(back.every((byte) => byte === 9)).toBe(true);

    expect((await pool.resizeVolume('thin.qcow2', 128 << 20)).capacity).toBe(128 << 20);
    await expect(pool.resizeVolume('thin.qcow2', 1 << 20)).rejects.toThrow(/shrink/);
    await pool.wipeVolume('disk.raw');
    const wiped = await openImage(join(target, 'disk.raw'), { readOnly: true });
    await wiped.backend.readAt(8192, back);
    await wiped.backend.close();
    expect(back.every((byte) => byte === 0)).toBe(true);

    expect((await pool.refresh()).map((volume) => `${volume.name}:${volume.format}`)).toEqual(['copy.raw:raw', 'disk.raw:raw', 'overlay.qcow2:qcow2', 'thin.qcow2:qcow2']);
    const xml = await pool.volumeXml('overlay.qcow2');
    expect(xml).toMatch(/<backingStore>/);
    expect(parseVolumeXml(xml)).toMatchObject({ name: 'overlay.qcow2', capacity: 64 << 20, format: 'qcow2' });
    expect(await pool.xml()).toMatch(/<capacity unit="bytes">\d+<\/capacity>/);

    if (qemu) expect(qemu.check(join(target, 'overlay.qcow2')).status).toBe(0);
    for (const volume of await pool.refresh()) await pool.deleteVolume(volume.name);
    await expect(pool.deleteVolume('gone')).rejects.toThrow(/not found/);
    await expect(connection.undefinePool('images')).rejects.toThrow(/active/);
    pool.stop();
    await pool.delete();
    await connection.undefinePool('images');
    expect(await connection.listPools()).toEqual([]);
  });
});
