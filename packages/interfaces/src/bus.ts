import type { GuestAddress } from './address.js';

/** Width of one bus access in bytes. 8-byte MMIO accesses are split by the bus into two 4-byte ones, low half first. */
export type AccessSize = 1 | 2 | 4;

/**
 * A device as a bus sees it: register reads and writes at offsets inside the
 * range it was registered for. A device knows nothing of where it sits.
 *
 * Edge cases: `offset + size` never exceeds the registered length (the bus
 * splits or refuses such accesses); values are unsigned and already masked to
 * `size` bytes; a device that ignores a width returns all-ones for reads of it.
 */
export interface BusDevice {
  read(offset: number, size: AccessSize): number;
  write(offset: number, size: AccessSize, value: number): void;
}

/** A registered range; `unregister` frees it (hot-unplug, BAR moves). */
export interface BusRegistration {
  readonly base: number;
  readonly length: number;
  unregister(): void;
}

/**
 * The 16-bit I/O port space. Unclaimed ports read as all-ones and ignore
 * writes, as on a PC. Registering a range that overlaps another throws
 * {@link BusConflictError}.
 *
 * @example
 * ```ts
 * // given: pio (an empty PioBus)
 * const scratch = { value: 0, read: () => scratch.value, write: (_o: number, _s: number, v: number) => { scratch.value = v; } };
 * pio.register(0x80, 1, scratch, 'post');
 * pio.write(0x80, 1, 0x42);
 * assert.equal(pio.read(0x80, 1), 0x42);
 * assert.equal(pio.read(0x81, 2), 0xffff);      // nobody there: all-ones
 * assert.throws(() => pio.register(0x80, 1, scratch, 'again'), BusConflictError);
 * ```
 */
export interface PioBus {
  register(base: number, length: number, device: BusDevice, name: string): BusRegistration;
  read(port: number, size: AccessSize): number;
  write(port: number, size: AccessSize, value: number): void;
}

/**
 * The physical address space outside RAM. Reads of unclaimed addresses return
 * all-ones; writes to them are dropped.
 *
 * @example
 * ```ts
 * // given: mmio (an empty MmioBus)
 * const registers = new Uint32Array(4);
 * mmio.register(guestAddress(0xfed0_0000), 16, { read: (offset) => registers[offset >> 2]!, write: (offset, _size, value) => { registers[offset >> 2] = value; } }, 'hpet');
 * mmio.write(guestAddress(0xfed0_0004), 4, 7);
 * assert.equal(mmio.read(guestAddress(0xfed0_0004), 4), 7);
 * assert.equal(mmio.claims(guestAddress(0xfed0_0010)), false);
 * assert.equal(mmio.read(guestAddress(0xfed0_0010), 4), 0xffffffff);   // unclaimed: all-ones
 * ```
 */
export interface MmioBus {
  register(base: GuestAddress, length: number, device: BusDevice, name: string): BusRegistration;
  /** True when some device claims `address`. */
  claims(address: GuestAddress): boolean;
  read(address: GuestAddress, size: AccessSize): number;
  write(address: GuestAddress, size: AccessSize, value: number): void;
}
