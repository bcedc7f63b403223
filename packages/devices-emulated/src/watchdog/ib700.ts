import { StateReader } from '@tsvirt/interfaces';
import type { AccessSize, BusDevice, Clock, Timer } from '@tsvirt/interfaces';

/** The iBASE IB700's ports: 0x441–0x442 stop the timer, 0x443–0x444 start it (QEMU's `ib700`). */
export const IB700_BASE = 0x441;
export const IB700_LENGTH = 4;

/** Seconds for the value written to the start port's low nibble (the board's table, as Linux's ib700wdt uses it). */
const TIMEOUT_SECONDS = [30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0] as const;
const NANOSECONDS_PER_SECOND = 1_000_000_000;

export interface Ib700Options {
  readonly clock: Clock;
  /** The timer ran out: the machine takes the configured action (QEMU's `-watchdog-action`). */
  readonly onExpire: () => void;
}

export interface Ib700State {
  readonly version: 1;
  /** When the timer runs out (clock ns), or -1 when stopped. */
  readonly deadline: number;
}

/**
 * The IB700 watchdog on the ISA bus. A write to the start ports (re)arms it
 * for the time its low nibble selects; a write to the stop ports stops it;
 * when it runs out the machine acts once, and the timer stays stopped until
 * the guest starts it again. Reads are of no port the board decodes: all ones.
 */
export class Ib700 implements BusDevice {
  private readonly timer: Timer;

  constructor(private readonly options: Ib700Options) {
    this.timer = options.clock.createTimer(() => options.onExpire());
  }

  read(_offset: number, size: AccessSize): number {
    return size === 4 ? 0xffff_ffff : (1 << (8 * size)) - 1;
  }

  /** Each byte of a wider write reaches the port it covers (a word at 0x442 stops, then starts). */
  write(offset: number, size: AccessSize, value: number): void {
    for (let i = 0; i < size && offset + i < IB700_LENGTH; i++) {
      const byte = (value >>> (8 * i)) & 0xff;
      if (offset + i < 2) this.timer.cancel();
      else this.timer.arm(this.options.clock.now() + TIMEOUT_SECONDS[byte & 0xf]! * NANOSECONDS_PER_SECOND);
    }
  }

  /** Machine reset stops the timer. */
  reset(): void {
    this.timer.cancel();
  }

  save(): Ib700State {
    return { version: 1, deadline: this.timer.deadline ?? -1 };
  }

  restore(state: unknown): void {
    const reader = StateReader.open(state, 'ib700', 1);
    const deadline = reader.number('deadline');
    if (deadline !== -1 && deadline < 0) reader.fail('deadline', 'neither -1 nor a time');
    if (deadline === -1) this.timer.cancel();
    else this.timer.arm(deadline);
  }
}
