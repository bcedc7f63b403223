import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BlockBackend } from '@tsvirt/interfaces';
import { NodeImageFile } from './image-file.js';
import { openImage } from './open.js';
import { createQcow2 } from './qcow2/create.js';
import { RawBackend } from './raw.js';
import { convertImage } from './tools/operations.js';

const SIZE = 64 << 20;
const OPS = 4096;
const BLOCK = 4096;

function qemuImg(args: string[]): string | undefined {
  try {
    return execFileSync('qemu-img', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch {
    return undefined;
  }
}

/** `qemu-img bench`'s own timing ("Run completed in X seconds"), as operations per second. */
function qemuBench(path: string, format: string, write: boolean): number | undefined {
  const out = qemuImg(['bench', '-f', format, '-c', String(OPS), '-s', '4k', '-S', '4k', '-d', '1', '-t', 'writeback', ...(write ? ['-w'] : []), path]);
  const seconds = out && /completed in ([\d.]+) seconds/.exec(out)?.[1];
  return seconds ? OPS / Number(seconds) : undefined;
}

async function timed(run: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await run();
  return (performance.now() - start) / 1000;
}

/** Offsets of the workload: sequential, or a fixed pseudo-random order over the same blocks. */
function offsets(random: boolean): number[] {
  const list = Array.from({ length: OPS }, (_, i) => i * BLOCK);
  if (random) {
    let state = 12345;
    for (let i = list.length - 1; i > 0; i--) {
      state = (state * 1103515245 + 12345) >>> 0;
      const j = state % (i + 1);
      [list[i], list[j]] = [list[j]!, list[i]!];
    }
  }
  return list;
}

async function ops(disk: BlockBackend, write: boolean, random: boolean): Promise<number> {
  const buffer = new Uint8Array(BLOCK).fill(0x5a);
  const seconds = await timed(async () => {
    for (const offset of offsets(random)) {
      if (write) await disk.writeAt(offset, buffer);
      else await disk.readAt(offset, buffer);
    }
  });
  return OPS / seconds;
}

/**
 * 4 KiB requests at queue depth 1 on raw and qcow2 images, and a whole-image
 * convert, each beside qemu-img doing the same in the same run.
 */
export default async function storageBench() {
  const dir = mkdtempSync(join(tmpdir(), 'tsvirt-bench-'));
  const hasQemu = qemuImg(['--version']) !== undefined;
  const rows: Array<Array<string | number>> = [];
  try {
    for (const format of ['raw', 'qcow2'] as const) {
      for (const random of [false, true]) {
        for (const write of [true, false]) {
          const path = join(dir, `bench-${format}-${random}-${write}.${format}`);
          const file = await NodeImageFile.open(path, { create: true });
          let disk: BlockBackend;
          if (format === 'raw') {
            await file.truncate(SIZE);
            disk = await RawBackend.open(file);
          } else {
            disk = await createQcow2(file, { size: SIZE });
          }
          // Reads run over written data; writes on a fresh image allocate (qcow2).
          if (!write) await ops(disk, true, false);
          const ours = await ops(disk, write, random);
          await disk.close();
          const theirs = !random && hasQemu ? qemuBench(path, format, write) : undefined;
          rows.push([`${format} ${random ? 'random' : 'sequential'} 4 KiB ${write ? 'write' : 'read'}`, Math.round(ours), theirs === undefined ? (random ? 'n/a (sequential only)' : 'n/a') : Math.round(theirs)]);
          rmSync(path);
        }
      }
    }
    // convert: a 64 MiB qcow2 image, half written, to raw.
    const source = join(dir, 'convert-source.qcow2');
    const image = await createQcow2(await NodeImageFile.open(source, { create: true }), { size: SIZE });
    const chunk = new Uint8Array(1 << 20);
    for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 7) & 0xff;
    for (let at = 0; at < SIZE; at += 2 << 20) await image.writeAt(at, chunk);
    await image.close();
    const opened = await openImage(source, { readOnly: true });
    const ourConvert = await timed(() => convertImage(opened.backend, join(dir, 'ours.raw'), { outputFormat: 'raw' }));
    await opened.backend.close();
    const qemuConvert = hasQemu ? await timed(async () => void qemuImg(['convert', '-O', 'raw', source, join(dir, 'theirs.raw')])) : undefined;
    const mib = SIZE / 2 ** 20;
    rows.push(['convert 64 MiB qcow2 (half allocated) to raw, MiB/s', Math.round(mib / ourConvert), qemuConvert === undefined ? 'n/a' : Math.round(mib / qemuConvert)]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return [
    {
      title: '@tsvirt/storage: 4 KiB I/O and convert beside qemu-img',
      description: `${OPS} requests of 4 KiB at queue depth 1 over a 64 MiB image (operations per second; higher is better), host page cache on. qemu-img column: \`qemu-img bench -d 1 -t writeback\` on the same file in the same run (its own timing), and \`qemu-img convert\` timed with process start-up.`,
      columns: ['workload', 'tsvirt (ops/s)', 'qemu-img (ops/s)'],
      rows,
      notes: [
        'qemu-img bench only steps sequentially, so random rows have no QEMU figure.',
        'qcow2 writes on a fresh image include cluster allocation (refcount and L2 updates written through).',
      ],
    },
  ];
}
