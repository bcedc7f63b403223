import { fc, test } from '@fast-check/vitest';
import { TsvirtError } from '@tsvirt/interfaces';
import { expect } from 'vitest';
import { MemoryImageFile } from '../image-file.js';
import { checkQcow2 } from './check.js';
import { createQcow2 } from './create.js';
import { Qcow2Backend } from './qcow2.js';

/** A small image with data, a snapshot and more data: every table type present (4 KiB clusters). */
async function sample(extendedL2: boolean): Promise<Uint8Array> {
  const file = new MemoryImageFile();
  const image = await createQcow2(file, { size: 256 << 10, clusterSize: extendedL2 ? 16384 : 4096, extendedL2 });
  await image.writeAt(1000, new Uint8Array(20000).fill(0x5a));
  await image.createSnapshot('one');
  await image.writeAt(50000, new Uint8Array(9000).fill(0xa5));
  await image.writeCompressed(0, new Uint8Array(extendedL2 ? 16384 : 4096).fill(3));
  return file.contents();
}

const samples = new Map<boolean, Uint8Array>();

/** Everything a hostile image may cause is a TsvirtError (typed, with a code), never a TypeError or RangeError. */
async function expectOnlyTypedErrors(action: () => Promise<unknown>): Promise<void> {
  try {
    await action();
  } catch (error) {
    if (!(error instanceof TsvirtError)) throw error;
  }
}

test.prop(
  [fc.boolean(), fc.array(fc.tuple(fc.nat({ max: 80_000 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 12 })],
  { numRuns: 400 },
)('fuzzed metadata gives typed errors, never a crash', async (extendedL2, mutations) => {
  if (!samples.has(extendedL2)) samples.set(extendedL2, await sample(extendedL2));
  const bytes = samples.get(extendedL2)!.slice();
  for (const [at, value] of mutations) if (at < bytes.length) bytes[at] = value;
  let image: Qcow2Backend | undefined;
  await expectOnlyTypedErrors(async () => {
    image = await Qcow2Backend.open(new MemoryImageFile(bytes, 'fuzzed'));
  });
  if (image === undefined) return;
  const opened = image;
  const window = Math.min(opened.size, 256 << 10);
  await expectOnlyTypedErrors(() => opened.readAt(0, new Uint8Array(window)));
  await expectOnlyTypedErrors(() => opened.writeAt(Math.floor(window / 3), new Uint8Array(5000).fill(1)));
  await expectOnlyTypedErrors(() => opened.discard(0, Math.min(window, 40000)));
  await expectOnlyTypedErrors(() => opened.listSnapshots());
  await expectOnlyTypedErrors(() => checkQcow2(opened));
  await expectOnlyTypedErrors(() => opened.close());
  expect(true).toBe(true);
});
