import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryImageFile } from '../image-file.js';
import { loadNative } from '../native.js';
import { openImage } from '../open.js';
import { runImg as img } from '../testing/img.js';
import { QemuTools } from '../testing/qemu-tools.js';
import { compressCluster, decompressCluster, zstdFrameLength } from './compression.js';
import { createQcow2 } from './create.js';

const qemu = QemuTools.find();
const native = loadNative().native;
const dir = mkdtempSync(join(tmpdir(), 'tsvirt-zstd-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const at = (name: string) => join(dir, name);

/** A disk of compressible text, incompressible noise and zeros, cluster by cluster. */
function mixedContents(clusterSize: number, clusters: number): Uint8Array {
  const bytes = new Uint8Array(clusterSize * clusters);
  const text = new TextEncoder().encode('the quick brown fox jumps over the lazy dog; '.repeat(Math.ceil(clusterSize / 45)));
  for (let cluster = 0; cluster < clusters; cluster++) {
    const kind = cluster % 4;
    const start = cluster * clusterSize;
    if (kind === 0 || kind === 3) bytes.set(text.subarray(0, clusterSize), start);
    else if (kind === 1) bytes.set(randomBytes(clusterSize), start);
    // kind 2 stays zero.
  }
  // One cluster that is half noise: compressible, but only just.
  bytes.set(randomBytes(clusterSize / 2), 3 * clusterSize);
  return bytes;
}

describe.skipIf(native === undefined && !process.env.CI)('zstd compressed clusters, written', () => {
  it('a compressed cluster is one plain zstd frame shorter than the cluster, and reads back', () => {
    const cluster = new Uint8Array(65536).fill(0x41);
    const compressed = compressCluster('zstd', cluster)!;
    expect(compressed.length).toBeLessThan(65535);
    expect([...compressed.subarray(0, 4)]).toEqual([0x28, 0xb5, 0x2f, 0xfd]);
    expect(zstdFrameLength(compressed)).toBe(compressed.length);
    expect(decompressCluster('zstd', compressed, 65536)).toEqual(cluster);
    // Noise does not fit in a cluster less a byte: it is stored as it is.
    expect(compressCluster('zstd', new Uint8Array(randomBytes(65536)))).toBeUndefined();
  });

  it('writeCompressed on an image with compression_type=zstd reads back identically', async () => {
    const clusterSize = 4096;
    const contents = mixedContents(clusterSize, 16);
    const image = await createQcow2(new MemoryImageFile(), { size: contents.length, clusterSize, compressionType: 'zstd' });
    await image.writeCompressed(0, contents);
    const back = new Uint8Array(contents.length);
    await image.readAt(0, back);
    expect(Buffer.compare(back, contents)).toBe(0);
    const kinds = (await image.map(0, image.size)).map((extent) => extent.kind);
    expect(kinds).toContain('compressed');
    expect(kinds).toContain('data');
    await image.close();
  });
});

describe.skipIf((!qemu || native === undefined) && !process.env.CI)('zstd compressed clusters against qemu-img', () => {
  const tools = qemu as QemuTools;

  for (const clusterSize of [512, 4096, 65536]) {
    it(`convert -c -o compression_type=zstd (cluster_size=${clusterSize}): qemu-img reads it identically, check is clean, as many clusters compressed as qemu-img's own`, async () => {
      const contents = mixedContents(clusterSize, 24);
      const source = at(`source-${clusterSize}.raw`);
      writeFileSync(source, contents);
      const ours = at(`ours-${clusterSize}.qcow2`);
      const result = await img('convert', '-c', '-f', 'raw', '-O', 'qcow2', '-o', `compression_type=zstd,cluster_size=${clusterSize}`, source, ours);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      const info = JSON.parse(tools.img(['info', '--output=json', ours])) as { 'format-specific': { data: { 'compression-type': string } } };
      expect(info['format-specific'].data['compression-type']).toBe('zstd');
      const check = tools.check(ours);
      expect(check.status).toBe(0);
      const back = at(`back-${clusterSize}.raw`);
      tools.img(['convert', '-O', 'raw', ours, back]);
      expect(Buffer.compare(readFileSync(back), contents)).toBe(0);
      // The same size rule as QEMU's: the same clusters end up compressed.
      const theirs = at(`theirs-${clusterSize}.qcow2`);
      tools.img(['convert', '-c', '-f', 'raw', '-O', 'qcow2', '-o', `compression_type=zstd,cluster_size=${clusterSize}`, source, theirs]);
      expect(check.result['compressed-clusters']).toBe(tools.check(theirs).result['compressed-clusters']);
      expect(check.result['compressed-clusters']).toBeGreaterThan(0);
      // And we read QEMU's image as QEMU does.
      const opened = await openImage(theirs, { readOnly: true });
      const read = new Uint8Array(contents.length);
      await opened.backend.readAt(0, read);
      await opened.backend.close();
      expect(Buffer.compare(read, contents)).toBe(0);
    });
  }
});
