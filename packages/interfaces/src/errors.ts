/**
 * The root of every error tsvirt throws on purpose. `code` is stable and
 * machine-readable; the message is for people.
 */
export class TsvirtError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A guest-physical address that is not a non-negative integer below 2^53, or arithmetic on one that overflows. */
export class GuestAddressError extends TsvirtError {
  constructor(message: string) {
    super('GUEST_ADDRESS', message);
  }
}

/** Why a guest-memory access was refused. */
export type GuestMemoryErrorReason =
  /** The address or length is not a valid integer. */
  | 'invalid'
  /** The range runs past the end of the guest's address space. */
  | 'out-of-range'
  /** The range touches an address that is not RAM (an MMIO hole, say). */
  | 'not-ram';

/** A guest-memory access that cannot be served. Nothing was read or written. */
export class GuestMemoryError extends TsvirtError {
  readonly reason: GuestMemoryErrorReason;
  readonly address: number;
  readonly length: number;

  constructor(reason: GuestMemoryErrorReason, address: number, length: number, detail?: string) {
    super(
      `GUEST_MEMORY_${reason.toUpperCase().replace(/-/g, '_')}`,
      `guest memory access of ${length} byte(s) at 0x${Number.isFinite(address) ? address.toString(16) : String(address)} refused: ${detail ?? reason}`,
    );
    this.reason = reason;
    this.address = address;
    this.length = length;
  }
}

/** A device or bus range that overlaps one already registered. */
export class BusConflictError extends TsvirtError {
  constructor(message: string) {
    super('BUS_CONFLICT', message);
  }
}

/** Saved state that cannot be restored: wrong version, missing or malformed field. */
export class StateError extends TsvirtError {
  /** The dotted path of the offending field, e.g. `uart.fifo[3]`. */
  readonly path: string;

  constructor(path: string, message: string) {
    super('STATE_INVALID', `invalid saved state at ${path}: ${message}`);
    this.path = path;
  }
}

/** A block-device request outside the device or against a read-only device. */
export class BlockError extends TsvirtError {
  constructor(code: 'BLOCK_RANGE' | 'BLOCK_READ_ONLY' | 'BLOCK_IO' | 'BLOCK_CLOSED', message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
