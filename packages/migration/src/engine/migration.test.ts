import { describe, expect, it } from 'vitest';
import { ManualClock } from '@tsvirt/interfaces/testing';
import { FakeVm, firstDifferentPage, runSimulatedMigration } from '../testing/index.js';
import { MigrationIncompatibleError, MigrationCancelledError, MigrationTimeoutError } from '../errors.js';
import { toQueryMigrate, type MigrationEvent } from './stats.js';

const MIB = 1024 * 1024;

function pair(clock: ManualClock, writesPerSecond: number, pattern: 'uniform' | 'hot-set' | 'sequential' = 'uniform', memorySize = 2 * MIB) {
  const source = new FakeVm({ memorySize, clock, workload: { writesPerSecond, pattern }, seed: 7, running: true });
  source.populate(3);
  const destination = new FakeVm({ memorySize, seed: 99 });
  return { source, destination };
}

describe('live migration over a simulated link', () => {
  it('moves an idle guest: memory and device state equal, destination running, source paused', async () => {
    const clock = new ManualClock();
    const { source, destination } = pair(clock, 0);
    const result = await runSimulatedMigration({ source, destination, clock, bytesPerSecond: 10 * MIB });
    expect(result.sourceError).toBeUndefined();
    expect(result.incomingError).toBeUndefined();
    expect(result.stats.status).toBe('completed');
    expect(result.stats.switchoverReason).toBe('converged');
    expect(firstDifferentPage(source.memory, destination.memory)).toBe(-1);
    expect(destination.saveDevices()).toEqual(source.saveDevices());
    expect(destination.running).toBe(true);
    expect(source.running).toBe(false);
    expect(source.memory.dirtyLogging).toBe(false);
    // 2 MiB: 512 pages, about 3/4 with data, the rest zero.
    expect(result.stats.ram.normal + result.stats.ram.duplicate).toBe(512);
    expect(result.stats.ram.duplicate).toBeGreaterThan(50);
    expect(result.stats.ram.total).toBe(2 * MIB);
  });

  it('iterates over dirtied pages, respects the downtime limit and reports query-migrate figures', async () => {
    const clock = new ManualClock();
    // 2 000 page writes/s against 10 MiB/s (2 560 pages/s): converges, slowly.
    const { source, destination } = pair(clock, 2000);
    const events: MigrationEvent[] = [];
    const result = await runSimulatedMigration({ source, destination, clock, bytesPerSecond: 10 * MIB, migration: { observer: (event) => events.push(event), downtimeLimitMs: 50 } });
    expect(result.stats.status).toBe('completed');
    expect(result.stats.ram.iterations).toBeGreaterThan(1);
    expect(result.stats.downtime).toBeDefined();
    expect(result.stats.downtime!).toBeLessThanOrEqual(50);
    expect(firstDifferentPage(source.memory, destination.memory)).toBe(-1);
    expect(destination.saveDevices()).toEqual(source.saveDevices());
    expect(events.filter((event) => event.type === 'iteration').length).toBe(result.stats.ram.iterations);
    expect(events.some((event) => event.type === 'progress')).toBe(true);
    const iteration = events.find((event) => event.type === 'iteration');
    expect(iteration?.type === 'iteration' && iteration.stats.expectedDowntime).toBeGreaterThan(0);
    const qmp = toQueryMigrate(result.stats);
    expect(qmp.status).toBe('completed');
    expect(qmp).toHaveProperty(['ram', 'dirty-sync-count']);
    expect((qmp.ram as Record<string, number>)['dirty-sync-count']).toBeGreaterThanOrEqual(2);
    expect((qmp.ram as Record<string, number>).mbps).toBeCloseTo(10 * MIB * 8 / 1e6, 0);
  });

  it('the migrated guest continues exactly as the source would have', async () => {
    const clock = new ManualClock();
    const workload = { writesPerSecond: 3000, pattern: 'hot-set' } as const;
    const source = new FakeVm({ memorySize: 2 * MIB, clock, workload, seed: 5, running: true });
    source.populate(11);
    const destination = new FakeVm({ memorySize: 2 * MIB, workload, seed: 12345 });
    const result = await runSimulatedMigration({ source, destination, clock, bytesPerSecond: 10 * MIB });
    expect(result.stats.status).toBe('completed');
    expect(source.writes).toBeGreaterThan(0);
    // The workload's position travels in the device state: both go on identically.
    source.step(500);
    destination.step(500);
    expect(firstDifferentPage(source.memory, destination.memory)).toBe(-1);
    expect(destination.saveDevices()).toEqual(source.saveDevices());
  });

  it('a destination with another configuration refuses before any page moves; the source keeps running', async () => {
    const clock = new ManualClock();
    const source = new FakeVm({ memorySize: MIB, clock, workload: { writesPerSecond: 100, pattern: 'uniform' }, running: true });
    const destination = new FakeVm({ memorySize: MIB, descriptor: { cpuModel: 'other-cpu', devices: ['cpu'] } });
    const result = await runSimulatedMigration({ source, destination, clock, bytesPerSecond: MIB });
    expect(result.stats.status).toBe('failed');
    expect(result.sourceError).toBeInstanceOf(MigrationIncompatibleError);
    expect(result.incomingError).toBeInstanceOf(MigrationIncompatibleError);
    expect((result.incomingError as MigrationIncompatibleError).mismatches.join('\n')).toMatch(/CPU model fake-cpu[\s\S]*timer0 missing/);
    expect(result.stats.ram.normal).toBe(0);
    expect(source.running).toBe(true);
    expect(destination.running).toBe(false);
  });

  it('without help a busy guest does not converge: the abort timeout gives up and the source keeps running', async () => {
    const clock = new ManualClock();
    const { source, destination } = pair(clock, 20_000, 'uniform');
    const result = await runSimulatedMigration({ source, destination, clock, bytesPerSecond: 4 * MIB, migration: { timeout: { afterMs: 3000, action: 'abort' } } });
    expect(result.stats.status).toBe('failed');
    expect(result.sourceError).toBeInstanceOf(MigrationTimeoutError);
    expect(source.running).toBe(true);
    expect(source.memory.dirtyLogging).toBe(false);
    expect(destination.running).toBe(false);
  });

  it('timeout-suspend pauses the busy guest and finishes offline', async () => {
    const clock = new ManualClock();
    const { source, destination } = pair(clock, 20_000, 'uniform');
    const result = await runSimulatedMigration({ source, destination, clock, bytesPerSecond: 4 * MIB, migration: { timeout: { afterMs: 2000, action: 'suspend' } } });
    expect(result.stats.status).toBe('completed');
    expect(result.stats.switchoverReason).toBe('timeout');
    expect(firstDifferentPage(source.memory, destination.memory)).toBe(-1);
    expect(destination.saveDevices()).toEqual(source.saveDevices());
  });

  it('auto-converge throttles a busy guest 20 %, 30 %, ... until it converges', async () => {
    const clock = new ManualClock();
    const { source, destination } = pair(clock, 20_000, 'uniform');
    const throttles: number[] = [];
    const result = await runSimulatedMigration({
      source,
      destination,
      clock,
      bytesPerSecond: 4 * MIB,
      migration: { autoConverge: true, observer: (event) => event.type === 'throttle' && throttles.push(event.percentage) },
    });
    expect(result.stats.status).toBe('completed');
    expect(result.stats.switchoverReason).toBe('converged');
    expect(throttles.slice(0, 3)).toEqual([20, 30, 40].slice(0, Math.min(3, throttles.length)));
    expect(throttles.length).toBeGreaterThan(0);
    expect(result.stats.cpuThrottlePercentage).toBe(throttles[throttles.length - 1]);
    expect(firstDifferentPage(source.memory, destination.memory)).toBe(-1);
  });

  it('XBZRLE sends re-dirtied pages as small deltas', async () => {
    const clock = new ManualClock();
    const { source, destination } = pair(clock, 1500, 'hot-set');
    const result = await runSimulatedMigration({ source, destination, clock, bytesPerSecond: 4 * MIB, migration: { xbzrle: { cacheSize: MIB }, downtimeLimitMs: 20 } });
    expect(result.stats.status).toBe('completed');
    const cache = result.stats.xbzrleCache!;
    expect(cache.pages).toBeGreaterThan(0);
    expect(cache.encodingRate).toBeGreaterThan(10);
    expect(firstDifferentPage(source.memory, destination.memory)).toBe(-1);
    expect(result.incoming?.pages.xbzrle).toBe(cache.pages);
  });

  it('max-bandwidth limits the rate below the link speed', async () => {
    const clock = new ManualClock();
    const { source, destination } = pair(clock, 0);
    const result = await runSimulatedMigration({ source, destination, clock, bytesPerSecond: 100 * MIB, migration: { maxBandwidth: MIB } });
    expect(result.stats.status).toBe('completed');
    // 2 MiB at 1 MiB/s: at least two seconds, whatever the link could do.
    expect(result.stats.totalTime).toBeGreaterThanOrEqual(1500);
    expect(result.stats.ram.mbps).toBeLessThanOrEqual((MIB * 8) / 1e6 + 0.01);
  });

  it('cancel leaves the source running, unthrottled, with its dirty log off; the destination never runs', async () => {
    const clock = new ManualClock();
    const { source, destination } = pair(clock, 20_000, 'uniform');
    const result = await runSimulatedMigration({
      source,
      destination,
      clock,
      bytesPerSecond: 4 * MIB,
      migration: { autoConverge: true },
      onStart: (migration) => clock.createTimer(() => migration.cancel()).arm(3_000_000_000),
    });
    expect(result.stats.status).toBe('cancelled');
    expect(result.sourceError).toBeInstanceOf(MigrationCancelledError);
    expect(result.incomingError).toBeInstanceOf(MigrationCancelledError);
    expect(source.running).toBe(true);
    expect(source.cpuThrottlePercentage).toBe(0);
    expect(source.memory.dirtyLogging).toBe(false);
    expect(destination.running).toBe(false);
  });
});

