import type { GuestAddress } from '../address.js';
import type { AccessSize, BusDevice, BusRegistration, MmioBus, PioBus } from '../bus.js';
import { BusConflictError } from '../errors.js';

interface Entry {
  base: number;
  length: number;
  device: BusDevice;
  name: string;
}

/**
 * A small, linear-search bus implementing both PioBus and MmioBus, for tests
 * and examples. Accesses that straddle the end of a device's range are split
 * into bytes. Unclaimed reads are all-ones.
 */
export class MapBus implements PioBus, MmioBus {
  private readonly entries: Entry[] = [];

  register(base: number, length: number, device: BusDevice, name: string): BusRegistration {
    if (!Number.isSafeInteger(base) || !Number.isSafeInteger(length) || base < 0 || length <= 0) {
      throw new RangeError(`bus range ${name} at ${base}+${length} is not a valid range`);
    }
    const clash = this.entries.find((entry) => base < entry.base + entry.length && entry.base < base + length);
    if (clash !== undefined) {
      throw new BusConflictError(`${name} at 0x${base.toString(16)}+0x${length.toString(16)} overlaps ${clash.name} at 0x${clash.base.toString(16)}`);
    }
    const entry: Entry = { base, length, device, name };
    this.entries.push(entry);
    return {
      base,
      length,
      unregister: () => {
        const index = this.entries.indexOf(entry);
        if (index >= 0) this.entries.splice(index, 1);
      },
    };
  }

  claims(address: GuestAddress | number): boolean {
    return this.find(address) !== undefined;
  }

  read(address: number, size: AccessSize): number {
    const entry = this.find(address);
    if (entry !== undefined && address + size <= entry.base + entry.length) return entry.device.read(address - entry.base, size) >>> 0;
    let value = 0;
    for (let i = 0; i < size; i++) {
      const byteEntry = this.find(address + i);
      const byte = byteEntry === undefined ? 0xff : byteEntry.device.read(address + i - byteEntry.base, 1) & 0xff;
      value |= byte << (8 * i);
    }
    return value >>> 0;
  }

  write(address: number, size: AccessSize, value: number): void {
    const entry = this.find(address);
    if (entry !== undefined && address + size <= entry.base + entry.length) {
      entry.device.write(address - entry.base, size, size === 4 ? value >>> 0 : value & ((1 << (8 * size)) - 1));
      return;
    }
    for (let i = 0; i < size; i++) {
      const byteEntry = this.find(address + i);
      byteEntry?.device.write(address + i - byteEntry.base, 1, (value >>> (8 * i)) & 0xff);
    }
  }

  private find(address: number): Entry | undefined {
    return this.entries.find((entry) => address >= entry.base && address < entry.base + entry.length);
  }
}
