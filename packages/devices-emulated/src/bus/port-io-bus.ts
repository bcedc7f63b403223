import { BusConflictError } from '@tsvirt/interfaces';
import type { AccessSize, BusDevice, BusRegistration, PioBus } from '@tsvirt/interfaces';
import { maskToSize } from './split-access.js';

const PORT_COUNT = 0x1_0000;

interface PortRange {
  readonly base: number;
  readonly length: number;
  readonly device: BusDevice;
  readonly name: string;
}

/**
 * The 64 Ki I/O port space: a table maps every port to the range that owns
 * it, so an access costs one lookup. Accesses that straddle two ranges (or a
 * range's end) are split into bytes; unclaimed bytes read 0xff.
 */
export class PortIoBus implements PioBus {
  /** Per port: index + 1 into `ranges`, 0 when unclaimed. */
  private readonly owner = new Uint32Array(PORT_COUNT);
  private readonly ranges: (PortRange | undefined)[] = [undefined];
  private readonly freeSlots: number[] = [];

  register(base: number, length: number, device: BusDevice, name: string): BusRegistration {
    if (!Number.isInteger(base) || !Number.isInteger(length) || base < 0 || length <= 0 || base + length > PORT_COUNT) {
      throw new RangeError(`I/O range ${name} at ${base}+${length} is outside the 16-bit port space`);
    }
    for (let port = base; port < base + length; port++) {
      const clash = this.ranges[this.owner[port]!];
      if (clash !== undefined) {
        throw new BusConflictError(`${name} at 0x${base.toString(16)}+0x${length.toString(16)} overlaps ${clash.name} at 0x${clash.base.toString(16)}`);
      }
    }
    const range: PortRange = { base, length, device, name };
    const slot = this.freeSlots.pop() ?? this.ranges.length;
    this.ranges[slot] = range;
    this.owner.fill(slot, base, base + length);
    let registered = true;
    return {
      base,
      length,
      unregister: () => {
        if (!registered) return;
        registered = false;
        this.owner.fill(0, base, base + length);
        this.ranges[slot] = undefined;
        this.freeSlots.push(slot);
      },
    };
  }

  /** The name of the range claiming `port`, for diagnostics. */
  nameAt(port: number): string | undefined {
    return this.ranges[this.owner[port & 0xffff]!]?.name;
  }

  read(port: number, size: AccessSize): number {
    port &= 0xffff;
    const range = this.ranges[this.owner[port]!];
    const last = port + size - 1;
    if (range !== undefined && last < range.base + range.length) {
      return maskToSize(range.device.read(port - range.base, size), size);
    }
    let value = 0;
    for (let i = 0; i < size; i++) {
      const at = port + i;
      const byteRange = at < PORT_COUNT ? this.ranges[this.owner[at]!] : undefined;
      const byte = byteRange === undefined ? 0xff : byteRange.device.read(at - byteRange.base, 1) & 0xff;
      value |= byte << (8 * i);
    }
    return value >>> 0;
  }

  write(port: number, size: AccessSize, value: number): void {
    port &= 0xffff;
    const range = this.ranges[this.owner[port]!];
    const last = port + size - 1;
    if (range !== undefined && last < range.base + range.length) {
      range.device.write(port - range.base, size, maskToSize(value, size));
      return;
    }
    for (let i = 0; i < size; i++) {
      const at = port + i;
      const byteRange = at < PORT_COUNT ? this.ranges[this.owner[at]!] : undefined;
      byteRange?.device.write(at - byteRange.base, 1, (value >>> (8 * i)) & 0xff);
    }
  }
}
