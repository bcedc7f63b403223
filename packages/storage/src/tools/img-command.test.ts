import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { QemuTools } from '../testing/qemu-tools.js';
import { runImg } from '../testing/img.js';

const qemu = QemuTools.find();
const dir = mkdtempSync(join(tmpdir(), 'tsvirt-img-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const at = (name: string) => join(dir, name);

const img = runImg;

function rawOf(tools: QemuTools, path: string): Buffer {
  const raw = at(`raw-${Math.random().toString(36).slice(2)}`);
  tools.img(['convert', '-O', 'raw', path, raw]);
  const bytes = readFileSync(raw);
  rmSync(raw);
  return bytes;
}

describe('argument handling without QEMU', () => {
  it('unknown commands and options fail with exit code 1 and a message', async () => {
    expect((await img('frobnicate')).code).toBe(1);
    const help = await img('--help');
    expect(help.code).toBe(0);
    for (const command of ['create', 'info', 'check', 'convert', 'snapshot', 'commit', 'rebase', 'resize', 'map', 'measure', 'amend', 'compare']) {
      expect(help.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
    }
    const bad = await img('create', '-f', 'qcow2', '-o', 'cluster_size=1000', at('bad.qcow2'), '1M');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/cluster size/);
    expect((await img('create', '-f', 'qcow2', '-o', 'nonsense=1', at('bad.qcow2'), '1M')).stderr).toMatch(/Invalid parameter 'nonsense'/);
  });
});

describe.skipIf(!qemu)('tsvirt img against qemu-img', () => {
  const tools = qemu!;

  it('create: qemu-img info reports what was asked for, and check is clean', async () => {
    const path = at('created.qcow2');
    expect((await img('create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4096,refcount_bits=8,lazy_refcounts=on,extended_l2=off', path, '3M')).code).toBe(0);
    const info = JSON.parse(tools.img(['info', '--output=json', path])) as Record<string, unknown>;
    expect(info['virtual-size']).toBe(3 << 20);
    expect(info['cluster-size']).toBe(4096);
    expect(info['format-specific']).toEqual({
      type: 'qcow2',
      data: { compat: '1.1', 'compression-type': 'zlib', 'lazy-refcounts': true, 'refcount-bits': 8, corrupt: false, 'extended-l2': false },
    });
    expect(tools.check(path).status).toBe(0);
  });

  it.each(['off', 'metadata', 'full'])('create with preallocation=%s passes qemu-img check and reads zeros', async (mode) => {
    const path = at(`prealloc-${mode}.qcow2`);
    expect((await img('create', '-q', '-f', 'qcow2', '-o', `preallocation=${mode},cluster_size=65536`, path, '5M')).code).toBe(0);
    expect(tools.check(path).status).toBe(0);
    expect(rawOf(tools, path).every((byte) => byte === 0)).toBe(true);
    const map = JSON.parse(tools.img(['map', '--output=json', path])) as Array<{ data: boolean }>;
    expect(map.some((entry) => entry.data)).toBe(mode !== 'off');
  });

  it('info --output=json and --backing-chain match qemu-img on the fields both report', async () => {
    const base = at('info-base.qcow2');
    const top = at('info-top.qcow2');
    tools.img(['create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', base, '2M']);
    tools.img(['create', '-q', '-f', 'qcow2', '-b', 'info-base.qcow2', '-F', 'qcow2', '-o', 'cluster_size=16384,extended_l2=on,compression_type=zstd', top]);
    tools.img(['snapshot', '-c', 'snap', top]);
    const ours = JSON.parse((await img('info', '--output=json', '--backing-chain', top)).stdout) as Array<Record<string, unknown>>;
    const theirs = JSON.parse(tools.img(['info', '--output=json', '--backing-chain', top])) as Array<Record<string, unknown>>;
    expect(ours).toHaveLength(2);
    const keys = ['virtual-size', 'cluster-size', 'format', 'format-specific', 'dirty-flag', 'backing-filename', 'backing-filename-format', 'full-backing-filename'];
    for (let layer = 0; layer < 2; layer++) {
      for (const key of keys) expect([key, ours[layer]![key]]).toEqual([key, theirs[layer]![key]]);
    }
    const names = (list: unknown) => (list as Array<{ name: string; id: string }>).map((snapshot) => `${snapshot.id}:${snapshot.name}`);
    expect(names(ours[0]!.snapshots)).toEqual(names(theirs[0]!.snapshots));
  });

  it('convert in every direction, with -c, reads identical and checks clean', async () => {
    const source = at('convert-source.qcow2');
    tools.img(['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4096', source, '2M']);
    tools.io(source, 'qcow2', ['write -P 0x21 0 100000', 'write -c -P 0x22 1M 8192', 'write -z 200000 50000']);
    const expected = rawOf(tools, source);
    expect((await img('convert', '-O', 'raw', source, at('c.raw'))).code).toBe(0);
    expect(Buffer.compare(readFileSync(at('c.raw')), expected)).toBe(0);
    expect((await img('convert', '-f', 'raw', '-O', 'qcow2', '-c', at('c.raw'), at('c.qcow2'))).code).toBe(0);
    expect(Buffer.compare(rawOf(tools, at('c.qcow2')), expected)).toBe(0);
    const check = tools.check(at('c.qcow2'));
    expect(check.status).toBe(0);
    expect(check.result['compressed-clusters']).toBeGreaterThan(0);
    expect((await img('convert', '-O', 'qcow2', '-o', 'compat=0.10,cluster_size=512', at('c.qcow2'), at('c2.qcow2'))).code).toBe(0);
    expect(Buffer.compare(rawOf(tools, at('c2.qcow2')), expected)).toBe(0);
    expect(tools.check(at('c2.qcow2')).status).toBe(0);
    // Sparse detection: the zero runs were not allocated.
    const map = JSON.parse(tools.img(['map', '--output=json', at('c2.qcow2')])) as Array<{ start: number; data: boolean }>;
    expect(map.find((entry) => entry.start <= 1_500_000 && entry.data)?.start ?? -1).toBeLessThan(1_500_000);
    expect(map.filter((entry) => entry.data).reduce((sum, entry) => sum + (entry as unknown as { length: number }).length, 0)).toBeLessThan(200_000);
  });

  it('map --output=json equals qemu-img map on a qcow2 chain', async () => {
    const base = at('map-base.qcow2');
    const top = at('map-top.qcow2');
    tools.img(['create', '-q', '-f', 'qcow2', base, '4M']);
    tools.io(base, 'qcow2', ['write -P 1 0 1M', 'write -z 2M 128k']);
    tools.img(['create', '-q', '-f', 'qcow2', '-b', 'map-base.qcow2', '-F', 'qcow2', top, '6M']);
    tools.io(top, 'qcow2', ['write -P 2 64k 64k', 'write -z 512k 64k', 'write -P 3 5M 10']);
    const ours = JSON.parse((await img('map', '--output=json', top)).stdout) as unknown;
    const theirs = JSON.parse(tools.img(['map', '--output=json', top])) as unknown;
    expect(ours).toEqual(theirs);
  });

  it('snapshot -c/-l/-a/-d', async () => {
    const path = at('snap.qcow2');
    tools.img(['create', '-q', '-f', 'qcow2', path, '1M']);
    tools.io(path, 'qcow2', ['write -P 5 0 64k']);
    expect((await img('snapshot', '-c', 'before', path)).code).toBe(0);
    tools.io(path, 'qcow2', ['write -P 6 0 64k']);
    expect(tools.img(['snapshot', '-l', path])).toMatch(/before/);
    expect((await img('snapshot', '-l', path)).stdout).toMatch(/1 +before/);
    expect((await img('snapshot', '-a', 'before', path)).code).toBe(0);
    expect(rawOf(tools, path)[0]).toBe(5);
    expect((await img('snapshot', '-d', 'before', path)).code).toBe(0);
    expect(tools.img(['snapshot', '-l', path])).not.toMatch(/before/);
    expect(tools.check(path).status).toBe(0);
    expect((await img('snapshot', '-a', 'missing', path)).code).toBe(1);
  });

  it('commit writes the top into its base and empties the top', async () => {
    const base = at('commit-base.qcow2');
    const top = at('commit-top.qcow2');
    tools.img(['create', '-q', '-f', 'qcow2', base, '2M']);
    tools.io(base, 'qcow2', ['write -P 1 0 2M']);
    tools.img(['create', '-q', '-f', 'qcow2', '-b', 'commit-base.qcow2', '-F', 'qcow2', top]);
    tools.io(top, 'qcow2', ['write -P 2 100000 300000', 'write -z 1M 64k']);
    const expected = rawOf(tools, top);
    expect((await img('commit', top)).code).toBe(0);
    expect(Buffer.compare(rawOf(tools, base), expected)).toBe(0);
    expect(Buffer.compare(rawOf(tools, top), expected)).toBe(0);
    expect(tools.check(base).status).toBe(0);
    expect(tools.check(top).status).toBe(0);
    const map = JSON.parse(tools.img(['map', '--output=json', top])) as Array<{ depth: number }>;
    expect(map.every((entry) => entry.depth === 1)).toBe(true);
  });

  it('rebase: safe keeps the guest view, -u only renames', async () => {
    const one = at('rebase-one.qcow2');
    const two = at('rebase-two.qcow2');
    const top = at('rebase-top.qcow2');
    tools.img(['create', '-q', '-f', 'qcow2', one, '1M']);
    tools.io(one, 'qcow2', ['write -P 1 0 1M']);
    tools.img(['create', '-q', '-f', 'qcow2', two, '1M']);
    tools.io(two, 'qcow2', ['write -P 1 0 512k', 'write -P 9 512k 512k']);
    tools.img(['create', '-q', '-f', 'qcow2', '-b', 'rebase-one.qcow2', '-F', 'qcow2', top]);
    tools.io(top, 'qcow2', ['write -P 3 0 4096']);
    const before = rawOf(tools, top);
    expect((await img('rebase', '-b', 'rebase-two.qcow2', '-F', 'qcow2', top)).code).toBe(0);
    const info = JSON.parse(tools.img(['info', '--output=json', top])) as Record<string, unknown>;
    expect(info['backing-filename']).toBe('rebase-two.qcow2');
    expect(Buffer.compare(rawOf(tools, top), before)).toBe(0);
    expect(tools.check(top).status).toBe(0);
    expect((await img('rebase', '-u', '-b', 'rebase-one.qcow2', '-F', 'qcow2', top)).code).toBe(0);
    expect((JSON.parse(tools.img(['info', '--output=json', top])) as Record<string, unknown>)['backing-filename']).toBe('rebase-one.qcow2');
  });

  it('resize: grow, refuse to shrink without --shrink, shrink with it', async () => {
    const path = at('resize.qcow2');
    tools.img(['create', '-q', '-f', 'qcow2', path, '1M']);
    tools.io(path, 'qcow2', ['write -P 4 0 1M']);
    expect((await img('resize', path, '+3M')).code).toBe(0);
    expect((JSON.parse(tools.img(['info', '--output=json', path])) as Record<string, unknown>)['virtual-size']).toBe(4 << 20);
    const refused = await img('resize', path, '512K');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/--shrink/);
    expect((await img('resize', '--shrink', path, '300000')).code).toBe(1); // not a multiple of 512: qemu-img refuses too
    expect((await img('resize', '--shrink', path, '512K')).code).toBe(0);
    expect(tools.check(path).status).toBe(0);
    const raw = rawOf(tools, path);
    expect(raw.length).toBe(512 << 10);
    expect(raw.every((byte) => byte === 4)).toBe(true);
  });

  it('compare: exit 0 when identical, 1 with the first differing offset like qemu-img', async () => {
    const a = at('cmp-a.qcow2');
    const b = at('cmp-b.qcow2');
    tools.img(['create', '-q', '-f', 'qcow2', a, '1M']);
    tools.img(['create', '-q', '-f', 'qcow2', b, '1M']);
    expect((await img('compare', a, b)).code).toBe(0);
    tools.io(b, 'qcow2', ['write -P 1 123456 1']);
    const ours = await img('compare', a, b);
    const theirs = tools.imgStatus(['compare', a, b]);
    expect(ours.code).toBe(theirs.status);
    expect(ours.stdout).toBe(theirs.stdout);
  });

  it('measure: the same figures as qemu-img measure', async () => {
    const source = at('measure.qcow2');
    tools.img(['create', '-q', '-f', 'qcow2', source, '4M']);
    tools.io(source, 'qcow2', ['write -P 1 0 130000', 'write -z 2M 64k', 'write -P 2 3M 1']);
    const cases = [
      ['-O', 'qcow2', '--size', '1G'],
      ['-O', 'qcow2', '-o', 'extended_l2=on', '--size', '10G'],
      ['-O', 'qcow2', '-o', 'cluster_size=512,refcount_bits=64', '--size', '100M'],
      ['-O', 'qcow2', '-o', 'cluster_size=4096,refcount_bits=1', source],
      ['-O', 'qcow2', source],
      ['-O', 'raw', source],
    ];
    for (const args of cases) {
      const ours = JSON.parse((await img('measure', '--output=json', ...args)).stdout) as unknown;
      const theirs = JSON.parse(tools.img(['measure', '--output=json', ...args])) as unknown;
      expect([args.join(' '), ours]).toEqual([args.join(' '), theirs]);
    }
  });

  it('amend: compat up and down (zero clusters expanded), lazy refcounts', async () => {
    const path = at('amend.qcow2');
    tools.img(['create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', path, '2M']);
    tools.io(path, 'qcow2', ['write -P 3 0 200000']);
    const before = rawOf(tools, path);
    const compat = () => ((JSON.parse(tools.img(['info', '--output=json', path])) as { 'format-specific': { data: Record<string, unknown> } })['format-specific'].data);
    expect((await img('amend', '-o', 'compat=1.1,lazy_refcounts=on', path)).code).toBe(0);
    expect(compat()).toMatchObject({ compat: '1.1', 'lazy-refcounts': true });
    expect(tools.check(path).status).toBe(0);
    tools.io(path, 'qcow2', ['write -z 65536 65536']);
    expect((await img('amend', '-o', 'compat=0.10', path)).code).toBe(1); // lazy refcounts still on
    expect((await img('amend', '-o', 'lazy_refcounts=off', path)).code).toBe(0);
    expect((await img('amend', '-o', 'compat=0.10', path)).code).toBe(0);
    expect(compat()).toMatchObject({ compat: '0.10' });
    expect(tools.check(path).status).toBe(0);
    before.fill(0, 65536, 131072);
    expect(Buffer.compare(rawOf(tools, path), before)).toBe(0);
  });

  it('check through the command: JSON and exit codes', async () => {
    const path = at('check.qcow2');
    tools.img(['create', '-q', '-f', 'qcow2', path, '1M']);
    const result = await img('check', '--output=json', path);
    expect(result.code).toBe(0);
    const ours = JSON.parse(result.stdout) as Record<string, unknown>;
    const theirs = tools.check(path).result;
    for (const key of ['image-end-offset', 'total-clusters', 'check-errors', 'allocated-clusters', 'fragmented-clusters', 'compressed-clusters']) {
      expect([key, ours[key]]).toEqual([key, theirs[key]]);
    }
    expect((await img('check', at('c.raw'))).code).toBe(63);
  });
});
