import type { AccessSize, BusDevice } from '@tsvirt/interfaces';

/** QEMU's isa-debug-exit default port and width. */
export const DEBUG_EXIT_BASE = 0xf4;
export const DEBUG_EXIT_LENGTH = 1;

export interface DebugExitOptions {
  /** The guest asked to stop with `status = (value << 1) | 1` (a process exit status keeps its low 8 bits). */
  onExit?: (status: number) => void;
}

/**
 * QEMU's isa-debug-exit: a write of `value` ends the VM with exit status
 * `(value << 1) | 1`, so a test suite's "success" can never look like a clean
 * exit 0. Stateless; reads return all-ones.
 */
export class DebugExit implements BusDevice {
  private readonly onExit: (status: number) => void;

  constructor(options: DebugExitOptions = {}) {
    this.onExit = options.onExit ?? (() => {});
  }

  read(_offset: number, size: AccessSize): number {
    return size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
  }

  write(offset: number, size: AccessSize, value: number): void {
    // Accesses wider than the port (size 2 or 4 at a 1-byte port) still carry the value in their low bytes.
    if (offset !== 0) return;
    const masked = size === 4 ? value >>> 0 : value & ((1 << (8 * size)) - 1);
    this.onExit(masked * 2 + 1);
  }
}
