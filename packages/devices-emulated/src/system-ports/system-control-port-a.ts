import { StateReader, type AccessSize, type BusDevice, type Stateful } from '@tsvirt/interfaces';

/** Port of System Control Port A ("port 0x92"): fast A20 gate and fast CPU reset. */
export const SYSTEM_CONTROL_PORT_A_BASE = 0x92;
export const SYSTEM_CONTROL_PORT_A_LENGTH = 1;

export interface SystemControlPortAOptions {
  /** Bit 0 went from 0 to 1: the chipset pulses the CPU's INIT/reset line. */
  onReset?: () => void;
  /** Bit 1 changed: the A20 mask of the CPU follows it. */
  onA20Change?: (enabled: boolean) => void;
}

export interface SystemControlPortAState {
  version: 1;
  value: number;
}

/**
 * Port 0x92 as on PIIX/PS/2 machines. Bit 1 gates A20; writing bit 0 as 1
 * (from 0) requests a fast reset. Bit 0 is write-triggered and reads back as
 * 0 (as QEMU's port92 does), so a reset is not re-triggered by a
 * read-modify-write of the A20 bit.
 */
export class SystemControlPortA implements BusDevice, Stateful<SystemControlPortAState> {
  private value = 0;
  private readonly onReset: () => void;
  private readonly onA20Change: (enabled: boolean) => void;

  constructor(options: SystemControlPortAOptions = {}) {
    this.onReset = options.onReset ?? (() => {});
    this.onA20Change = options.onA20Change ?? (() => {});
  }

  /** Whether A20 is enabled through this port. */
  get a20(): boolean {
    return (this.value & 2) !== 0;
  }

  read(offset: number, size: AccessSize): number {
    if (offset !== 0 || size !== 1) return size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
    return this.value;
  }

  write(offset: number, size: AccessSize, value: number): void {
    if (offset !== 0 || size !== 1) return;
    const old = this.value;
    this.value = value & 0xfe;
    if ((old ^ this.value) & 2) this.onA20Change((this.value & 2) !== 0);
    // Bit 0 always reads as 0, so every write of 1 is a 0→1 transition.
    if (value & 1) this.onReset();
  }

  /** A machine reset: A20 off. */
  reset(): void {
    this.value = 0;
  }

  save(): SystemControlPortAState {
    return { version: 1, value: this.value };
  }

  restore(state: unknown): void {
    const reader = StateReader.open(state, 'port92', 1);
    const value = reader.uint('value', 0xff);
    if (value & 1) reader.fail('value', 'bit 0 is write-only and never saved as 1');
    this.value = value;
  }
}
