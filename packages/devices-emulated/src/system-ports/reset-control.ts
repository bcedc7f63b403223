import { StateReader, type AccessSize, type BusDevice, type Stateful } from '@tsvirt/interfaces';

/**
 * The PIIX3 Reset Control Register at port 0xCF9. It shares the dword at
 * 0xCF8 with PCI CONFIG_ADDRESS: only byte accesses to 0xCF9 reach it, so the
 * machine routes those here and dword accesses at 0xCF8 to the PCI host.
 */
export const RESET_CONTROL_BASE = 0xcf9;
export const RESET_CONTROL_LENGTH = 1;

export type ResetKind = 'soft' | 'hard' | 'full';

export interface ResetControlOptions {
  /** Bit 2 (RST_CPU) was written as 1: reset the machine, `kind` as bits 1 and 3 select. */
  onReset?: (kind: ResetKind) => void;
}

export interface ResetControlState {
  version: 1;
  value: number;
}

/**
 * RCR bits: 1 = SRST (hard reset when set), 2 = RST_CPU (writing 1 resets),
 * 3 = FULL_RST (full power cycle). Bits 1 and 3 are read/write; bit 2 acts
 * on writes and reads as 0, as in QEMU's PIIX.
 */
export class ResetControl implements BusDevice, Stateful<ResetControlState> {
  private value = 0;
  private readonly onReset: (kind: ResetKind) => void;

  constructor(options: ResetControlOptions = {}) {
    this.onReset = options.onReset ?? (() => {});
  }

  read(offset: number, size: AccessSize): number {
    if (offset !== 0 || size !== 1) return size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
    return this.value;
  }

  write(offset: number, size: AccessSize, value: number): void {
    if (offset !== 0 || size !== 1) return;
    this.value = value & 0x0a;
    if (value & 4) this.onReset(value & 8 ? 'full' : value & 2 ? 'hard' : 'soft');
  }

  reset(): void {
    this.value = 0;
  }

  save(): ResetControlState {
    return { version: 1, value: this.value };
  }

  restore(state: unknown): void {
    const reader = StateReader.open(state, 'resetControl', 1);
    const value = reader.uint('value', 0xff);
    if (value & ~0x0a) reader.fail('value', 'only bits 1 and 3 are stored');
    this.value = value;
  }
}
