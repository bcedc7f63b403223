import { expect } from 'vitest';
import { test, fc } from '@fast-check/vitest';
import { TsvirtError } from '@tsvirt/interfaces';
import { ManualClock } from '@tsvirt/interfaces/testing';
import { FrameType } from '../stream/format.js';
import { FrameWriter } from '../stream/frame-writer.js';
import { FakeVm, RecordingChannel, firstDifferentPage, settleOnClock, simulatedTiming } from '../testing/index.js';
import type { MigrationChannel } from '../transport/channel.js';
import { createChannelPair } from '../transport/memory-channel.js';
import { receiveMigration } from './destination.js';
import { startMigration, startOfflineMigration } from './source.js';
import type { MigrationOptions } from './options.js';
import type { MigrationStatus } from './stats.js';

/**
 * Fuzzing both ends against a hostile peer, in simulated time: the
 * destination against mutated, truncated, trickled and stalled streams, the
 * source against garbage answers, stalls and early closes. Whatever the peer
 * does, each side ends within a bound with a typed error (or completes), the
 * source keeps running unless the destination may have run, and nothing is
 * thrown or rejected unhandled. The runs are few and small so the whole file
 * takes a few seconds; the seed is printed in every test name and
 * `FC_SEED=<seed>` replays it.
 */

const PAGES = 32;
const MS = 1e6;
/** Short deadlines so a stalled case ends quickly in simulated time. */
const DEADLINES = { setupMs: 400, stallMs: 50, recoveryMs: 200 };
/** Ten simulated seconds in 10 ms steps: far past every deadline, so reaching it is a hang. */
const BOUND = { stepNs: 10 * MS, maxSteps: 1000 };
/** What an end may take once its peer stopped doing anything: well past every deadline. */
const SLACK_MS = 2000;

/**
 * Runs `body` and fails if it left a rejection nobody handled: vitest would
 * report one only after the fact, unattached to the failing input.
 */
async function withoutUnhandledRejections(body: () => Promise<void>): Promise<void> {
  const unhandled: unknown[] = [];
  const record = (reason: unknown): void => void unhandled.push(reason);
  process.on('unhandledRejection', record);
  try {
    await body();
    // Node reports an unhandled rejection once the microtasks of its turn ran out.
    await new Promise<void>((resolve) => setImmediate(resolve));
  } finally {
    process.off('unhandledRejection', record);
  }
  expect(unhandled).toEqual([]);
}

/** A live stream with every record kind (normal, zero and XBZRLE pages), recorded once. */
async function recordStream(): Promise<{ bytes: Uint8Array; source: FakeVm }> {
  const clock = new ManualClock();
  const source = new FakeVm({ memorySize: PAGES * 4096, clock, workload: { writesPerSecond: 300, pattern: 'hot-set', hotSetPages: 6 }, seed: 5, running: true });
  source.populate(6, 0.5);
  const recording = new RecordingChannel();
  // A slow one-way "link" lets the guest dirty pages between passes.
  const slow: MigrationChannel = {
    duplex: false,
    write: async (bytes) => {
      clock.advance(bytes.length * 4000);
      return recording.write(bytes);
    },
    read: () => recording.read(),
    end: () => recording.end(),
    destroy: () => recording.destroy(),
  };
  const stats = await startMigration(source, slow, { timing: simulatedTiming(clock), xbzrle: { cacheSize: 16 * 4096 }, downtimeLimitMs: 20, batchBytes: 8192 }).done;
  if (stats.status !== 'completed') throw new Error(`recording failed: ${stats.errorDesc}`);
  return { bytes: recording.bytes(), source };
}

const recorded = recordStream();

/** Frames with good checksums and hostile contents, including a post-copy start the destination would act on. */
const hostileFrame = fc.oneof(
  fc.record({ type: fc.constant<number>(FrameType.RamPages), payload: fc.uint8Array({ maxLength: 300 }) }),
  fc.record({ type: fc.constant<number>(FrameType.PostcopyStart), payload: fc.uint8Array({ minLength: 3, maxLength: 5 }) }),
  fc.record({
    type: fc.constantFrom<number>(FrameType.DeviceState, FrameType.End, FrameType.Header, FrameType.Cancel, FrameType.Error, FrameType.Resume, FrameType.ChannelHello),
    payload: fc.jsonValue({ maxDepth: 2 }).map((value) => new TextEncoder().encode(JSON.stringify(value))),
  }),
);

