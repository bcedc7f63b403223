import { expect } from 'vitest';
import { test, fc } from '@fast-check/vitest';
import { ManualClock } from '@tsvirt/interfaces/testing';
import { MigrationCancelledError } from '../errors.js';
import { FakeVm, firstDifferentPage, runSimulatedMigration, type DirtyPattern } from '../testing/index.js';
import type { OutgoingMigration } from './source.js';

const KIB = 1024;
const pattern = fc.constantFrom<DirtyPattern>('uniform', 'hot-set', 'sequential');

function guests(clock: ManualClock, pages: number, writesPerSecond: number, dirtyPattern: DirtyPattern, seed: number, tickNs?: number) {
  const workload = { writesPerSecond, pattern: dirtyPattern };
  const source = new FakeVm({ memorySize: pages * 4096, clock, workload, seed, running: true, tickNs });
  source.populate(seed + 1, 0.6);
  const destination = new FakeVm({ memorySize: pages * 4096, workload, seed: seed + 2 });
  return { source, destination };
}

test.prop(
  [
    fc.integer({ min: 32, max: 384 }), // pages
    fc.integer({ min: 256, max: 8192 }), // link KiB/s
    fc.double({ min: 0, max: 0.5, noNaN: true }), // dirty rate as a share of the pages the link moves per second
    fc.integer({ min: 50, max: 500 }), // downtime limit, ms
    pattern,
    fc.boolean(), // XBZRLE
    fc.constantFrom(0, 0, 2, 3), // multifd channels
    fc.integer({ min: 1, max: 1000 }),
  ],
  { numRuns: 25 },
)('converges when the guest dirties slower than the link clears, within the downtime limit, with identical memory and devices', async (pages, linkKib, share, limitMs, dirtyPattern, xbzrle, multifd, seed) => {
  const clock = new ManualClock();
  const bytesPerSecond = linkKib * KIB;
  const writesPerSecond = Math.floor((share * bytesPerSecond) / 4096);
  const { source, destination } = guests(clock, pages, writesPerSecond, dirtyPattern, seed);
  const result = await runSimulatedMigration({
    source,
    destination,
    clock,
    bytesPerSecond,
    multifd,
    // A safety net that must not fire: convergence is the claim.
    migration: { downtimeLimitMs: limitMs, xbzrle: xbzrle ? { cacheSize: 64 * KIB } : false, timeout: { afterMs: 600_000, action: 'abort' } },
  });
  expect(result.sourceError).toBeUndefined();
  expect(result.stats.status).toBe('completed');
  expect(result.stats.switchoverReason).toBe('converged');
  expect(result.stats.downtime!).toBeLessThanOrEqual(limitMs);
  expect(firstDifferentPage(source.memory, destination.memory)).toBe(-1);
  expect(destination.saveDevices()).toEqual(source.saveDevices());
  expect(destination.running).toBe(true);
});

test.prop(
  [
    fc.integer({ min: 300, max: 512 }), // pages: well above what one downtime window moves
    fc.integer({ min: 256, max: 1024 }), // link KiB/s
    fc.integer({ min: 2, max: 8 }), // dirty rate as a multiple of the link's pages per second
    fc.constantFrom<DirtyPattern>('uniform', 'sequential'),
    fc.integer({ min: 1, max: 1000 }),
  ],
  { numRuns: 6 },
)('auto-converge makes a guest that would never converge converge', async (pages, linkKib, multiple, dirtyPattern, seed) => {
  const bytesPerSecond = linkKib * KIB;
  const writesPerSecond = Math.floor((multiple * bytesPerSecond) / 4096);
  const run = async (autoConverge: boolean) => {
    const clock = new ManualClock();
    // Guest time in 10 ms steps keeps these long simulated runs quick.
    const { source, destination } = guests(clock, pages, writesPerSecond, dirtyPattern, seed, 10_000_000);
    const result = await runSimulatedMigration({
      source,
      destination,
      clock,
      bytesPerSecond,
      // Unaided it does not converge and the abort timeout ends it; aided, 16+ passes of a few seconds each fit well inside.
      migration: { downtimeLimitMs: 100, autoConverge, timeout: { afterMs: autoConverge ? 600_000 : 60_000, action: 'abort' } },
    });
    return { source, destination, result };
  };
  const unaided = await run(false);
  expect(unaided.result.stats.status).toBe('failed');
  expect(unaided.source.running).toBe(true);
  const aided = await run(true);
  expect(aided.result.stats.status).toBe('completed');
  expect(aided.result.stats.switchoverReason).toBe('converged');
  expect(aided.result.stats.cpuThrottlePercentage).toBeGreaterThanOrEqual(20);
  expect(aided.result.stats.downtime!).toBeLessThanOrEqual(100);
  expect(firstDifferentPage(aided.source.memory, aided.destination.memory)).toBe(-1);
  expect(aided.destination.saveDevices()).toEqual(aided.source.saveDevices());
});

