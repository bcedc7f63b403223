import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openImage } from '../open.js';
import { mapImage } from '../tools/map.js';
import { QemuTools } from '../testing/qemu-tools.js';

const qemu = QemuTools.find();
const dir = mkdtempSync(join(tmpdir(), 'tsvirt-qcow2-read-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Reads the whole disk through our backend. */
async function readAll(path: string): Promise<Uint8Array> {
  const image = await openImage(path, { readOnly: true });
  try {
    const bytes = new Uint8Array(image.backend.size);
    await image.backend.readAt(0, bytes);
    return bytes;
  } finally {
    await image.backend.close();
  }
}

/** QEMU's reading of the disk: `qemu-img convert -O raw`. */
function qemuRaw(tools: QemuTools, path: string): Uint8Array {
  const raw = join(dir, `expected-${Math.random().toString(36).slice(2)}.raw`);
  tools.img(['convert', '-O', 'raw', path, raw]);
  const bytes = readFileSync(raw);
  rmSync(raw);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Our map of the image equals `qemu-img map --output=json`. */
async function expectSameMap(tools: QemuTools, path: string): Promise<void> {
  const image = await openImage(path, { readOnly: true });
  try {
    expect(await mapImage(image)).toEqual(JSON.parse(tools.img(['map', '--output=json', path])));
  } finally {
    await image.backend.close();
  }
}

function expectSameDisk(ours: Uint8Array, theirs: Uint8Array): void {
  expect(ours.length).toBe(theirs.length);
  // Compare as a whole first (fast), then find the first difference for the message.
  if (Buffer.compare(ours, theirs) !== 0) {
    const first = ours.findIndex((byte, i) => byte !== theirs[i]);
    expect({ first, ours: ours[first], theirs: theirs[first] }).toEqual({ first, ours: theirs[first], theirs: theirs[first] });
  }
}

/** Writes a pattern with qemu-io that touches every cluster type: data, partial, zero, discarded. */
function scribble(tools: QemuTools, path: string, clusterSize: number, options: { compress?: boolean } = {}): void {
  const commands = [
    'write -P 0x11 0 4096',
    `write -P 0x22 ${clusterSize + 512} ${3 * clusterSize}`,
    `write -P 0x33 ${8 * clusterSize - 1024} 2048`,
    `write -z ${2 * clusterSize} ${clusterSize}`,
    `write -P 0x44 ${12 * clusterSize} ${2 * clusterSize}`,
    `discard ${12 * clusterSize} ${clusterSize}`,
    `write -P 0x55 ${20 * clusterSize + 100} 300`,
  ];
  if (options.compress) commands.push(`write -c -P 0x66 ${16 * clusterSize} ${clusterSize}`, `write -c -P 0x67 ${17 * clusterSize} ${clusterSize}`);
  tools.io(path, 'qcow2', commands);
}

interface Case {
  name: string;
  options: string;
  clusterSize: number;
  compress?: boolean;
}

const cases: Case[] = [
  { name: 'compat 0.10', options: 'compat=0.10', clusterSize: 65536, compress: true },
  { name: 'compat 1.1, 512 B clusters', options: 'compat=1.1,cluster_size=512', clusterSize: 512, compress: true },
  { name: 'compat 1.1, 4 KiB clusters', options: 'cluster_size=4096', clusterSize: 4096 },
  { name: 'compat 1.1, 2 MiB clusters', options: 'cluster_size=2M', clusterSize: 2 << 20 },
  ...[1, 2, 4, 8, 32, 64].map((bits) => ({ name: `refcount_bits=${bits}`, options: `refcount_bits=${bits},cluster_size=4096`, clusterSize: 4096 })),
  { name: 'zlib compression', options: 'compression_type=zlib,cluster_size=4096', clusterSize: 4096, compress: true },
  { name: 'zstd compression', options: 'compression_type=zstd,cluster_size=4096', clusterSize: 4096, compress: true },
  { name: 'extended L2, 64 KiB clusters', options: 'extended_l2=on', clusterSize: 65536, compress: true },
  { name: 'extended L2, 2 MiB clusters', options: 'extended_l2=on,cluster_size=2M', clusterSize: 2 << 20 },
  { name: 'lazy refcounts', options: 'lazy_refcounts=on', clusterSize: 65536 },
  { name: 'preallocation=metadata', options: 'preallocation=metadata', clusterSize: 65536 },
  { name: 'preallocation=falloc, extended L2', options: 'preallocation=falloc,extended_l2=on', clusterSize: 65536 },
];

describe.skipIf(!qemu)('reading images made by qemu-img equals qemu-img convert -O raw', () => {
  const tools = qemu!;
  for (const testCase of cases) {
    it(testCase.name, async () => {
      const path = join(dir, `${testCase.name.replace(/\W+/g, '-')}.qcow2`);
      const size = 24 * testCase.clusterSize + 4096;
      tools.img(['create', '-q', '-f', 'qcow2', '-o', testCase.options, path, String(size)]);
      scribble(tools, path, testCase.clusterSize, { compress: testCase.compress ?? false });
      expectSameDisk(await readAll(path), qemuRaw(tools, path));
      // qemu-img map looks through preallocated clusters into the host file's holes (SEEK_DATA), which Node cannot see.
      if (!testCase.options.includes('preallocation')) await expectSameMap(tools, path);
    });
  }

  it('an external data file, raw and not raw', async () => {
    for (const raw of ['on', 'off']) {
      const path = join(dir, `data-file-${raw}.qcow2`);
      const data = join(dir, `data-file-${raw}.data`);
      tools.img(['create', '-q', '-f', 'qcow2', '-o', `data_file=${data},data_file_raw=${raw}`, path, '2M']);
      scribble(tools, path, 65536);
      expectSameDisk(await readAll(path), qemuRaw(tools, path));
      await expectSameMap(tools, path);
    }
  });

  it('a backing chain three deep, with a smaller base', async () => {
    const base = join(dir, 'chain-base.raw');
    const middle = join(dir, 'chain-middle.qcow2');
    const top = join(dir, 'chain-top.qcow2');
    tools.img(['create', '-q', '-f', 'raw', base, '1M']);
    tools.io(base, 'raw', ['write -P 0xa1 0 1M']);
    tools.img(['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'raw', middle, '2M']);
    tools.io(middle, 'qcow2', ['write -P 0xb2 65536 100000', 'write -z 300000 70000']);
    tools.img(['create', '-q', '-f', 'qcow2', '-b', 'chain-middle.qcow2', '-F', 'qcow2', top, '3M']);
    tools.io(top, 'qcow2', ['write -P 0xc3 1000 2000', 'discard 131072 65536', 'write -P 0xc4 2500000 10']);
    expectSameDisk(await readAll(top), qemuRaw(tools, top));
    await expectSameMap(tools, top);
  });

  it('internal snapshots: the active layer and each applied snapshot', async () => {
    const path = join(dir, 'snapshots.qcow2');
    tools.img(['create', '-q', '-f', 'qcow2', path, '1M']);
    tools.io(path, 'qcow2', ['write -P 0x01 0 300000']);
    tools.img(['snapshot', '-c', 'first', path]);
    tools.io(path, 'qcow2', ['write -P 0x02 65536 65536', 'write -z 200000 10000']);
    tools.img(['snapshot', '-c', 'second', path]);
    tools.io(path, 'qcow2', ['write -P 0x03 0 4096', 'discard 196608 65536']);
    const active = qemuRaw(tools, path);
    expectSameDisk(await readAll(path), active);
    const listed = await openImage(path, { readOnly: true });
    const names = await (listed.backend as import('./qcow2.js').Qcow2Backend).listSnapshots();
    await listed.backend.close();
    expect(names.map((snapshot) => snapshot.name)).toEqual(['first', 'second']);
    for (const name of ['first', 'second']) {
      const copy = join(dir, `snapshot-${name}.qcow2`);
      tools.img(['convert', '-O', 'qcow2', '-l', `snapshot.name=${name}`, path, copy]);
      const expected = qemuRaw(tools, copy);
      const image = await openImage(path);
      const backend = image.backend as import('./qcow2.js').Qcow2Backend;
      await backend.applySnapshot(name);
      const bytes = new Uint8Array(backend.size);
      await backend.readAt(0, bytes);
      await backend.close();
      expectSameDisk(bytes, expected);
      expect(tools.check(path).status).toBe(0);
    }
  });
});

// Without qemu-img the interoperability suites above are skipped: say how to enable them, and refuse that in CI.
if (!qemu) {
  if (process.env.CI) {
    it('QEMU interoperability suites need qemu-img', () => {
      throw new Error(QemuTools.missing);
    });
  } else {
    it.skip(`QEMU interoperability suites: ${QemuTools.missing}`);
  }
}