const mutation = fc.oneof(
  fc.constant({ kind: 'none' as const }),
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), mask: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('splice' as const), at: fc.nat(), drop: fc.nat({ max: 3000 }), insert: fc.uint8Array({ maxLength: 24 }) }),
  // The genuine header and device state, then hostile frames: reaches post-copy and the switch-over checks.
  fc.record({ kind: fc.constant('frames' as const), frames: fc.array(hostileFrame, { maxLength: 5 }), withDeviceState: fc.boolean() }),
);

/** The genuine frames of a recorded stream, by type: the header and the device state. */
function genuineFrame(bytes: Uint8Array, type: number): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let at = 12; at + 12 <= bytes.length; ) {
    const length = view.getUint32(at + 8, true);
    if (bytes[at] === type) return bytes.subarray(at + 12, at + 12 + length);
    at += 12 + length + 4;
  }
  throw new Error(`no frame of type ${type} in the recording`);
}

async function hostileStream(bytes: Uint8Array, change: typeof mutation extends fc.Arbitrary<infer T> ? T : never): Promise<Uint8Array> {
  switch (change.kind) {
    case 'none':
      return bytes;
    case 'flip': {
      const flipped = bytes.slice();
      flipped[change.at % flipped.length]! ^= change.mask;
      return flipped;
    }
    case 'splice': {
      const start = change.at % bytes.length;
      return new Uint8Array([...bytes.subarray(0, start), ...change.insert, ...bytes.subarray(Math.min(bytes.length, start + change.drop))]);
    }
    case 'frames': {
      const recording = new RecordingChannel();
      const writer = new FrameWriter(recording);
      await writer.writePreamble();
      await writer.writeFrame(FrameType.Header, genuineFrame(bytes, FrameType.Header));
      if (change.withDeviceState) await writer.writeFrame(FrameType.DeviceState, genuineFrame(bytes, FrameType.DeviceState));
      for (const frame of change.frames) await writer.writeFrame(frame.type as FrameType, frame.payload);
      return recording.bytes();
    }
  }
}

test.prop(
  [
    mutation,
    fc.option(fc.nat(), { nil: undefined }), // deliver only this many bytes
    fc.constantFrom('stall', 'stall', 'end', 'destroy'), // then
    fc.integer({ min: 1, max: 300 }), // pieces the stream is delivered in
    fc.constantFrom(0, 0, 5, 30, 80), // simulated ms between pieces (80 is past the stall limit)
    fc.constantFrom<number | undefined>(undefined, undefined, 1, 64), // a small buffer and no reading: the destination's writes block
  ],
  { numRuns: 120 },
)('the destination against a hostile source: it ends within the bound with a typed error, the machine paused, or completes an intact stream', (change, cut, ending, pieces, paceMs, tinyBuffer) =>
  withoutUnhandledRejections(async () => {
    const { bytes: genuine, source } = await recorded;
    const clock = new ManualClock();
    const stream = await hostileStream(genuine, change);
    const delivered = cut === undefined ? stream : stream.subarray(0, cut % (stream.length + 1));
    const chunk = Math.max(1, Math.ceil(delivered.length / pieces));
    // A source that keeps sending is progress, not a hang: the bound starts once it has sent everything.
    const bound = { stepNs: 10 * MS, maxSteps: Math.ceil((pieces * paceMs + SLACK_MS) / 10) };
    const [sourceEnd, destinationEnd] = createChannelPair(tinyBuffer === undefined ? {} : { highWaterBytes: tinyBuffer });
    if (tinyBuffer === undefined) void drain(sourceEnd);
    // The hostile source writes on its own schedule and never waits for the destination.
    let at = 0;
    const pump = clock.createTimer(() => {
      if (at < delivered.length) {
        sourceEnd.write(delivered.subarray(at, (at += chunk))).catch(() => {});
        pump.arm(clock.now() + paceMs * MS);
      } else if (ending === 'end') void sourceEnd.end();
      else if (ending === 'destroy') sourceEnd.destroy();
    });
    pump.arm(0);
    const vm = new FakeVm({ memorySize: PAGES * 4096, clock });
    const outcome = await settleOnClock(receiveMigration(vm, destinationEnd, { timing: simulatedTiming(clock), deadlines: DEADLINES }), clock, bound);
    pump.cancel();
    expect(outcome.state).not.toBe('pending');
    const intact = delivered.length === genuine.length && delivered.every((value, index) => value === genuine[index]);
    if (outcome.state === 'rejected') {
      expect(outcome.error).toBeInstanceOf(TsvirtError);
      expect(vm.running).toBe(false);
    } else {
      // Only the genuine stream, or frames that make a consistent (if empty) machine, may be accepted.
      expect(intact || change.kind === 'frames').toBe(true);
      expect(vm.running).toBe(true);
      if (intact) expect(firstDifferentPage(source.memory, vm.memory)).toBe(-1);
    }
  }),
);

