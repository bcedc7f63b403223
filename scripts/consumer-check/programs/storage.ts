/**
 * A consumer of @tsvirt/storage alone (scripts/consumer-check): reads qcow2
 * images qemu-img made — plain, zstd-compressed, and an overlay qemu-io wrote
 * to over a backing file — and compares every byte with what qemu-img was
 * given; then writes an image that qemu-img must find clean and identical.
 *
 * node storage.js FIXTURES addon|no-addon
 *   addon: the tarball's native addon loads, so a second writer is refused
 *          with QEMU's lock error;
 *   no-addon: the addon was removed, so the package warns once
 *          (TSVIRT_STORAGE_NO_NATIVE) and opens images without locks.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createQcow2, ImageLockedError, imageInfo, NodeImageFile, openImage } from '@tsvirt/storage';

const [fixtures, mode] = process.argv.slice(2);
if (fixtures === undefined || (mode !== 'addon' && mode !== 'no-addon')) throw new Error('usage: storage.js FIXTURES addon|no-addon');
const warnings: string[] = [];
process.on('warning', (warning) => warnings.push((warning as Error & { code?: string }).code ?? warning.name));

const data = new Uint8Array(readFileSync(path.join(fixtures, 'data.raw')));
// qemu-io wrote 0x5a over 64 KiB at 1 MiB of the overlay.
const overlaid = data.slice();
overlaid.fill(0x5a, 1 << 20, (1 << 20) + (64 << 10));

for (const [name, expected] of [['plain.qcow2', data], ['zstd.qcow2', data], ['overlay.qcow2', overlaid]] as const) {
  const image = await openImage(path.join(fixtures, name), { readOnly: true });
  assert.equal(image.format, 'qcow2', name);
  assert.equal(image.backend.size, expected.length, name);
  const contents = new Uint8Array(expected.length);
  await image.backend.readAt(0, contents);
  assert.ok(Buffer.from(contents).equals(Buffer.from(expected)), `${name} reads back what qemu-img was given`);
  await image.backend.close();
}
const [overlay] = await imageInfo(path.join(fixtures, 'overlay.qcow2'));
assert.equal(overlay?.['backing-filename'], 'plain.qcow2');
assert.equal(overlay?.['format-specific']?.data['compression-type'], 'zlib');
const [zstd] = await imageInfo(path.join(fixtures, 'zstd.qcow2'));
assert.equal(zstd?.['format-specific']?.data['compression-type'], 'zstd');

// QEMU's image locks, through the native addon.
copyFileSync(path.join(fixtures, 'plain.qcow2'), 'mine.qcow2');
const writer = await openImage('mine.qcow2');
const second = openImage('mine.qcow2');
if (mode === 'addon') {
  await assert.rejects(second, ImageLockedError);
} else {
  await (await second).backend.close();
}
await writer.backend.close();

// An image written here, judged by qemu-img.
const written = await createQcow2(await NodeImageFile.open('written.qcow2', { create: true }), { size: data.length });
await written.writeAt(0, data);
await written.close();
writeFileSync('expected.raw', data);
execFileSync('qemu-img', ['check', 'written.qcow2'], { stdio: 'pipe' });
execFileSync('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', 'expected.raw', 'written.qcow2'], { stdio: 'pipe' });

await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
assert.deepEqual(warnings.filter((code) => code === 'TSVIRT_STORAGE_NO_NATIVE'), mode === 'addon' ? [] : ['TSVIRT_STORAGE_NO_NATIVE']);
console.log(`storage: 3 qemu-img images read, locks ${mode === 'addon' ? 'held' : 'off without the addon'}, written image passes qemu-img check`);