describe('multifd', () => {
  it('sends pages over several channels and the destination gets them all, in order per page', async () => {
    const clock = new ManualClock();
    const { source, destination } = pair(clock, 2000, 'hot-set');
    const result = await runSimulatedMigration({ source, destination, clock, bytesPerSecond: 4 * MIB, multifd: 3, migration: { xbzrle: true, downtimeLimitMs: 30 } });
    expect(result.sourceError).toBeUndefined();
    expect(result.stats.status).toBe('completed');
    expect(result.stats.ram.iterations).toBeGreaterThan(1);
    expect(result.incoming!.pages.normal + result.incoming!.pages.zero + result.incoming!.pages.xbzrle).toBe(result.stats.ram.normal + result.stats.ram.duplicate + (result.stats.xbzrleCache?.pages ?? 0));
    expect(firstDifferentPage(source.memory, destination.memory)).toBe(-1);
    expect(destination.saveDevices()).toEqual(source.saveDevices());
  });

  it('a destination without multifd refuses a multifd stream', async () => {
    const clock = new ManualClock();
    const { source, destination } = pair(clock, 0);
    const result = await runSimulatedMigration({ source, destination, clock, bytesPerSecond: 4 * MIB, multifd: 2, incoming: { multifd: undefined } });
    expect(result.stats.status).toBe('failed');
    expect(result.incomingError).toBeInstanceOf(MigrationIncompatibleError);
    expect((result.incomingError as MigrationIncompatibleError).mismatches.join()).toMatch(/multifd/);
    expect(result.stats.ram.normal + result.stats.ram.duplicate).toBe(0);
    expect(source.running).toBe(true);
  });
});