async function drain(channel: MigrationChannel): Promise<void> {
  try {
    while ((await channel.read()) !== null);
  } catch {
    // Torn down: nothing more to read.
  }
}

/** What a hostile destination can send back: garbage, or frames of any answer type, with any payload. */
const answer = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('garbage' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }) }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant('frame' as const),
      type: fc.constantFrom<number>(
        FrameType.Complete,
        FrameType.Complete,
        FrameType.PostcopyRunning,
        FrameType.PostcopyRunning,
        FrameType.Accept,
        FrameType.Refuse,
        FrameType.Error,
        FrameType.Missing,
        FrameType.PageRequest,
        FrameType.Cancel,
        FrameType.Header,
      ),
      // PAGES = 32: a four-byte payload is a well-formed bitmap of missing pages, or one page request.
      payload: fc.oneof(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.uint8Array({ maxLength: 12 }), fc.constant(new TextEncoder().encode('{"reason":"no"}'))),
    }),
    weight: 4,
  },
);

const action = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 1, max: 200 }) }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant('send' as const), answer }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant('reading' as const), on: fc.boolean() }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('end' as const) }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('destroy' as const) }), weight: 1 },
);

type Action = typeof action extends fc.Arbitrary<infer T> ? T : never;

/** How a hostile destination opens: mostly as a real one would (preamble, then Accept), so the script reaches the later phases. */
const opening = fc.oneof(
  { arbitrary: fc.constant('accept' as const), weight: 6 },
  { arbitrary: fc.constantFrom('preamble' as const, 'none' as const, 'garbage' as const), weight: 2 },
);

/** Plays a hostile destination on `channel`, in simulated time, never awaiting the source. */
function playDestination(channel: MigrationChannel, clock: ManualClock, start: 'accept' | 'preamble' | 'none' | 'garbage', script: readonly Action[], readingAtFirst: boolean): void {
  const writer = new FrameWriter(channel);
  let reading = readingAtFirst;
  let readerBusy = false;
  const read = (): void => {
    if (readerBusy || !reading) return;
    readerBusy = true;
    channel.read().then(
      (chunk) => {
        readerBusy = false;
        if (chunk !== null) read();
      },
      () => {},
    );
  };
  if (start === 'accept' || start === 'preamble') writer.writePreamble().catch(() => {});
  if (start === 'accept') writer.writeFrame(FrameType.Accept).catch(() => {});
  if (start === 'garbage') channel.write(new TextEncoder().encode('HTTP/1.1 400 Bad\r\n')).catch(() => {});
  read();
  let step = 0;
  const timer = clock.createTimer(() => next());
  const next = (): void => {
    for (; step < script.length; step++) {
      const current = script[step]!;
      if (current.kind === 'wait') {
        step++;
        timer.arm(clock.now() + current.ms * MS);
        return;
      }
      if (current.kind === 'send') {
        const sent = current.answer.kind === 'garbage' ? channel.write(current.answer.bytes) : writer.writeFrame(current.answer.type as FrameType, current.answer.payload);
        sent.catch(() => {});
      } else if (current.kind === 'reading') {
        reading = current.on;
        read();
      } else if (current.kind === 'end') {
        channel.end().catch(() => {});
      } else {
        channel.destroy();
      }
    }
  };
  next();
}

const sourceMode = fc.constantFrom('live' as const, 'live' as const, 'postcopy' as const, 'postcopy' as const, 'offline' as const);
const libvirtTimeout = fc.option(fc.record({ afterMs: fc.integer({ min: 20, max: 600 }), action: fc.constantFrom<'suspend' | 'abort'>('suspend', 'abort') }), { nil: undefined });

