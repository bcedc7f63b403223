import { expect } from 'vitest';
import { test, fc } from '@fast-check/vitest';
import { ManualClock } from '@tsvirt/interfaces/testing';
import { FakeVm, firstDifferentPage, runSimulatedMigration, type DirtyPattern } from '../testing/index.js';
import type { PostcopyGuard } from '../vm.js';

/** A destination whose "guest" also asks for pages in an order the test chooses. */
class RequestingVm extends FakeVm {
  guardSeen: PostcopyGuard | undefined;

  override beginPostcopy(guard: PostcopyGuard): void {
    this.guardSeen = guard;
    super.beginPostcopy(guard);
  }
}

test.prop(
  [
    fc.integer({ min: 64, max: 384 }), // pages
    fc.constantFrom<DirtyPattern>('uniform', 'hot-set', 'sequential'),
    fc.integer({ min: 0, max: 30_000 }), // writes per second
    fc.array(fc.tuple(fc.integer({ min: 1, max: 400 }), fc.nat()), { maxLength: 40 }), // (ms after hand-over, page) requests
    fc.array(fc.integer({ min: 1, max: 600 }), { maxLength: 2 }), // connection drops, ms after hand-over
    fc.integer({ min: 1, max: 1000 }),
  ],
  { numRuns: 30 },
)('post-copy completes with identical memory for any order of page requests, across dropped connections', async (pages, pattern, writesPerSecond, requests, drops, seed) => {
  const clock = new ManualClock();
  const workload = { writesPerSecond, pattern };
  const source = new FakeVm({ memorySize: pages * 4096, clock, workload, seed, running: true });
  source.populate(seed + 1, 0.7);
  const destination = new RequestingVm({ memorySize: pages * 4096, clock, workload, seed: seed + 2 });
  const bytesPerSecond = 1024 * 1024;
  // The bulk pass ends near (pages × 4 KiB) / bandwidth; schedule requests and drops after it.
  const handOver = Math.ceil((pages * 4096 * 1e9) / bytesPerSecond);
  for (const [afterMs, page] of requests) {
    clock.createTimer(() => destination.guardSeen?.fault(page % pages)).arm(handOver + afterMs * 1e6);
  }
  const result = await runSimulatedMigration({
    source,
    destination,
    clock,
    bytesPerSecond,
    // A 1 ms limit never fits the device state: every run goes post-copy after the bulk pass.
    migration: { postcopy: { afterPasses: 1 }, downtimeLimitMs: 1 },
    dropConnectionAt: drops.map((ms) => handOver + ms * 1e6),
  });
  expect(result.incomingError).toBeUndefined();
  expect(result.stats.status).toBe('completed');
  expect(result.stats.switchoverReason).toBe('postcopy');
  expect(destination.running).toBe(true);
  // The machine is the same: replay the destination's extra writes on the frozen source.
  const ahead = destination.writes - source.writes;
  expect(ahead).toBeGreaterThanOrEqual(0);
  expect(source.step(ahead)).toBe(ahead);
  expect(firstDifferentPage(source.memory, destination.memory)).toBe(-1);
});
