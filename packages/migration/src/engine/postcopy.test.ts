import { describe, expect, it } from 'vitest';
import { ManualClock } from '@tsvirt/interfaces/testing';
import { FakeVm, firstDifferentPage, runSimulatedMigration } from '../testing/index.js';
import type { MigrationEvent } from './stats.js';

const MIB = 1024 * 1024;

function busyPair(clock: ManualClock, writesPerSecond = 20_000) {
  const workload = { writesPerSecond, pattern: 'uniform' } as const;
  const source = new FakeVm({ memorySize: 2 * MIB, clock, workload, seed: 21, running: true });
  source.populate(5);
  const destination = new FakeVm({ memorySize: 2 * MIB, clock, workload, seed: 77 });
  return { source, destination };
}

/** The destination ran on from the switchover; replaying the same writes on the (frozen) source must give the same machine. */
function expectSameMachine(source: FakeVm, destination: FakeVm): void {
  expect(destination.writes).toBeGreaterThanOrEqual(source.writes);
  const ahead = destination.writes - source.writes;
  expect(source.step(ahead)).toBe(ahead);
  expect(firstDifferentPage(source.memory, destination.memory)).toBe(-1);
  // The workload's position; its sub-write time carry depends on when each side ran.
  const cpu = (vm: FakeVm) => {
    const { writes, random } = (vm.saveDevices() as { cpu: { writes: number; random: number } }).cpu;
    return { writes, random };
  };
  expect(cpu(destination)).toEqual(cpu(source));
}

describe('post-copy', () => {
  it('hands a busy guest over after the bulk pass; the destination runs at once and fetches the rest', async () => {
    const clock = new ManualClock();
    const { source, destination } = busyPair(clock);
    const statuses: string[] = [];
    const result = await runSimulatedMigration({
      source,
      destination,
      clock,
      bytesPerSecond: 4 * MIB,
      migration: { postcopy: { afterPasses: 1 }, observer: (event: MigrationEvent) => event.type === 'status' && statuses.push(event.status) },
    });
    expect(result.sourceError).toBeUndefined();
    expect(result.stats.status).toBe('completed');
    expect(result.stats.switchoverReason).toBe('postcopy');
    expect(statuses).toContain('postcopy-active');
    expect(result.incoming?.postcopy).toBe(true);
    expect(result.incoming?.pageRequests).toBeGreaterThan(0);
    expect(destination.faults).toBeGreaterThan(0);
    expect(destination.running).toBe(true);
    expect(source.running).toBe(false);
    // The pause lasted only for the device state and the page list, not the pages.
    expect(result.stats.downtime!).toBeLessThan(50);
    expectSameMachine(source, destination);
  });

  it('recovers when the connection drops during post-copy', async () => {
    const clock = new ManualClock();
    const { source, destination } = busyPair(clock);
    // The bulk pass takes about 0.4 s at 4 MiB/s; the drops hit during post-copy.
    const result = await runSimulatedMigration({
      source,
      destination,
      clock,
      bytesPerSecond: 4 * MIB,
      migration: { postcopy: { afterPasses: 1 } },
      dropConnectionAt: [480_000_000, 520_000_000],
    });
    expect(result.incomingError).toBeUndefined();
    expect(result.stats.status).toBe('completed');
    expect(result.incoming!.recoveries).toBeGreaterThanOrEqual(1);
    expectSameMachine(source, destination);
  });

  it('a drop in post-copy without a way to reconnect fails on both sides, and the source does not resume', async () => {
    const clock = new ManualClock();
    const { source, destination } = busyPair(clock);
    const result = await runSimulatedMigration({
      source,
      destination,
      clock,
      bytesPerSecond: 4 * MIB,
      migration: { postcopy: { afterPasses: 1, reconnect: async () => Promise.reject(new Error('no route to host')) } },
      incoming: { reconnect: async () => Promise.reject(new Error('no route to host')) },
      dropConnectionAt: [480_000_000],
    });
    expect(result.stats.status).toBe('failed');
    expect(result.incomingError).toBeDefined();
    // The machine already ran on the destination: running the source again would fork it.
    expect(source.running).toBe(false);
    // And the destination, which cannot get its missing pages any more, is paused too.
    expect(destination.running).toBe(false);
  });
});
