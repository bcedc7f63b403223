import { StateReader, type Clock, type ClockMode, type Stateful, type Timer } from '@tsvirt/interfaces';

class HeapTimer implements Timer {
  deadline: number | undefined;
  /** Position in the clock's heap, -1 when not armed. */
  heapIndex = -1;
  /** Arming order, so equal deadlines fire first-armed first (deterministic replay). */
  sequence = 0;

  constructor(
    private readonly clock: VirtualClock,
    readonly callback: () => void,
  ) {}

  arm(deadline: number): void {
    if (!Number.isFinite(deadline)) throw new RangeError(`timer deadline must be finite, got ${deadline}`);
    this.clock.schedule(this, deadline);
  }

  cancel(): void {
    this.clock.unschedule(this);
  }
}

export interface VirtualClockOptions {
  readonly mode: ClockMode;
  /** The host's monotonic time in ns (real-time mode); injectable for tests. */
  readonly hostNanoseconds?: () => number;
  /**
   * Deterministic mode: how far the running vCPUs have got inside the
   * current slice (from their executed-instruction counts). Guest reads of
   * a counter (PIT, HPET, ACPI PM timer) then see time move with every
   * instruction, not in slice-sized steps that would skew a TSC calibration.
   */
  readonly executedNanoseconds?: () => number;
  /**
   * Real-time mode: called by the first `now()` that finds the time at or
   * past the bound set with `kickAt`. The run loop uses it to end a slice
   * that has outlived its share of host time as soon as the guest looks at a
   * clock (RDTSC, a timer or counter register), whatever it executes.
   */
  readonly onKick?: () => void;
}

export interface VirtualClockState {
  readonly version: 1;
  readonly time: number;
}

/**
 * The machine's virtual time, in nanoseconds since it was created. In
 * real-time mode it follows the host's monotonic clock while running and
 * stands still while paused; in deterministic mode it moves only when the
 * run loop calls `advanceTo` (from executed instructions, or to the next
 * deadline when every vCPU is idle), so a run replays exactly.
 *
 * Timers live in a binary heap: arming, cancelling and finding the next
 * deadline cost O(log n) and allocate nothing. Callbacks run only from
 * `runDue`/`advanceTo`, called by the run loop between slices — never inside
 * a device access.
 */
export class VirtualClock implements Clock, Stateful<VirtualClockState> {
  readonly mode: ClockMode;
  private readonly hostNanoseconds: () => number;
  private readonly heap: HeapTimer[] = [];
  private sequence = 0;
  /** Virtual time when last paused (or the deterministic time). */
  private time = 0;
  /** Host time minus virtual time while running in real-time mode. */
  private hostOffset = 0;
  private running = false;
  private readonly executedNanoseconds: (() => number) | undefined;
  private readonly onKick: (() => void) | undefined;
  private kickTime = Number.POSITIVE_INFINITY;
  /** Timer callbacks see their own deadline as the time, so periodic timers re-arm without drift. */
  private firing = false;

  constructor(options: VirtualClockOptions) {
    this.mode = options.mode;
    // performance.now() is monotonic with sub-microsecond resolution, allocates nothing (unlike hrtime.bigint())
    // and exists in browsers too.
    this.hostNanoseconds = options.hostNanoseconds ?? (() => performance.now() * 1e6);
    this.executedNanoseconds = options.executedNanoseconds;
    this.onKick = options.onKick;
  }

  now(): number {
    if (this.mode === 'realtime') {
      if (!this.running) return this.time;
      const time = this.hostNanoseconds() - this.hostOffset;
      if (time >= this.kickTime) {
        this.kickTime = Number.POSITIVE_INFINITY;
        this.onKick?.();
      }
      return time;
    }
    if (this.firing || this.executedNanoseconds === undefined) return this.time;
    return Math.max(this.time, this.executedNanoseconds());
  }

  /** Real-time mode: the next `now()` at or past `time` calls `onKick` (once); `Infinity` disarms it. */
  kickAt(time: number): void {
    this.kickTime = time;
  }

  createTimer(callback: () => void): Timer {
    return new HeapTimer(this, callback);
  }

