import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fc, test } from '@fast-check/vitest';
import { BlockError } from '@tsvirt/interfaces';
import { afterAll, describe, expect } from 'vitest';
import { NodeImageFile } from '../image-file.js';
import { QemuTools } from '../testing/qemu-tools.js';
import { createQcow2 } from './create.js';
import type { Qcow2Backend } from './qcow2.js';
import { openImage } from '../open.js';
import { mapImage } from '../tools/map.js';

const qemu = QemuTools.find();
const dir = mkdtempSync(join(tmpdir(), 'tsvirt-qcow2-write-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Operation =
  | { kind: 'write'; offset: number; length: number; seed: number }
  | { kind: 'discard' | 'zero'; offset: number; length: number }
  | { kind: 'snapshot' | 'apply' | 'delete'; which: number }
  | { kind: 'grow' | 'shrink'; by: number }
  | { kind: 'compress'; cluster: number; seed: number; repetitive: boolean };

const configuration = fc.record({
  compat: fc.constantFrom('0.10' as const, '1.1' as const),
  clusterBits: fc.constantFrom(9, 12, 14, 16),
  refcountBits: fc.constantFrom(1, 2, 4, 8, 16, 32, 64),
  extendedL2: fc.boolean(),
  /** Under a backing file whose contents show through unallocated clusters. */
  backing: fc.boolean(),
  /** Guest data in an external data file (version 3 only; no snapshots then). */
  dataFile: fc.boolean(),
});

function operations(size: number): fc.Arbitrary<Operation[]> {
  const span = fc.tuple(fc.nat({ max: size - 1 }), fc.integer({ min: 1, max: 70000 }));
  return fc.array(
    fc.oneof(
      { weight: 6, arbitrary: fc.tuple(span, fc.nat()).map(([[offset, length], seed]) => ({ kind: 'write' as const, offset, length, seed })) },
      { weight: 2, arbitrary: span.map(([offset, length]) => ({ kind: 'discard' as const, offset, length })) },
      { weight: 2, arbitrary: span.map(([offset, length]) => ({ kind: 'zero' as const, offset, length })) },
      { weight: 1, arbitrary: fc.nat({ max: 3 }).map((which) => ({ kind: 'snapshot' as const, which })) },
      { weight: 1, arbitrary: fc.nat({ max: 3 }).map((which) => ({ kind: 'apply' as const, which })) },
      { weight: 1, arbitrary: fc.nat({ max: 3 }).map((which) => ({ kind: 'delete' as const, which })) },
      { weight: 1, arbitrary: fc.integer({ min: 1, max: 300 }).map((by) => ({ kind: 'grow' as const, by: by * 512 })) },
      { weight: 1, arbitrary: fc.integer({ min: 1, max: 300 }).map((by) => ({ kind: 'shrink' as const, by: by * 512 })) },
      {
        weight: 2,
        arbitrary: fc.record({ cluster: fc.nat({ max: 800 }), seed: fc.nat(), repetitive: fc.boolean() }).map((value) => ({ kind: 'compress' as const, ...value })),
      },
    ),
    { maxLength: 24 },
  );
}

function pattern(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let state = seed | 1;
  for (let i = 0; i < length; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    bytes[i] = state >>> 24;
  }
  return bytes;
}

describe.skipIf(!qemu)('random write sequences leave images qemu-img accepts and reads as we do', () => {
  const tools = qemu!;
  let counter = 0;
  test.prop([configuration, operations(400_000)], { numRuns: 60 })('write/discard/zero/snapshot/grow', async (config, ops) => {
    const clusterSize = 2 ** config.clusterBits;
    const extendedL2 = config.extendedL2 && config.compat === '1.1' && clusterSize >= 16384;
    const refcountBits = config.compat === '0.10' ? 16 : config.refcountBits;
    const name = `image-${counter++}`;
    const path = join(dir, `${name}.qcow2`);
    let size = 400_000 - (400_000 % 512);
    const base = new Uint8Array(size + 100_000);
    const useDataFile = config.dataFile && config.compat === '1.1';
    if (config.backing) {
      // A raw base, longer than the image, with a recognisable pattern.
      base.set(pattern(base.length, counter));
      const baseFile = await NodeImageFile.open(join(dir, `${name}.base`), { create: true });
      await baseFile.write(0, base);
      await baseFile.close();
    }
    const dataHandle = useDataFile ? await NodeImageFile.open(join(dir, `${name}.data`), { create: true }) : undefined;
    const created = await createQcow2(await NodeImageFile.open(path, { create: true }), {
      size,
      compat: config.compat,
      clusterSize,
      refcountBits,
      extendedL2,
      ...(config.backing ? { backingFile: `${name}.base`, backingFormat: 'raw' } : {}),
      // qemu-img opens a relative data file name against its working directory, so name it absolutely.
      ...(dataHandle ? { dataFile: join(dir, `${name}.data`), dataFileHandle: dataHandle } : {}),
    });
    await created.close();
    const opened = await openImage(path);
    const image = opened.backend as Qcow2Backend;
    let model = config.backing ? base.slice(0, size) : new Uint8Array(size);
    const snapshots = new Map<string, Uint8Array>();
    try {
      for (const op of ops) {
        const clip = (offset: number, length: number) => {
          const start = Math.min(offset, size);
          return [start, Math.min(length, size - start)] as const;
        };
        switch (op.kind) {
          case 'write': {
            const [offset, length] = clip(op.offset, op.length);
            const data = pattern(length, op.seed);
            await image.writeAt(offset, data);
            model.set(data, offset);
            break;
          }
          case 'discard': {
            // Discarded bytes may read as anything; the model learns what they read as.
            const [offset, length] = clip(op.offset, op.length);
            await image.discard(offset, length);
            await image.readAt(offset, model.subarray(offset, offset + length));
            break;
          }
          case 'zero': {
            const [offset, length] = clip(op.offset, op.length);
            await image.writeZeroes(offset, length);
            model.fill(0, offset, offset + length);
            break;
          }
          case 'snapshot': {
            const name = `s${op.which}`;
            if (snapshots.has(name) || useDataFile) break;
            try {
              await image.createSnapshot(name);
              snapshots.set(name, model.slice());
            } catch (error) {
              // Narrow refcounts cannot hold the extra references; nothing may change then.
              expect(error).toBeInstanceOf(BlockError);
              expect(String(error)).toMatch(/overflow/);
            }
            break;
          }
          case 'apply': {
            const saved = snapshots.get(`s${op.which}`);
            if (!saved) break;
            await image.applySnapshot(`s${op.which}`);
            model = saved.slice();
            size = model.length;
            break;
          }
          case 'delete': {
            if (!snapshots.delete(`s${op.which}`)) break;
            await image.deleteSnapshot(`s${op.which}`);
            break;
          }
          case 'grow': {
            if (snapshots.size > 0) break;
            await image.resize(size + op.by);
            const grown = new Uint8Array(size + op.by);
            grown.set(model);
            model = grown;
            size = grown.length;
            break;
          }
          case 'compress': {
          // Whole clusters only; incompressible data falls back to a normal write.
          if (useDataFile) break;
          const offset = (op.cluster * clusterSize) % (size - (size % clusterSize) || clusterSize);
          const length = Math.min(clusterSize, size - offset);
          if (length <= 0 || (length < clusterSize && offset + length !== size)) break;
          const data = op.repetitive ? new Uint8Array(length).fill(op.seed & 0xff) : pattern(length, op.seed);
          await image.writeCompressed(offset, data);
          model.set(data, offset);
          break;
        }
        case 'shrink': {
            if (snapshots.size > 0 || op.by >= size) break;
            await image.resize(size - op.by, { shrink: true });
            model = model.slice(0, size - op.by);
            size = model.length;
            break;
          }
        }
      }
      expect(image.size).toBe(size);
      const ours = new Uint8Array(size);
      await image.readAt(0, ours);
      expect(Buffer.compare(ours, model)).toBe(0);
    } finally {
      await image.close();
    }

    const check = tools.check(path);
    expect(check.result).toMatchObject({ 'check-errors': 0 });
    expect(check.result.corruptions ?? 0).toBe(0);
    expect(check.result.leaks ?? 0).toBe(0);
    expect(check.status).toBe(0);
    const theirMap = JSON.parse(tools.img(['map', '--output=json', path])) as unknown;
    const mapped = await openImage(path, { readOnly: true });
    const ourMap = await mapImage(mapped);
    await mapped.backend.close();
    expect(ourMap).toEqual(theirMap);
    const raw = join(dir, 'converted.raw');
    tools.img(['convert', '-O', 'raw', path, raw]);
    expect(Buffer.compare(readFileSync(raw), model)).toBe(0);
    for (const [name, saved] of snapshots) {
      tools.img(['convert', '-O', 'raw', '-l', `snapshot.name=${name}`, path, raw]);
      expect(Buffer.compare(readFileSync(raw), saved)).toBe(0);
    }
    rmSync(path);
  });
});
