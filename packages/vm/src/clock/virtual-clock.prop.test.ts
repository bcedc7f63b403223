import { fc, test } from '@fast-check/vitest';
import { ManualClock } from '@tsvirt/interfaces/testing';
import { describe, expect, it } from 'vitest';
import { VirtualClock } from './virtual-clock.js';

type Step = { kind: 'arm'; timer: number; delay: number } | { kind: 'cancel'; timer: number } | { kind: 'advance'; by: number };

const steps = fc.array(
  fc.oneof(
    fc.record({ kind: fc.constant('arm' as const), timer: fc.integer({ min: 0, max: 7 }), delay: fc.integer({ min: 0, max: 50 }) }),
    fc.record({ kind: fc.constant('cancel' as const), timer: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant('advance' as const), by: fc.integer({ min: 0, max: 40 }) }),
  ),
  { maxLength: 80 },
);

/** Runs `script` on a clock and returns the firing log: "timer@time". */
function replay(clock: { now(): number; createTimer(callback: () => void): { arm(d: number): void; cancel(): void } }, advance: (to: number) => void, script: Step[]): string[] {
  const log: string[] = [];
  const timers = Array.from({ length: 8 }, (_, index) => clock.createTimer(() => log.push(`${index}@${clock.now()}`)));
  let now = 0;
  for (const step of script) {
    if (step.kind === 'arm') timers[step.timer]!.arm(now + step.delay);
    else if (step.kind === 'cancel') timers[step.timer]!.cancel();
    else {
      now += step.by;
      advance(now);
    }
  }
  return log;
}

describe('VirtualClock', () => {
  // ManualClock (a linear scan) is the model for the heap.
  test.prop([steps], { numRuns: 300 })('fires timers in the same order and at the same times as the simple model', (script) => {
    const model = new ManualClock();
    const clock = new VirtualClock({ mode: 'deterministic' });
    expect(replay(clock, (to) => clock.advanceTo(to), script)).toEqual(replay(model, (to) => model.advanceTo(to), script));
  });

  it('stands still while paused in real-time mode and follows the host while running', () => {
    let host = 1_000;
    const clock = new VirtualClock({ mode: 'realtime', hostNanoseconds: () => host });
    expect(clock.now()).toBe(0);
    clock.resume();
    host += 500;
    expect(clock.now()).toBe(500);
    clock.pause();
    host += 10_000;
    expect(clock.now()).toBe(500);
    clock.resume();
    host += 100;
    expect(clock.now()).toBe(600);
    const fired: number[] = [];
    clock.createTimer(() => fired.push(clock.now())).arm(650);
    expect(clock.runDue()).toBe(0);
    host += 60;
    expect(clock.runDue()).toBe(1);
    expect(fired).toEqual([660]);
    expect(() => clock.advanceTo(1000)).toThrow(/deterministic/);
  });

  it('deterministic time follows executed instructions between steps, and timer callbacks see their deadline', () => {
    let executed = 0;
    const clock = new VirtualClock({ mode: 'deterministic', executedNanoseconds: () => executed });
    const seen: number[] = [];
    const timer = clock.createTimer(() => {
      seen.push(clock.now());
      if (seen.length < 3) timer.arm(clock.now() + 100);
    });
    timer.arm(100);
    executed = 250;
    expect(clock.now()).toBe(250);
    clock.advanceTo(250);
    expect(seen).toEqual([100, 200]);
    executed = 260;
    expect(clock.now()).toBe(260);
    // Never behind the last step, even if the counter is.
    executed = 0;
    expect(clock.now()).toBe(250);
  });

  it('real time: the first clock read at or past the kick bound calls onKick, once', () => {
    let host = 0;
    let kicks = 0;
    const clock = new VirtualClock({ mode: 'realtime', hostNanoseconds: () => host, onKick: () => kicks++ });
    clock.resume();
    clock.kickAt(1_000);
    host = 999;
    clock.now();
    expect(kicks).toBe(0);
    host = 1_000;
    clock.now();
    clock.now();
    expect(kicks).toBe(1);
    clock.kickAt(2_000);
    clock.kickAt(Number.POSITIVE_INFINITY);
    host = 5_000;
    clock.now();
    expect(kicks).toBe(1);
  });

  it('real time: runDue returns even when a timer keeps re-arming itself just ahead of the host clock', () => {
    let host = 0;
    const clock = new VirtualClock({ mode: 'realtime', hostNanoseconds: () => (host += 100) });
    clock.resume();
    let fired = 0;
    // A guest's periodic timer of 1 ns: each callback re-arms it after the time it sees.
    const timer = clock.createTimer(() => {
      fired++;
      timer.arm(clock.now() + 1);
    });
    timer.arm(0);
    expect(clock.runDue()).toBe(1);
    expect(clock.runDue()).toBe(1);
    expect(fired).toBe(2);
  });

  it('saves and restores virtual time, rejecting bad state', () => {
    const clock = new VirtualClock({ mode: 'deterministic' });
    clock.advanceTo(12_345);
    const copy = new VirtualClock({ mode: 'deterministic' });
    copy.restore(JSON.parse(JSON.stringify(clock.save())));
    expect(copy.now()).toBe(12_345);
    expect(() => copy.restore({ version: 1, time: -1 })).toThrow(/clock.time/);
    expect(() => copy.advanceTo(1)).toThrow(RangeError);
  });
});