function busyGuest(clock: ManualClock, writesPerSecond: number): FakeVm {
  const vm = new FakeVm({ memorySize: PAGES * 4096, clock, workload: { writesPerSecond, pattern: 'uniform' }, seed: 9, running: true });
  vm.populate(3, 0.7);
  return vm;
}

/** The source's invariants once it ended: typed errors, and the guest runs unless the migration completed or handed it over. */
function expectSourceOutcome(vm: FakeVm, status: MigrationStatus, error: Error | undefined, statuses: readonly MigrationStatus[]): void {
  expect(['completed', 'failed']).toContain(status);
  const handedOver = statuses.includes('postcopy-active');
  if (status === 'failed') {
    expect(error).toBeInstanceOf(TsvirtError);
    if (!handedOver) {
      // Before post-copy the source is the machine: it runs on, as it was.
      expect(vm.running).toBe(true);
      expect(vm.memory.dirtyLogging).toBe(false);
      expect(vm.cpuThrottlePercentage).toBe(0);
    } else {
      // The destination may have run: the source must never run again.
      expect(vm.running).toBe(false);
    }
  } else {
    // The destination confirmed: the machine is there now.
    expect(vm.running).toBe(false);
  }
}

test.prop(
  [
    sourceMode,
    libvirtTimeout,
    opening,
    fc.array(action, { maxLength: 10 }),
    fc.boolean(), // reading from the start
    fc.constantFrom<number | undefined>(undefined, 4096), // the link's buffer: a small one blocks the source's writes soon
    fc.boolean(), // post-copy recovery offered (to a destination that never answers on the new connection)
    fc.integer({ min: 0, max: 2000 }), // guest writes per second
  ],
  { numRuns: 150 },
)('the source against a scripted hostile destination: it ends within the bound, with a typed error and the guest running unless it was handed over', (mode, timeout, start, script, readingAtFirst, buffer, recovery, writesPerSecond) =>
  withoutUnhandledRejections(async () => {
    const clock = new ManualClock();
    const link = { clock, bytesPerSecond: 1024 * 1024 };
    const [sourceEnd, destinationEnd] = createChannelPair({ link, highWaterBytes: buffer });
    playDestination(destinationEnd, clock, start, script, readingAtFirst);
    const vm = busyGuest(clock, writesPerSecond);
    const statuses: MigrationStatus[] = [];
    const options: MigrationOptions = {
      timing: simulatedTiming(clock),
      deadlines: DEADLINES,
      timeout,
      downtimeLimitMs: mode === 'postcopy' ? 1 : 300,
      // Small frames: on the simulated link a frame arrives whole after its transfer time, which must stay under the stall limit.
      batchBytes: 8192,
      postcopy: mode === 'postcopy' ? { afterPasses: 1, reconnect: recovery ? async () => createChannelPair({ link })[0] : undefined } : undefined,
      observer: (event) => void (event.type === 'status' && statuses.push(event.status)),
    };
    const migration = mode === 'offline' ? startOfflineMigration(vm, sourceEnd, options) : startMigration(vm, sourceEnd, options);
    const outcome = await settleOnClock(migration.done, clock, BOUND);
    expect(outcome.state).toBe('fulfilled');
    expectSourceOutcome(vm, (outcome as { value: { status: MigrationStatus } }).value.status, migration.error, statuses);
  }),
);