test.prop(
  [
    fc.integer({ min: 32, max: 256 }),
    fc.integer({ min: 0, max: 40 }), // cancel at this event
    fc.integer({ min: 0, max: 4000 }), // writes per second
    pattern,
    fc.boolean(), // auto-converge
    fc.boolean(), // XBZRLE
    fc.boolean(), // offline
    fc.integer({ min: 1, max: 1000 }),
  ],
  { numRuns: 40 },
)('cancel at any step leaves the source running with identical memory, and the destination never runs', async (pages, cancelAt, writesPerSecond, dirtyPattern, autoConverge, xbzrle, offline, seed) => {
  const clock = new ManualClock();
  const { source, destination } = guests(clock, pages, writesPerSecond, dirtyPattern, seed);
  let handle: OutgoingMigration | undefined;
  let events = 0;
  const result = await runSimulatedMigration({
    source,
    destination,
    clock,
    bytesPerSecond: 512 * KIB,
    offline,
    migration: {
      autoConverge,
      xbzrle,
      downtimeLimitMs: 100,
      timeout: { afterMs: 60_000, action: 'suspend' },
      observer: () => {
        if (events++ === cancelAt) handle?.cancel();
      },
    },
    onStart: (migration) => (handle = migration),
  });
  if (result.stats.status === 'cancelled') {
    expect(result.sourceError).toBeInstanceOf(MigrationCancelledError);
    expect(source.running).toBe(true);
    expect(source.cpuThrottlePercentage).toBe(0);
    expect(source.memory.dirtyLogging).toBe(false);
    expect(destination.running).toBe(false);
    expect(result.incomingError).toBeDefined();
    // The engine only reads: the source's memory is what its own writes made it.
    const twin = new FakeVm({ memorySize: pages * 4096, workload: { writesPerSecond, pattern: dirtyPattern }, seed });
    twin.populate(seed + 1, 0.6);
    twin.step(source.writes);
    expect(firstDifferentPage(source.memory, twin.memory)).toBe(-1);
  } else {
    // The cancel came after the end marker (or never): the migration completed.
    expect(result.stats.status).toBe('completed');
    expect(firstDifferentPage(source.memory, destination.memory)).toBe(-1);
    expect(destination.running).toBe(true);
  }
});

test.prop(
  [
    fc.integer({ min: 32, max: 256 }),
    fc.integer({ min: 1, max: 3000 }), // connection drop, ms
    fc.integer({ min: 0, max: 4000 }), // writes per second
    pattern,
    fc.boolean(), // auto-converge
    fc.constantFrom(0, 2), // multifd channels
    fc.integer({ min: 1, max: 1000 }),
  ],
  { numRuns: 25 },
)('a connection lost before the end leaves the source running with identical memory, and the destination never runs', async (pages, dropMs, writesPerSecond, dirtyPattern, autoConverge, multifd, seed) => {
  const clock = new ManualClock();
  const { source, destination } = guests(clock, pages, writesPerSecond, dirtyPattern, seed);
  const result = await runSimulatedMigration({
    source,
    destination,
    clock,
    bytesPerSecond: 512 * KIB,
    multifd,
    migration: { autoConverge, downtimeLimitMs: 100, timeout: { afterMs: 60_000, action: 'suspend' } },
    dropConnectionAt: [dropMs * 1e6],
  });
  if (result.stats.status === 'completed') {
    // The drop came after the destination confirmed.
    expect(firstDifferentPage(source.memory, destination.memory)).toBe(-1);
    return;
  }
  expect(result.stats.status).toBe('failed');
  expect(source.running).toBe(true);
  expect(source.cpuThrottlePercentage).toBe(0);
  expect(source.memory.dirtyLogging).toBe(false);
  expect(destination.running).toBe(false);
  const twin = new FakeVm({ memorySize: pages * 4096, workload: { writesPerSecond, pattern: dirtyPattern }, seed });
  twin.populate(seed + 1, 0.6);
  twin.step(source.writes);
  expect(firstDifferentPage(source.memory, twin.memory)).toBe(-1);
});
