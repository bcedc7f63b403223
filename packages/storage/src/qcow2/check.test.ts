import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NodeImageFile } from '../image-file.js';
import { openImage } from '../open.js';
import { QemuTools } from '../testing/qemu-tools.js';
import { runImgCommand } from '../tools/img-command.js';
import { checkQcow2 } from './check.js';
import { createQcow2 } from './create.js';
import { Qcow2Backend } from './qcow2.js';

const qemu = QemuTools.find();
const dir = mkdtempSync(join(tmpdir(), 'tsvirt-qcow2-check-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!qemu)('check agrees with qemu-img check', () => {
  const tools = qemu!;

  it('a writer killed with lazy refcounts: same findings as qemu-img, rebuilt on a writable open', async () => {
    const path = join(dir, 'dirty.qcow2');
    tools.img(['create', '-q', '-f', 'qcow2', '-o', 'lazy_refcounts=on', path, '4M']);
    try {
      tools.io(path, 'qcow2', ['write -P 7 0 1M', 'write -P 9 2M 100k', 'sigraise 9']);
    } catch {
      // qemu-io killed itself, as asked: the image is left dirty.
    }
    const theirs = tools.check(path);
    expect(theirs.status).toBe(2);
    const readOnly = await Qcow2Backend.open(await NodeImageFile.open(path, { readOnly: true }));
    const ours = await checkQcow2(readOnly);
    await readOnly.close();
    expect(ours.corruptions).toBe(theirs.result.corruptions);
    expect(ours.leaks).toBe(theirs.result.leaks ?? 0);

    const raw = join(dir, 'dirty.raw');
    tools.img(['convert', '-O', 'raw', path, raw]);
    const opened = await openImage(path);
    const bytes = new Uint8Array(opened.backend.size);
    await opened.backend.readAt(0, bytes);
    await opened.backend.close();
    expect(Buffer.compare(bytes, readFileSync(raw))).toBe(0);
    expect(tools.check(path).status).toBe(0);
  });

  it('persistent bitmaps: their clusters are not leaks while valid; a writable open invalidates them', async () => {
    const path = join(dir, 'bitmaps.qcow2');
    tools.img(['create', '-q', '-f', 'qcow2', path, '4M']);
    tools.img(['bitmap', '--add', path, 'b0']);
    tools.io(path, 'qcow2', ['write 0 64k', 'write 1M 64k']);
    const readOnly = await Qcow2Backend.open(await NodeImageFile.open(path, { readOnly: true }));
    const ours = await checkQcow2(readOnly);
    await readOnly.close();
    expect(tools.check(path).status).toBe(0);
    expect(ours).toMatchObject({ leaks: 0, corruptions: 0 });
    const writable = await openImage(path);
    await writable.backend.writeAt(0, new Uint8Array(10));
    await writable.backend.close();
    const after = tools.check(path);
    expect(after.status).toBe(3);
    const again = await Qcow2Backend.open(await NodeImageFile.open(path, { readOnly: true }));
    expect((await checkQcow2(again)).leaks).toBe(after.result.leaks);
    await again.close();
  });

  it('check -r all on an image marked corrupt repairs it and lifts the mark', async () => {
    const path = join(dir, 'marked.qcow2');
    tools.img(['create', '-q', '-f', 'qcow2', path, '1M']);
    tools.io(path, 'qcow2', ['write -P 1 0 64k']);
    const header = await NodeImageFile.open(path);
    await header.write(79, new Uint8Array([2])); // incompatible feature bit 1: corrupt
    await header.close();
    await expect(openImage(path)).rejects.toMatchObject({ code: 'IMAGE_CORRUPT' });
    const quiet = { stdout: () => {}, stderr: () => {} };
    expect(await runImgCommand(['check', '-r', 'all', path], quiet)).toBe(0);
    const info = JSON.parse(tools.img(['info', '--output=json', path])) as { 'format-specific': { data: { corrupt: boolean } } };
    expect(info['format-specific'].data.corrupt).toBe(false);
    const reopened = await openImage(path);
    await reopened.backend.close();
  });

  it('leaks are found, counted like qemu-img (exit 3) and repaired with repair: leaks', async () => {
    const path = join(dir, 'leaky.qcow2');
    const image = await createQcow2(await NodeImageFile.open(path, { create: true }), { size: 1 << 20, clusterSize: 4096 });
    await image.writeAt(0, new Uint8Array(10000).fill(1));
    // Allocate clusters nothing points at.
    await image.metadata.refcounts.allocate(3);
    await image.writeAt(20000, new Uint8Array(100).fill(2));
    const before = await checkQcow2(image);
    await image.close();
    const theirs = tools.check(path);
    expect(theirs.status).toBe(3);
    expect(theirs.result.leaks).toBe(3);
    expect(before).toMatchObject({ leaks: 3, corruptions: 0, leaksFixed: 0 });
    expect(before.imageEndOffset).toBe(theirs.result['image-end-offset']);
    expect(before.allocatedClusters).toBe(theirs.result['allocated-clusters']);

    const again = await Qcow2Backend.open(await NodeImageFile.open(path));
    const repaired = await checkQcow2(again, { repair: 'leaks' });
    expect(repaired).toMatchObject({ leaks: 3, leaksFixed: 3 });
    expect((await checkQcow2(again)).leaks).toBe(0);
    await again.close();
    expect(tools.check(path).status).toBe(0);
  });

  it('a refcount too low is an error (exit 2 in qemu-img) that repair: all fixes', async () => {
    const path = join(dir, 'low.qcow2');
    const image = await createQcow2(await NodeImageFile.open(path, { create: true }), { size: 1 << 20, clusterSize: 4096 });
    await image.writeAt(0, new Uint8Array(10000).fill(1));
    const map = await image.map(0, 4096);
    await image.metadata.refcounts.set(map[0]!.host! / 4096, 0);
    await image.close();
    expect(tools.check(path).status).toBe(2);
    const again = await Qcow2Backend.open(await NodeImageFile.open(path));
    const report = await checkQcow2(again, { repair: 'all' });
    expect(report.corruptions).toBeGreaterThan(0);
    expect(report.corruptionsFixed).toBe(report.corruptions);
    await again.close();
    expect(tools.check(path).status).toBe(0);
  });
});
