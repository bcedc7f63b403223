import { readFileSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { applyImageLocks, lockRequestFor } from './file-locks.js';
import { NodeImageFile } from './image-file.js';
import { loadNative, type StorageNative } from './native.js';
import { openImage } from './open.js';
import { QemuTools } from './testing/qemu-tools.js';
import { createImage } from './tools/operations.js';

const qemu = QemuTools.find();
const native = loadNative().native;
const dir = mkdtempSync(join(tmpdir(), 'tsvirt-locks-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const at = (name: string) => join(dir, name);

/** The byte ranges of the locks on `path` in /proc/locks, as "start-end" strings: what the kernel says, not what we think. */
function lockedBytes(path: string): string[] {
  const inode = statSync(path).ino;
  return readFileSync('/proc/locks', 'utf8')
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields[1] === 'OFDLCK' && fields[5]?.endsWith(`:${inode}`))
    .map((fields) => `${fields[6]}-${fields[7]}`)
    .sort();
}

describe('the native addon', () => {
  // CI runs on Linux: there the addon must be built and load, or locking silently stops.
  it.skipIf(process.platform !== 'linux' && !process.env.CI)('loads on Linux', () => {
    expect(loadNative().problem).toBeUndefined();
    expect(typeof native?.ofdLock).toBe('function');
  });

  it.skipIf(native === undefined)('rejects arguments of the wrong type or range with a TypeError, not a crash', () => {
    const addon = native as StorageNative;
    expect(() => addon.ofdLock(-1, 0, 1, 1)).toThrow(TypeError);
    expect(() => addon.ofdLock(3, 0.5, 1, 1)).toThrow(TypeError);
    expect(() => addon.seek(3, 0, 7 as 3)).toThrow(TypeError);
    expect(() => addon.zstdCompress('text' as unknown as Uint8Array, new Uint8Array(8))).toThrow(TypeError);
    expect(() => (addon.fallocate as (...args: unknown[]) => number)(3)).toThrow(TypeError);
    // A closed descriptor is an errno, not an exception.
    expect(addon.ofdLock(987654, 100, 1, 1)).toBe(-9);
  });
});

describe.skipIf(native === undefined && !process.env.CI)('QEMU image locks between our own opens', () => {
  it('takes the bytes QEMU takes: a writer 100-101,103 and 201,203; a reader 100 and 201,203; -U only 100', async () => {
    const path = at('bytes.qcow2');
    await (await createImage(path, { format: 'qcow2', size: 1 << 20 })).close();
    const writer = await openImage(path);
    expect(lockedBytes(path)).toEqual(['100-101', '103-103', '201-201', '203-203']);
    await writer.backend.close();
    expect(lockedBytes(path)).toEqual([]);
    const reader = await openImage(path, { readOnly: true });
    expect(lockedBytes(path)).toEqual(['100-100', '201-201', '203-203']);
    await reader.backend.close();
    const forced = await openImage(path, { readOnly: true, forceShare: true });
    expect(lockedBytes(path)).toEqual(['100-100']);
    await forced.backend.close();
  });

  it('refuses a second writer and a reader beside a writer, lets -U through, and releases on close', async () => {
    const path = at('two.raw');
    await (await createImage(path, { format: 'raw', size: 65536 })).close();
    const writer = await openImage(path);
    await expect(openImage(path)).rejects.toMatchObject({ code: 'IMAGE_LOCKED', message: expect.stringContaining('Failed to get "write" lock') });
    await expect(openImage(path, { readOnly: true })).rejects.toMatchObject({ message: expect.stringContaining('Failed to get shared "write" lock') });
    await expect(openImage(path)).rejects.toThrow(`Is another process using the image [${path}]?`);
    const peek = await openImage(path, { readOnly: true, forceShare: true });
    await peek.backend.close();
    await expect(openImage(path, { forceShare: true })).rejects.toThrow('force-share=on can only be used with read-only images');
    // A refused open leaves the writer's locks as they were.
    expect(lockedBytes(path)).toEqual(['100-101', '103-103', '201-201', '203-203']);
    await writer.backend.close();
    const again = await openImage(path);
    await again.backend.close();
  });

  it('readers share with readers; a writer is refused beside one', async () => {
    const path = at('readers.raw');
    writeFileSync(path, new Uint8Array(4096));
    const first = await openImage(path, { readOnly: true });
    const second = await openImage(path, { readOnly: true });
    await expect(openImage(path)).rejects.toThrow('Failed to get "write" lock');
    await first.backend.close();
    await second.backend.close();
  });

  it('create refuses an image in use and leaves it untouched', async () => {
    const path = at('busy.raw');
    writeFileSync(path, new Uint8Array(8192).fill(7));
    const reader = await openImage(path, { readOnly: true });
    await expect(createImage(path, { format: 'qcow2', size: 1 << 20 })).rejects.toMatchObject({ code: 'IMAGE_LOCKED' });
    await reader.backend.close();
    expect(readFileSync(path).every((byte) => byte === 7)).toBe(true);
    expect(statSync(path).size).toBe(8192);
  });

  it("locking: 'off' takes no locks, as QEMU's locking=off", async () => {
    const path = at('off.raw');
    writeFileSync(path, new Uint8Array(4096));
    const first = await openImage(path, { locking: 'off' });
    const second = await openImage(path, { locking: 'off' });
    expect(lockedBytes(path)).toEqual([]);
    await first.backend.close();
    await second.backend.close();
  });

  it('a lock request that fails midway releases the bytes it took', async () => {
    const path = at('partial.raw');
    writeFileSync(path, new Uint8Array(4096));
    const holder = await NodeImageFile.open(path, { lock: lockRequestFor(true, false) });
    const other = await NodeImageFile.open(path, { readOnly: true });
    const fd = (other as unknown as { handle: { fd: number } }).handle.fd;
    expect(() => applyImageLocks(native as StorageNative, fd, path, lockRequestFor(false, false))).toThrow('Failed to get shared "write" lock');
    await holder.close();
    // Only the holder ever had bytes; the refused description kept none.
    expect(lockedBytes(path)).toEqual([]);
    await other.close();
  });
});

describe.skipIf((!qemu || native === undefined) && !process.env.CI)('QEMU image locks against QEMU', () => {
  const tools = qemu as QemuTools;

  it('our qcow2 writer blocks qemu-io writes, qemu-img resize and a plain qemu-img info; info -U still works', async () => {
    const path = at('ours.qcow2');
    tools.img(['create', '-q', '-f', 'qcow2', path, '1M']);
    const writer = await openImage(path);
    const write = await tools.run('qemu-io', ['-f', 'qcow2', '-c', 'write 0 512', path]);
    expect(write.status).not.toBe(0);
    expect(write.stderr).toContain('Failed to get "write" lock');
    expect(write.stderr).toContain('Is another process using the image');
    const resize = await tools.run('qemu-img', ['resize', '-f', 'qcow2', path, '2M']);
    expect(resize.status).not.toBe(0);
    expect(resize.stderr).toContain('Failed to get "write" lock');
    const info = await tools.run('qemu-img', ['info', path]);
    expect(info.stderr).toContain('Failed to get shared "write" lock');
    const shared = await tools.run('qemu-img', ['info', '-U', '--output=json', path]);
    expect(shared.status).toBe(0);
    expect(JSON.parse(shared.stdout)['virtual-size']).toBe(1 << 20);
    await writer.backend.close();
    expect((await tools.run('qemu-io', ['-f', 'qcow2', '-c', 'write 0 512', path])).status).toBe(0);
  });

  it('our raw writer blocks a qemu-io writer; our raw reader blocks it too', async () => {
    const path = at('ours.raw');
    tools.img(['create', '-q', '-f', 'raw', path, '1M']);
    for (const readOnly of [false, true]) {
      const opened = await openImage(path, { readOnly });
      const write = await tools.run('qemu-io', ['-f', 'raw', '-c', 'write 0 512', path]);
      expect(write.stderr).toContain('Failed to get "write" lock');
      await opened.backend.close();
    }
  });

  it('qemu-nbd holding a qcow2 image read-write refuses our writer and reader; -U reads it', async () => {
    const path = at('theirs.qcow2');
    tools.img(['create', '-q', '-f', 'qcow2', path, '1M']);
    tools.io(path, 'qcow2', ['write -P 0x5a 0 4096']);
    const server = tools.serveNbd(path, 'qcow2', at('theirs.sock'));
    try {
      await expect(openImage(path)).rejects.toThrow(/Failed to get "write" lock\nIs another process using the image/);
      await expect(openImage(path, { readOnly: true })).rejects.toThrow('Failed to get shared "write" lock');
      const peek = await openImage(path, { readOnly: true, forceShare: true });
      const sector = new Uint8Array(512);
      await peek.backend.readAt(0, sector);
      expect(sector.every((byte) => byte === 0x5a)).toBe(true);
      await peek.backend.close();
    } finally {
      server.stop();
    }
    await (await openImage(path)).backend.close();
  });

  it('qemu-nbd serving raw read-only lets our readers in and refuses our writer', async () => {
    const path = at('theirs.raw');
    tools.img(['create', '-q', '-f', 'raw', path, '1M']);
    const server = tools.serveNbd(path, 'raw', at('theirs-raw.sock'), { readOnly: true });
    try {
      // qemu-nbd -r on raw takes 100 and refuses resize (203): our writer wants resize.
      await expect(openImage(path)).rejects.toThrow('Failed to get "resize" lock');
      await (await openImage(path, { readOnly: true })).backend.close();
    } finally {
      server.stop();
    }
  });
});