/** Mostly absent: each fault alone, or none, lets a run get far enough to fail late. */
const sometimes = <T>(arbitrary: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.oneof({ arbitrary: fc.constant(undefined), weight: 3 }, { arbitrary, weight: 1 });

/** Faults on the destination's side of a connection, in simulated time. */
const faults = fc.record({
  /** The destination stops reading after this many bytes (its peer's writes then block). */
  stopReadingAfter: sometimes(fc.nat({ max: 150_000 })),
  /** Its answers vanish after this many (it stops writing). */
  stopAnsweringAfter: sometimes(fc.nat({ max: 5 })),
  /** Garbage is written into its answers at this time (ms). */
  garbageAtMs: sometimes(fc.nat({ max: 600 })),
  /** The connection is torn down at this time (ms). */
  destroyAtMs: sometimes(fc.nat({ max: 600 })),
});

type Faults = typeof faults extends fc.Arbitrary<infer T> ? T : never;

/** `channel` with `fault` applied: reads that never come back, answers that vanish, garbage, a teardown. */
function faulty(channel: MigrationChannel, clock: ManualClock, fault: Faults): MigrationChannel {
  let bytesRead = 0;
  let answers = 0;
  if (fault.garbageAtMs !== undefined) clock.createTimer(() => void channel.write(new Uint8Array([0xde, 0xad, 0xbe, 0xef])).catch(() => {})).arm(fault.garbageAtMs * MS);
  if (fault.destroyAtMs !== undefined) clock.createTimer(() => channel.destroy()).arm(fault.destroyAtMs * MS);
  return {
    duplex: true,
    read: async () => {
      if (fault.stopReadingAfter !== undefined && bytesRead >= fault.stopReadingAfter) return new Promise<Uint8Array | null>(() => {});
      const chunk = await channel.read();
      bytesRead += chunk?.length ?? 0;
      return chunk;
    },
    write: async (bytes) => {
      if (fault.stopAnsweringAfter !== undefined && answers >= fault.stopAnsweringAfter) return;
      answers++;
      return channel.write(bytes);
    },
    end: () => channel.end(),
    destroy: (reason) => channel.destroy(reason),
  };
}

test.prop(
  [
    sourceMode,
    libvirtTimeout,
    faults,
    fc.boolean(), // post-copy recovery offered on both sides (over healthy connections)
    fc.integer({ min: 0, max: 2000 }), // guest writes per second
  ],
  { numRuns: 80 },
)('the source and a real destination over a connection failing in any way: both end within the bound with typed errors, and a failed switch-over leaves the source running', (mode, timeout, fault, recovery, writesPerSecond) =>
  withoutUnhandledRejections(async () => {
    const clock = new ManualClock();
    const link = { clock, bytesPerSecond: 1024 * 1024 };
    const [sourceEnd, destinationEnd] = createChannelPair({ link });
    // The n-th reconnection of either side gets its end of the n-th fresh connection.
    const fresh: Array<[MigrationChannel, MigrationChannel]> = [];
    const reconnections = [0, 0];
    const reconnect = (side: 0 | 1) => async (): Promise<MigrationChannel> => {
      const index = reconnections[side]!;
      reconnections[side] = index + 1;
      while (fresh.length <= index) fresh.push(createChannelPair({ link }));
      return fresh[index]![side];
    };
    const source = busyGuest(clock, writesPerSecond);
    const destination = new FakeVm({ memorySize: PAGES * 4096, clock, workload: { writesPerSecond, pattern: 'uniform' }, seed: 11 });
    const statuses: MigrationStatus[] = [];
    const options: MigrationOptions = {
      timing: simulatedTiming(clock),
      deadlines: DEADLINES,
      timeout,
      downtimeLimitMs: mode === 'postcopy' ? 1 : 300,
      // Small frames: on the simulated link a frame arrives whole after its transfer time, which must stay under the stall limit.
      batchBytes: 8192,
      postcopy: mode === 'postcopy' ? { afterPasses: 1, reconnect: recovery ? reconnect(0) : undefined } : undefined,
      observer: (event) => void (event.type === 'status' && statuses.push(event.status)),
    };
    const migration = mode === 'offline' ? startOfflineMigration(source, sourceEnd, options) : startMigration(source, sourceEnd, options);
    const incoming = receiveMigration(destination, faulty(destinationEnd, clock, fault), {
      timing: simulatedTiming(clock),
      deadlines: DEADLINES,
      reconnect: recovery ? reconnect(1) : undefined,
    });
    incoming.catch(() => {});
    const outcome = await settleOnClock(migration.done, clock, BOUND);
    expect(outcome.state).toBe('fulfilled');
    const status = (outcome as { value: { status: MigrationStatus } }).value.status;
    expectSourceOutcome(source, status, migration.error, statuses);
    const received = await settleOnClock(incoming, clock, BOUND);
    expect(received.state).not.toBe('pending');
    if (received.state === 'rejected') {
      expect(received.error).toBeInstanceOf(TsvirtError);
      expect(destination.running).toBe(false);
    } else {
      expect(destination.running).toBe(true);
    }
    // The source completes only on the destination's word, which it gives just before it runs the machine.
    if (status === 'completed') expect(destination.running).toBe(true);
  }),
);
