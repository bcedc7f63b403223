import type { Clock, Timer } from '@tsvirt/interfaces';

/** Host time in nanoseconds with `setTimeout` timers: a real-time Clock for benchmarks and demos. */
export class HostClock implements Clock {
  private readonly origin = performance.now();

  now(): number {
    return Math.round((performance.now() - this.origin) * 1e6);
  }

  createTimer(callback: () => void): Timer {
    let handle: ReturnType<typeof setTimeout> | undefined;
    const now = (): number => this.now();
    const timer = {
      deadline: undefined as number | undefined,
      arm(deadline: number): void {
        if (handle !== undefined) clearTimeout(handle);
        timer.deadline = deadline;
        handle = setTimeout(
          () => {
            handle = undefined;
            timer.deadline = undefined;
            callback();
          },
          Math.max(0, (deadline - now()) / 1e6),
        );
      },
      cancel(): void {
        if (handle !== undefined) clearTimeout(handle);
        handle = undefined;
        timer.deadline = undefined;
      },
    };
    return timer;
  }
}
