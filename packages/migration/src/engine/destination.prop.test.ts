import { expect } from 'vitest';
import { test, fc } from '@fast-check/vitest';
import { TsvirtError } from '@tsvirt/interfaces';
import { ManualClock } from '@tsvirt/interfaces/testing';
import { MigrationStreamError } from '../errors.js';
import { FrameType, PageRecord } from '../stream/format.js';
import { FrameWriter } from '../stream/frame-writer.js';
import { FakeVm, RecordingChannel, firstDifferentPage, replayChannel, simulatedTiming } from '../testing/index.js';
import { receiveMigration } from './destination.js';
import { startMigration } from './source.js';

const PAGES = 64;

/** One live stream with every record kind: normal, zero and XBZRLE pages, device state, end marker. */
async function recordStream(): Promise<{ bytes: Uint8Array; source: FakeVm }> {
  const clock = new ManualClock();
  const source = new FakeVm({ memorySize: PAGES * 4096, clock, workload: { writesPerSecond: 400, pattern: 'hot-set', hotSetPages: 8 }, seed: 5, running: true });
  source.populate(6, 0.5);
  const channel = new RecordingChannel();
  // A one-way channel has no answers; a slow "link" lets the guest dirty pages between passes.
  const timing = simulatedTiming(clock);
  const slowChannel = { ...channel, duplex: false, write: async (bytes: Uint8Array) => { clock.advance(bytes.length * 4000); return channel.write(bytes); }, read: () => channel.read(), end: () => channel.end(), destroy: () => channel.destroy() };
  const migration = startMigration(source, slowChannel, { timing, xbzrle: { cacheSize: 16 * 4096 }, downtimeLimitMs: 20, batchBytes: 16384 });
  const stats = await migration.done;
  if (stats.status !== 'completed' || stats.xbzrleCache!.pages === 0 || stats.ram.duplicate === 0) throw new Error(`recording is not varied enough: ${JSON.stringify(stats)}`);
  return { bytes: channel.bytes(), source };
}

const recorded = recordStream();

test('the recorded stream restores exactly (the baseline the corruptions are measured against)', async () => {
  const { bytes, source } = await recorded;
  const destination = new FakeVm({ memorySize: PAGES * 4096 });
  await receiveMigration(destination, replayChannel(bytes, 1000));
  expect(firstDifferentPage(source.memory, destination.memory)).toBe(-1);
  expect(destination.running).toBe(true);
});

async function expectRefused(bytes: Uint8Array, chunk: number): Promise<MigrationStreamError> {
  const destination = new FakeVm({ memorySize: PAGES * 4096 });
  const outcome = await receiveMigration(destination, replayChannel(bytes, chunk)).then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(destination.running).toBe(false);
  expect(outcome).toBeInstanceOf(MigrationStreamError);
  return outcome as MigrationStreamError;
}

test.prop([fc.nat(), fc.integer({ min: 1, max: 255 }), fc.integer({ min: 1, max: 70_000 })], { numRuns: 150 })(
  'any corrupted byte is detected and never yields a running destination',
  async (where, mask, chunk) => {
    const { bytes } = await recorded;
    const corrupt = bytes.slice();
    corrupt[where % corrupt.length]! ^= mask;
    await expectRefused(corrupt, chunk);
  },
);

test.prop([fc.nat(), fc.integer({ min: 1, max: 70_000 })], { numRuns: 100 })('any truncation is detected and never yields a running destination', async (where, chunk) => {
  const { bytes } = await recorded;
  const error = await expectRefused(bytes.subarray(0, where % bytes.length), chunk);
  expect(error.reason).toBe('truncated');
});

test.prop([fc.nat(), fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 64 })], { numRuns: 100 })('spliced, dropped or inserted bytes are detected', async (from, length, inserted) => {
  const { bytes } = await recorded;
  const start = from % bytes.length;
  const end = Math.min(bytes.length, start + (length % 5000));
  const spliced = new Uint8Array([...bytes.subarray(0, start), ...inserted, ...bytes.subarray(end)]);
  fc.pre(spliced.length !== bytes.length || spliced.some((value, index) => value !== bytes[index]));
  await expectRefused(spliced, 4096);
});

/** Frames with correct checksums and hostile contents: the payload checks must hold on their own. */
const hostileFrame = fc.oneof(
  fc.record({ type: fc.constant(FrameType.RamPages), payload: fc.uint8Array({ maxLength: 6000 }) }),
  fc.record({
    type: fc.constant(FrameType.RamPages),
    payload: fc.tuple(fc.constantFrom<number>(PageRecord.Normal, PageRecord.Zero, PageRecord.Xbzrle, 0, 9), fc.nat({ max: PAGES * 2 }), fc.uint8Array({ maxLength: 5000 })).map(([kind, page, rest]) => {
      const record = new Uint8Array(5 + rest.length);
      const view = new DataView(record.buffer);
      view.setUint8(0, kind);
      view.setUint32(1, page, true);
      record.set(rest, 5);
      return record;
    }),
  }),
  fc.record({ type: fc.constantFrom<number>(FrameType.DeviceState, FrameType.End, FrameType.Header, FrameType.Accept, FrameType.Complete), payload: fc.jsonValue().map((value) => new TextEncoder().encode(JSON.stringify(value))) }),
);

test.prop([fc.array(hostileFrame, { maxLength: 6 }), fc.boolean()], { numRuns: 150 })('checksummed but hostile frames fail with typed errors and the machine stays paused', async (frames, withHeader) => {
  const { bytes } = await recorded;
  const channel = new RecordingChannel();
  const writer = new FrameWriter(channel);
  await writer.writePreamble();
  if (withHeader) {
    // The genuine header frame: preamble (12 bytes) then a frame whose length is at bytes 20..23.
    const length = new DataView(bytes.buffer, bytes.byteOffset).getUint32(12 + 8, true);
    await writer.writeFrame(FrameType.Header, bytes.subarray(12 + 12, 12 + 12 + length));
  }
  for (const frame of frames) await writer.writeFrame(frame.type as FrameType, frame.payload);
  const destination = new FakeVm({ memorySize: PAGES * 4096 });
  const outcome = await receiveMigration(destination, replayChannel(channel.bytes(), 777)).then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(outcome).toBeInstanceOf(TsvirtError);
  expect(destination.running).toBe(false);
});