  /** Starts real time flowing (no effect in deterministic mode). */
  resume(): void {
    if (this.running) return;
    this.running = true;
    this.hostOffset = this.hostNanoseconds() - this.time;
  }

  /** Freezes virtual time (a paused VM, a migration's switchover). */
  pause(): void {
    if (!this.running) return;
    this.time = this.now();
    this.running = false;
  }

  /** Deterministic mode: moves time to `target` (never back), firing due timers in order at their deadlines. */
  advanceTo(target: number): void {
    if (this.mode !== 'deterministic') throw new Error('advanceTo is for deterministic clocks; real-time clocks follow the host');
    if (target < this.time) throw new RangeError(`virtual time cannot go back (${target} < ${this.time})`);
    for (;;) {
      const next = this.heap[0];
      if (next === undefined || next.deadline! > target) break;
      this.time = Math.max(this.time, next.deadline!);
      this.fire(next);
    }
    this.time = target;
  }

  /**
   * Fires every timer whose deadline has passed (real-time mode, or
   * deterministic at the current time), in deadline order. "Passed" means by
   * the time of the call: a timer re-armed for later than that waits for the
   * next call, so a guest's tiny timer period cannot keep this from returning.
   */
  runDue(): number {
    const now = this.now();
    let fired = 0;
    for (;;) {
      const next = this.heap[0];
      if (next === undefined || next.deadline! > now) return fired;
      this.fire(next);
      fired++;
    }
  }

  /** The earliest armed deadline, or `undefined`. */
  nextDeadline(): number | undefined {
    return this.heap[0]?.deadline;
  }

  save(): VirtualClockState {
    return { version: 1, time: this.now() };
  }

  /** Restores virtual time; timers belong to the devices, which re-arm them when they restore. */
  restore(state: unknown): void {
    const time = StateReader.open(state, 'clock', 1).uint('time', Number.MAX_SAFE_INTEGER);
    this.time = time;
    if (this.running) this.hostOffset = this.hostNanoseconds() - time;
  }

  /** @internal */
  schedule(timer: HeapTimer, deadline: number): void {
    timer.deadline = deadline;
    timer.sequence = this.sequence++;
    if (timer.heapIndex < 0) {
      timer.heapIndex = this.heap.length;
      this.heap.push(timer);
    }
    this.siftUp(timer.heapIndex);
    this.siftDown(timer.heapIndex);
  }

  /** @internal */
  unschedule(timer: HeapTimer): void {
    timer.deadline = undefined;
    const index = timer.heapIndex;
    if (index < 0) return;
    timer.heapIndex = -1;
    const last = this.heap.pop()!;
    if (last === timer) return;
    this.heap[index] = last;
    last.heapIndex = index;
    this.siftUp(index);
    this.siftDown(index);
  }

  private fire(timer: HeapTimer): void {
    this.unschedule(timer);
    const nested = this.firing;
    this.firing = this.mode === 'deterministic';
    try {
      timer.callback();
    } finally {
      this.firing = nested;
    }
  }

  private before(a: HeapTimer, b: HeapTimer): boolean {
    return a.deadline! < b.deadline! || (a.deadline === b.deadline && a.sequence < b.sequence);
  }

  private siftUp(index: number): void {
    const heap = this.heap;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!this.before(heap[index]!, heap[parent]!)) break;
      this.swap(index, parent);
      index = parent;
    }
  }

  private siftDown(index: number): void {
    const heap = this.heap;
    for (;;) {
      const left = 2 * index + 1;
      const right = left + 1;
      let smallest = index;
      if (left < heap.length && this.before(heap[left]!, heap[smallest]!)) smallest = left;
      if (right < heap.length && this.before(heap[right]!, heap[smallest]!)) smallest = right;
      if (smallest === index) return;
      this.swap(index, smallest);
      index = smallest;
    }
  }

  private swap(a: number, b: number): void {
    const heap = this.heap;
    const first = heap[a]!;
    const second = heap[b]!;
    heap[a] = second;
    heap[b] = first;
    first.heapIndex = b;
    second.heapIndex = a;
  }
}
