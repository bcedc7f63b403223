import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openImage } from '../open.js';
import { createImage } from './operations.js';
import { runImg as img } from '../testing/img.js';
import { QemuTools } from '../testing/qemu-tools.js';

const qemu = QemuTools.find();
const dir = mkdtempSync(join(tmpdir(), 'tsvirt-amend-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const at = (name: string) => join(dir, name);

/** QEMU's and our error lines without the program's own prefix. */
const message = (text: string) => text.replace(/^(qemu-img|tsvirt img): /, '').trim();

describe.skipIf(!qemu && !process.env.CI)('amend, resize and convert against qemu-img', () => {
  const tools = qemu as QemuTools;
  const raw = (path: string): Buffer => {
    const out = `${path}.raw-${Math.random().toString(36).slice(2)}`;
    tools.img(['convert', '-O', 'raw', path, out]);
    const bytes = readFileSync(out);
    rmSync(out);
    return bytes;
  };
  const info = (path: string) => JSON.parse(tools.img(['info', '--output=json', path])) as { 'virtual-size': number; 'format-specific': { data: Record<string, unknown> } };
  /** Runs the same amend/convert through qemu-img and through us; both must fail alike. */
  const sameRefusal = async (args: string[], ours: string, theirs: string) => {
    const expected = tools.imgStatus([...args, theirs]);
    const actual = await img(...args, ours);
    expect(expected.status).toBe(1);
    expect(actual.code).toBe(1);
    expect(message(actual.stderr)).toBe(message(expected.stderr).replaceAll(theirs, ours));
  };

  /** A 1 MiB image with data, a zero cluster and two snapshots sharing clusters (refcount 3). */
  function snapshotted(name: string, compat = '1.1'): string {
    const path = at(name);
    tools.img(['create', '-q', '-f', 'qcow2', '-o', `compat=${compat}`, path, '1M']);
    tools.io(path, 'qcow2', ['write -P 1 0 128k', ...(compat === '1.1' ? ['write -z 256k 64k'] : [])]);
    tools.img(['snapshot', '-c', 'first', path]);
    tools.io(path, 'qcow2', ['write -P 2 64k 4k', 'write -P 3 512k 64k']);
    tools.img(['snapshot', '-c', 'second', path]);
    tools.io(path, 'qcow2', ['write -P 4 0 4k', ...(compat === '1.1' ? ['write -z 512k 64k'] : [])]);
    return path;
  }

  for (const bits of [2, 8, 64]) {
    it(`amend refcount_bits=${bits}: the same disk and snapshots, a clean check, the new width`, async () => {
      const path = snapshotted(`refcount-${bits}.qcow2`);
      const before = raw(path);
      expect((await img('amend', '-o', `refcount_bits=${bits}`, path)).code).toBe(0);
      expect(info(path)['format-specific'].data['refcount-bits']).toBe(bits);
      expect(tools.check(path)).toMatchObject({ status: 0 });
      expect(Buffer.compare(raw(path), before)).toBe(0);
      tools.img(['snapshot', '-a', 'first', path]);
      expect(raw(path).subarray(0, 4096).every((byte) => byte === 1)).toBe(true);
      expect(tools.check(path).status).toBe(0);
    });
  }

  it('amend refcount_bits refusals match qemu-img (too narrow for a shared cluster, not a power of two, v2)', async () => {
    const ours = snapshotted('narrow-ours.qcow2');
    const theirs = at('narrow-theirs.qcow2');
    copyFileSync(ours, theirs);
    await sameRefusal(['amend', '-o', 'refcount_bits=1'], ours, theirs);
    await sameRefusal(['amend', '-o', 'refcount_bits=3'], ours, theirs);
    await sameRefusal(['amend', '-o', 'refcount_bits=128'], ours, theirs);
    await sameRefusal(['amend', '-o', 'compat=0.10,refcount_bits=8'], ours, theirs);
    tools.img(['create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', at('v2-ours.qcow2'), '1M']);
    tools.img(['create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', at('v2-theirs.qcow2'), '1M']);
    await sameRefusal(['amend', '-o', 'refcount_bits=8'], at('v2-ours.qcow2'), at('v2-theirs.qcow2'));
    // Refused amends change nothing.
    expect(tools.check(ours).status).toBe(0);
    expect(info(ours)['format-specific'].data['refcount-bits']).toBe(16);
  });

  it('options only for creation, and the backing file, are refused with qemu-img words', async () => {
    const ours = at('creation-ours.qcow2');
    const theirs = at('creation-theirs.qcow2');
    tools.img(['create', '-q', '-f', 'qcow2', ours, '1M']);
    copyFileSync(ours, theirs);
    for (const option of ['cluster_size=4096', 'extended_l2=on', 'compression_type=zstd', 'preallocation=full', 'backing_file=x.qcow2']) {
      await sameRefusal(['amend', '-o', option], ours, theirs);
    }
    await sameRefusal(['amend', '-o', 'data_file=elsewhere.raw'], ours, theirs);
  });

  it('amend data_file renames an external data file; data_file_raw can be cleared, not set', async () => {
    const ours = at('data-ours.qcow2');
    const theirs = at('data-theirs.qcow2');
    for (const path of [ours, theirs]) tools.img(['create', '-q', '-f', 'qcow2', '-o', `data_file=${path}.data`, path, '1M']);
    await sameRefusal(['amend', '-o', 'data_file_raw=on'], ours, theirs);
    expect((await img('amend', '-o', 'data_file_raw=off', ours)).code).toBe(0);
    copyFileSync(`${ours}.data`, at('renamed.data'));
    expect((await img('amend', '-o', `data_file=${at('renamed.data')}`, ours)).code).toBe(0);
    expect(info(ours)['format-specific'].data['data-file']).toBe(at('renamed.data'));
    tools.io(ours, 'qcow2', ['write -P 7 0 64k']);
    expect(readFileSync(at('renamed.data')).subarray(0, 65536).every((byte) => byte === 7)).toBe(true);
    expect(tools.check(ours).status).toBe(0);

    const rawOurs = at('raw-data-ours.qcow2');
    tools.img(['create', '-q', '-f', 'qcow2', '-o', `data_file=${rawOurs}.data,data_file_raw=on`, rawOurs, '1M']);
    expect((await img('amend', '-o', 'data_file_raw=off', rawOurs)).code).toBe(0);
    expect(info(rawOurs)['format-specific'].data['data-file-raw']).toBe(false);
  });

  it('resize with internal snapshots: v3 grows and shrinks as qemu-img does, the snapshot restores its size; v2 is refused', async () => {
    const ours = snapshotted('resize-ours.qcow2');
    const theirs = at('resize-theirs.qcow2');
    copyFileSync(ours, theirs);
    for (const args of [['resize', '-q', '{}', '2M'], ['resize', '-q', '--shrink', '{}', '768K']]) {
      expect((await img(...args.map((arg) => (arg === '{}' ? ours : arg)))).code).toBe(0);
      tools.img(args.map((arg) => (arg === '{}' ? theirs : arg)));
      expect(Buffer.compare(raw(ours), raw(theirs))).toBe(0);
      expect(tools.check(ours).status).toBe(0);
    }
    expect(info(ours)['virtual-size']).toBe(768 << 10);
    tools.img(['snapshot', '-a', 'second', ours]);
    tools.img(['snapshot', '-a', 'second', theirs]);
    expect(info(ours)['virtual-size']).toBe(1 << 20);
    expect(Buffer.compare(raw(ours), raw(theirs))).toBe(0);
    expect(tools.check(ours).status).toBe(0);

    const v2ours = snapshotted('resize-v2-ours.qcow2', '0.10');
    const v2theirs = at('resize-v2-theirs.qcow2');
    copyFileSync(v2ours, v2theirs);
    const expected = tools.imgStatus(['resize', v2theirs, '2M']);
    const actual = await img('resize', v2ours, '2M');
    expect(expected.stderr).toContain("Can't resize a v2 image which has snapshots");
    expect(actual.code).toBe(1);
    expect(actual.stderr).toContain("Can't resize a v2 image which has snapshots");
  });

  for (const withBacking of [false, true]) {
    it(`amend compat=0.10 with internal snapshots and zero clusters${withBacking ? ', over a backing file' : ''}: every snapshot reads as before`, async () => {
      const path = snapshotted(`downgrade-${withBacking}.qcow2`);
      if (withBacking) {
        const base = at(`downgrade-base-${withBacking}.qcow2`);
        tools.img(['create', '-q', '-f', 'qcow2', base, '1M']);
        tools.io(base, 'qcow2', ['write -P 9 0 1M']);
        tools.img(['rebase', '-u', '-b', base, '-F', 'qcow2', path]);
      }
      const views: Buffer[] = [];
      const snapshotsView = () => {
        const copy = `${path}.view.qcow2`;
        const result = [raw(path)];
        for (const name of ['first', 'second']) {
          copyFileSync(path, copy);
          tools.img(['snapshot', '-a', name, copy]);
          result.push(raw(copy));
        }
        rmSync(copy);
        return result;
      };
      views.push(...snapshotsView());
      expect((await img('amend', '-o', 'compat=0.10', path)).code).toBe(0);
      expect(info(path)['format-specific'].data.compat).toBe('0.10');
      expect(tools.check(path).status).toBe(0);
      const after = snapshotsView();
      for (let i = 0; i < views.length; i++) expect(Buffer.compare(after[i]!, views[i]!)).toBe(0);
      // And we read the version 2 image as QEMU does.
      const opened = await openImage(path, { readOnly: true });
      const ours = new Uint8Array(opened.backend.size);
      await opened.backend.readAt(0, ours);
      await opened.backend.close();
      expect(Buffer.compare(ours, views[0]!)).toBe(0);
    });
  }

  it('convert -B copies only the top layer onto the new backing file, as qemu-img', async () => {
    const base = at('cv-base.qcow2');
    const top = at('cv-top.qcow2');
    tools.img(['create', '-q', '-f', 'qcow2', base, '1M']);
    tools.io(base, 'qcow2', ['write -P 1 0 512k']);
    tools.img(['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', top]);
    tools.io(top, 'qcow2', ['write -P 2 64k 64k', 'write -z 256k 64k', 'write -P 0 384k 64k']);
    const ours = at('cv-ours.qcow2');
    const theirs = at('cv-theirs.qcow2');
    expect((await img('convert', '-O', 'qcow2', '-B', base, '-F', 'qcow2', top, ours)).code).toBe(0);
    tools.img(['convert', '-O', 'qcow2', '-B', base, '-F', 'qcow2', top, theirs]);
    const layout = (path: string) => (JSON.parse(tools.img(['map', '--output=json', path])) as Array<Record<string, unknown>>).map(({ offset: _, ...rest }) => rest);
    expect(layout(ours)).toEqual(layout(theirs));
    expect(layout(ours).some((entry) => entry.depth === 1)).toBe(true);
    expect(Buffer.compare(raw(ours), raw(top))).toBe(0);
    expect(info(ours)).toMatchObject({ 'backing-filename': base });
    expect(tools.check(ours).status).toBe(0);
    await sameRefusal(['convert', '-O', 'raw', '-B', base, top], at('cv-ours.raw'), at('cv-theirs.raw'));
  });

  it('convert -n writes into an existing image (zeros as zeros), refuses a smaller one; -t/-T accept cache modes', async () => {
    const source = at('n-source.qcow2');
    tools.img(['create', '-q', '-f', 'qcow2', source, '1M']);
    tools.io(source, 'qcow2', ['write -P 3 0 256k', 'write -P 0 512k 64k']);
    const ours = at('n-ours.qcow2');
    const theirs = at('n-theirs.qcow2');
    for (const path of [ours, theirs]) {
      tools.img(['create', '-q', '-f', 'qcow2', path, '2M']);
      tools.io(path, 'qcow2', ['write -P 9 0 2M']);
    }
    expect((await img('convert', '-n', '-t', 'none', '-T', 'writeback', '-O', 'qcow2', source, ours)).code).toBe(0);
    tools.img(['convert', '-n', '-O', 'qcow2', source, theirs]);
    expect(Buffer.compare(raw(ours), raw(theirs))).toBe(0);
    expect(raw(ours).subarray(1 << 20).every((byte) => byte === 9)).toBe(true);
    expect(tools.check(ours).status).toBe(0);
    tools.img(['create', '-q', '-f', 'raw', at('small-ours.raw'), '512K']);
    tools.img(['create', '-q', '-f', 'raw', at('small-theirs.raw'), '512K']);
    const smallArgs = ['convert', '-n', '-O', 'raw', source];
    const expected = tools.imgStatus([...smallArgs, at('small-theirs.raw')]);
    const actual = await img(...smallArgs, at('small-ours.raw'));
    expect(actual.code).toBe(1);
    expect(message(actual.stderr)).toBe(message(expected.stderr));
    for (const flag of ['-t', '-T']) {
      const bad = ['convert', flag, 'bogus', '-O', 'raw', source];
      const theirBad = tools.imgStatus([...bad, at('bogus-theirs.raw')]);
      const ourBad = await img(...bad, at('bogus-ours.raw'));
      expect(ourBad.code).toBe(1);
      expect(message(ourBad.stderr)).toBe(message(theirBad.stderr));
    }
    expect(existsSync(at('bogus-ours.raw'))).toBe(false);
  });

  it('a relative data_file names a file in the working directory, as qemu-img create and qemu-io take it', async () => {
    const work = at('cwd');
    const images = at('cwd/images');
    mkdirSync(images, { recursive: true });
    const previous = process.cwd();
    process.chdir(work);
    try {
      expect((await img('create', '-q', '-f', 'qcow2', '-o', 'data_file=ours.data', 'images/ours.qcow2', '1M')).code).toBe(0);
      tools.img(['create', '-q', '-f', 'qcow2', '-o', 'data_file=theirs.data', 'images/theirs.qcow2', '1M']);
      for (const name of ['ours', 'theirs']) {
        expect(existsSync(join(work, `${name}.data`))).toBe(true);
        expect(existsSync(join(images, `${name}.data`))).toBe(false);
      }
      writeFileSync(join(work, 'ours.data'), new Uint8Array(65536).fill(5));
      // From here both find the data file; qemu-io reads what we see.
      expect(tools.io('images/ours.qcow2', 'qcow2', ['read -P 0 0 64k'])).toContain('read 65536/65536');
      const opened = await openImage('images/ours.qcow2', { readOnly: true });
      await opened.backend.close();
      process.chdir(images);
      // From the image's own directory neither does.
      await expect(openImage('ours.qcow2', { readOnly: true })).rejects.toThrow();
      expect(() => tools.io('ours.qcow2', 'qcow2', ['read 0 512'])).toThrow(/ours\.data/);
    } finally {
      process.chdir(previous);
    }
  });
});

describe('hostile images and arguments', () => {
  it('amend of a file whose header is corrupt fails with a message and changes nothing', async () => {
    const path = at('corrupt.qcow2');
    await (await createImage(path, { format: 'qcow2', size: 1 << 20 })).close();
    const bytes = readFileSync(path);
    bytes.writeUInt32BE(0xffff, 20); // cluster_bits far out of range
    writeFileSync(path, bytes);
    const result = await img('amend', '-o', 'refcount_bits=8', path);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/cluster/i);
    expect(Buffer.compare(readFileSync(path), bytes)).toBe(0);
  });

  it('a data file name with a NUL, or naming a directory, is a clear error', async () => {
    const path = at('nul.qcow2');
    const name = at('nul-data.raw');
    await (await createImage(path, { format: 'qcow2', size: 1 << 20, dataFile: name })).close();
    const bytes = readFileSync(path);
    const where = bytes.indexOf(Buffer.from(name));
    expect(where).toBeGreaterThan(0);
    bytes[where + name.length - 2] = 0;
    writeFileSync(path, bytes);
    await expect(openImage(path)).rejects.toMatchObject({ code: 'IMAGE_FORMAT', message: expect.stringContaining('is not a file name') });
    expect((await img('amend', '-o', 'data_file=elsewhere.raw', path)).code).toBe(1);

    const directory = at('dir-data.qcow2');
    await (await createImage(directory, { format: 'qcow2', size: 1 << 20, dataFile: at('dir-data.raw') })).close();
    expect((await img('amend', '-o', `data_file=${dir}`, directory)).code).toBe(0);
    await expect(openImage(directory)).rejects.toThrow();
  });

  it('amend refuses refcount widths that are no power of two before opening anything', async () => {
    for (const bits of ['0', '3', '128', 'many']) {
      const result = await img('amend', '-o', `refcount_bits=${bits}`, at('does-not-exist.qcow2'));
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('Refcount width must be a power of two and may not exceed 64 bits');
    }
  });
});
