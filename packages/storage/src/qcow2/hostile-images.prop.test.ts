/**
 * Hostile qcow2 images through every tool. Images QEMU wrote are damaged one
 * metadata field at a time (header fields, L1, L2, refcount table and block
 * entries, the snapshot table and a snapshot's L1 table) and handed to the
 * read tools, the write tools and a guest write. Whatever the damage: no
 * internal error, no hang, memory bounded, and never an image that
 * `qemu-img check` judges worse after our tool than before it (more
 * corruptions, no longer openable, or the header gone). The seed is the run's
 * (printed first; `FC_SEED=<n>` replays it).
 */
import { closeSync, copyFileSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openImage } from '../open.js';
import { QemuTools } from '../testing/qemu-tools.js';
import { runImgCommand } from '../tools/img-command.js';

const qemu = QemuTools.find();
if (qemu === undefined && process.env.CI) throw new Error(QemuTools.missing);
const dir = mkdtempSync(join(tmpdir(), 'tsvirt-hostile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Longest a tool may take on a 1–8 MiB image before it counts as a hang. */
const TOOL_BOUND_MS = 15_000;
/** The process may not grow past this while the tools run (the images are a few MiB). */
const MEMORY_BOUND = 2 * 2 ** 30;

/** A place in the image a mutation may hit: `width` bytes at `offset`. */
interface Field {
  readonly what: string;
  readonly offset: number;
  readonly width: 4 | 8;
}

interface Base {
  readonly name: string;
  readonly path: string;
  readonly fields: readonly Field[];
  /** Offsets of metadata clusters, for mutations that point an entry at other metadata. */
  readonly targets: readonly number[];
  readonly clusterSize: number;
}

const u64 = (bytes: Buffer, at: number) => Number(bytes.readBigUInt64BE(at) & 0x00ff_ffff_ffff_fe00n);

/** Builds an image with QEMU's tools and lists its metadata fields. */
function buildBase(tools: QemuTools, name: string, clusterSize: number, size: string, commands: string[]): Base {
  const path = join(dir, `${name}.qcow2`);
  tools.img(['create', '-q', '-f', 'qcow2', '-o', `cluster_size=${clusterSize}`, path, size]);
  for (const command of commands) {
    if (command.startsWith('snapshot ')) tools.img(['snapshot', '-c', command.slice(9), path]);
    else tools.io(path, 'qcow2', [command]);
  }
  const bytes = readFileSync(path);
  const fields: Field[] = [];
  for (const [what, offset, width] of [
    ['version', 4, 4],
    ['backing file offset', 8, 8],
    ['cluster bits', 20, 4],
    ['size', 24, 8],
    ['L1 size', 36, 4],
    ['L1 offset', 40, 8],
    ['refcount table offset', 48, 8],
    ['refcount table clusters', 56, 4],
    ['snapshot count', 60, 4],
    ['snapshot table offset', 64, 8],
    ['incompatible features', 72, 8],
    ['autoclear features', 88, 8],
    ['refcount order', 96, 4],
    ['header length', 100, 4],
  ] as const) fields.push({ what, offset, width });
  const l1Offset = u64(bytes, 40);
  const l1Size = bytes.readUInt32BE(36);
  const targets = [0, l1Offset, u64(bytes, 48)];
  for (let index = 0; index < l1Size; index++) {
    fields.push({ what: `L1[${index}]`, offset: l1Offset + index * 8, width: 8 });
    const l2 = u64(bytes, l1Offset + index * 8);
    if (l2 === 0) continue;
    targets.push(l2);
    for (let entry = 0; entry < clusterSize / 8; entry++) {
      if (bytes.readBigUInt64BE(l2 + entry * 8) !== 0n) fields.push({ what: `L2@${l2}[${entry}]`, offset: l2 + entry * 8, width: 8 });
    }
  }
  const refcountTable = u64(bytes, 48);
  for (let index = 0; index < 4; index++) {
    fields.push({ what: `refcount table[${index}]`, offset: refcountTable + index * 8, width: 8 });
    const block = u64(bytes, refcountTable + index * 8);
    if (block === 0) continue;
    targets.push(block);
    for (let entry = 0; entry < 16; entry++) fields.push({ what: `refcount block@${block}[${entry}]`, offset: block + entry * 2, width: 4 });
  }
  const snapshotTable = u64(bytes, 64);
  if (bytes.readUInt32BE(60) > 0) {
    targets.push(snapshotTable);
    for (const [what, at, width] of [['snapshot L1 offset', 0, 8], ['snapshot L1 size', 8, 4], ['snapshot id/name sizes', 12, 4], ['snapshot extra size', 36, 4]] as const) {
      fields.push({ what, offset: snapshotTable + at, width });
    }
    const snapshotL1 = u64(bytes, snapshotTable);
    targets.push(snapshotL1);
    for (let index = 0; index < Math.min(4, bytes.readUInt32BE(snapshotTable + 8)); index++) fields.push({ what: `snapshot L1[${index}]`, offset: snapshotL1 + index * 8, width: 8 });
  }
  return { name, path, fields, targets, clusterSize };
}

type Mutation =
  | { kind: 'zero' | 'ones' }
  | { kind: 'random'; value: bigint }
  | { kind: 'flip'; bit: number }
  | { kind: 'point'; target: number; copied: boolean }
  | { kind: 'next-cluster' };

function mutate(bytes: Buffer, base: Base, field: Field, mutation: Mutation): void {
  const old = field.width === 8 ? bytes.readBigUInt64BE(field.offset) : BigInt(bytes.readUInt32BE(field.offset));
  const mask = field.width === 8 ? (1n << 64n) - 1n : 0xffff_ffffn;
  let value: bigint;
  switch (mutation.kind) {
    case 'zero': value = 0n; break;
    case 'ones': value = mask; break;
    case 'random': value = mutation.value & mask; break;
    case 'flip': value = old ^ (1n << BigInt(mutation.bit % (field.width * 8))); break;
    case 'point': value = (BigInt(base.targets[mutation.target % base.targets.length]!) | (mutation.copied ? 1n << 63n : 0n)) & mask; break;
    case 'next-cluster': value = (old + BigInt(base.clusterSize)) & mask; break;
  }
  if (field.width === 8) bytes.writeBigUInt64BE(value, field.offset);
  else bytes.writeUInt32BE(Number(value), field.offset);
}

const mutations: fc.Arbitrary<Mutation> = fc.oneof(
  fc.constantFrom<Mutation>({ kind: 'zero' }, { kind: 'ones' }, { kind: 'next-cluster' }),
  fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map((value): Mutation => ({ kind: 'random', value })),
  fc.integer({ min: 0, max: 63 }).map((bit): Mutation => ({ kind: 'flip', bit })),
  fc.record({ target: fc.nat(), copied: fc.boolean() }).map(({ target, copied }): Mutation => ({ kind: 'point', target, copied })),
);

/** QEMU's judgement of an image: whether it opens, and its corruption count. */
function judge(path: string): { openable: boolean; corruptions: number; magic: boolean } {
  const { result } = qemu!.check(path);
  const openable = 'image-end-offset' in result || 'corruptions' in result;
  const corruptions = Number(result['corruptions'] ?? 0) + Number(result['check-errors'] ?? 0);
  const magic = Buffer.alloc(4);
  const fd = openSync(path, 'r');
  readSync(fd, magic, 0, 4, 0);
  closeSync(fd);
  return { openable, corruptions, magic: magic.toString('latin1') === 'QFI\xfb' };
}

async function bounded<T>(what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${TOOL_BOUND_MS} ms`)), TOOL_BOUND_MS);
  });
  try {
    return await Promise.race([work, hang]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `tsvirt img` in-process; an internal error (not a typed one) fails the test. */
async function img(...argv: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const code = await bounded(`tsvirt img ${argv.join(' ')}`, runImgCommand(argv, { stdout: () => {}, stderr: (text) => (stderr += text) }));
  expect(stderr, `tsvirt img ${argv.join(' ')}`).not.toMatch(/internal error/);
  return { code, stderr };
}

/** What each tool does to a damaged image at `path` (its working copy). */
const TOOLS: Readonly<Record<string, (path: string) => Promise<unknown>>> = {
  'img check': (path) => img('check', path),
  'img info': (path) => img('info', '--output=json', path),
  'img map': (path) => img('map', '--output=json', path),
  'img convert': (path) => img('convert', '-O', 'raw', path, `${path}.raw`),
  'img snapshot -c': (path) => img('snapshot', '-c', 'fuzz', path),
  'img snapshot -d': (path) => img('snapshot', '-d', 's1', path),
  'img resize': (path) => img('resize', path, '+1M'),
  'img amend': (path) => img('amend', '-o', 'refcount_bits=8', path),
  'img commit': async (path) => {
    const overlay = `${path}.overlay.qcow2`;
    qemu!.imgStatus(['create', '-q', '-f', 'qcow2', '-b', path, '-F', 'qcow2', overlay]);
    qemu!.imgStatus(['rebase', '-u', '-b', path, '-F', 'qcow2', overlay]);
    // The overlay's own data, written by QEMU (it may refuse a damaged backing file; then commit has little to do).
    for (const at of ['0', '1M', '3M']) spawnIo(overlay, `write -P 0x5a ${at} 64k`);
    return img('commit', overlay);
  },
  'guest write': async (path) => {
    const opened = await bounded('openImage', openImage(path)).catch(() => undefined);
    if (opened === undefined) return;
    for (const at of [0, 65536 * 3 + 512, 1 << 20]) {
      if (at >= opened.backend.size) continue;
      await bounded('writeAt', opened.backend.writeAt(at, new Uint8Array(70_000).fill(0x66).subarray(0, Math.min(70_000, opened.backend.size - at)))).catch(() => undefined);
    }
    await bounded('close', opened.backend.close()).catch(() => undefined);
  },
};

function spawnIo(image: string, command: string): void {
  try {
    qemu!.io(image, 'qcow2', [command]);
  } catch {
    // A damaged backing file may make qemu-io refuse: fine, the overlay just has less to commit.
  }
}

let serial = 0;

/** A fresh copy of one of the bases with one field damaged. */
function damagedCopy(bases: readonly Base[], baseIndex: number, fieldIndex: number, mutation: Mutation): { base: Base; field: Field; path: string } {
  const base = bases[baseIndex % bases.length]!;
  const field = base.fields[fieldIndex % base.fields.length]!;
  const path = join(dir, `case-${serial++}.qcow2`);
  copyFileSync(base.path, path);
  const bytes = readFileSync(path);
  mutate(bytes, base, field, mutation);
  writeFileSync(path, bytes);
  return { base, field, path };
}

function describeMutation(mutation: Mutation): string {
  return JSON.stringify(mutation, (_key, value: unknown) => (typeof value === 'bigint' ? `0x${value.toString(16)}` : value));
}

describe.skipIf(qemu === undefined)(`hostile qcow2 images through every tool${qemu === undefined ? ` (skipped: ${QemuTools.missing})` : ''}`, () => {
  const bases: Base[] = [];
  beforeAll(() => {
    bases.push(
      buildBase(qemu!, 'clusters-64k', 65536, '8M', ['write -P 0x11 0 128k', 'write -P 0x22 3M 64k', 'snapshot s1', 'write -P 0x33 64k 64k', 'write -z 5M 128k']),
      buildBase(qemu!, 'clusters-512', 512, '1M', ['write -P 0x44 0 8k', 'snapshot s1', 'write -P 0x55 4k 4k', 'write -P 0x66 600k 2k']),
    );
  });

  it('img check finds at least what qemu-img check finds (exit status 0 clean, 3 leaks, 2 corrupt, 1 cannot be checked)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.nat(), mutations, async (baseIndex, fieldIndex, mutation) => {
        const { base, field, path } = damagedCopy(bases, baseIndex, fieldIndex, mutation);
        const theirs = qemu!.check(path).status;
        const ours = (await img('check', path)).code;
        const context = `${base.name} with ${field.what} ${describeMutation(mutation)}`;
        // Worse is more: clean, leaks, then corrupt or not even checkable.
        const severity = (status: number) => ({ 0: 0, 3: 1, 2: 2, 1: 2 })[status] ?? 3;
        expect(severity(ours), `${context}: qemu-img check says ${theirs}, tsvirt img check ${ours}`).toBeGreaterThanOrEqual(severity(theirs));
        rmSync(path, { force: true });
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 40) },
    );
  }, 600_000);

  for (const tool of Object.keys(TOOLS)) {
    it(`${tool}: no internal error or hang, and qemu-img check never worse afterwards`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.nat(), fc.nat(), mutations, async (baseIndex, fieldIndex, mutation) => {
          const { base, field, path } = damagedCopy(bases, baseIndex, fieldIndex, mutation);
          const before = judge(path);
          await TOOLS[tool]!(path);
          const after = judge(path);
          const context = `${tool} on ${base.name} with ${field.what} ${describeMutation(mutation)}`;
          expect(after.magic || !before.magic, `${context}: the header was destroyed`).toBe(true);
          if (before.openable) {
            expect(after.openable, `${context}: qemu-img could open the image before, not after`).toBe(true);
            // A guest may keep writing to an image QEMU would call corrupt, as under QEMU, where new clusters can meet what
            // the damage points at; a healthy image must stay healthy. The tools refuse a corrupt image outright.
            if (tool !== 'guest write' || before.corruptions === 0) {
              expect(after.corruptions, `${context}: qemu-img check found more corruption after`).toBeLessThanOrEqual(before.corruptions);
            }
          }
          expect(process.memoryUsage().rss, `${context}: memory`).toBeLessThan(MEMORY_BOUND);
          rmSync(path, { force: true });
          rmSync(`${path}.raw`, { force: true });
          rmSync(`${path}.overlay.qcow2`, { force: true });
        }),
        { numRuns: Number(process.env.FUZZ_RUNS ?? 40) },
      );
    }, 600_000);
  }
});
