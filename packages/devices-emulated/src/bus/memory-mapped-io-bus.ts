import { BusConflictError } from '@tsvirt/interfaces';
import type { AccessSize, BusDevice, BusRegistration, GuestAddress, MmioBus } from '@tsvirt/interfaces';
import { maskToSize } from './split-access.js';

interface MmioRange {
  readonly base: number;
  readonly end: number;
  readonly device: BusDevice;
  readonly name: string;
}

/**
 * The physical MMIO space: ranges kept sorted by base and found by binary
 * search, with the last range hit remembered (devices are accessed in bursts).
 * Accesses straddling a range's end are split into bytes; unclaimed bytes read 0xff.
 */
export class MemoryMappedIoBus implements MmioBus {
  private ranges: MmioRange[] = [];
  private lastHit: MmioRange | undefined;

  register(base: GuestAddress, length: number, device: BusDevice, name: string): BusRegistration {
    if (!Number.isSafeInteger(base) || !Number.isSafeInteger(length) || base < 0 || length <= 0 || !Number.isSafeInteger(base + length)) {
      throw new RangeError(`MMIO range ${name} at ${base}+${length} is not a valid range`);
    }
    const range: MmioRange = { base, end: base + length, device, name };
    const index = this.insertionPoint(base);
    const before = this.ranges[index - 1];
    const after = this.ranges[index];
    const clash = before !== undefined && before.end > base ? before : after !== undefined && after.base < range.end ? after : undefined;
    if (clash !== undefined) {
      throw new BusConflictError(`${name} at 0x${base.toString(16)}+0x${length.toString(16)} overlaps ${clash.name} at 0x${clash.base.toString(16)}`);
    }
    // Copy-on-register keeps the access path free of concurrent-modification concerns.
    this.ranges = [...this.ranges.slice(0, index), range, ...this.ranges.slice(index)];
    let registered = true;
    return {
      base,
      length,
      unregister: () => {
        if (!registered) return;
        registered = false;
        this.ranges = this.ranges.filter((r) => r !== range);
        if (this.lastHit === range) this.lastHit = undefined;
      },
    };
  }

  claims(address: GuestAddress): boolean {
    return this.find(address) !== undefined;
  }

  read(address: GuestAddress, size: AccessSize): number {
    const range = this.find(address);
    if (range !== undefined && address + size <= range.end) {
      return maskToSize(range.device.read(address - range.base, size), size);
    }
    let value = 0;
    for (let i = 0; i < size; i++) {
      const byteRange = this.find(address + i);
      const byte = byteRange === undefined ? 0xff : byteRange.device.read(address + i - byteRange.base, 1) & 0xff;
      value |= byte << (8 * i);
    }
    return value >>> 0;
  }

  write(address: GuestAddress, size: AccessSize, value: number): void {
    const range = this.find(address);
    if (range !== undefined && address + size <= range.end) {
      range.device.write(address - range.base, size, maskToSize(value, size));
      return;
    }
    for (let i = 0; i < size; i++) {
      const byteRange = this.find(address + i);
      byteRange?.device.write(address + i - byteRange.base, 1, (value >>> (8 * i)) & 0xff);
    }
  }

  private find(address: number): MmioRange | undefined {
    const cached = this.lastHit;
    if (cached !== undefined && address >= cached.base && address < cached.end) return cached;
    const ranges = this.ranges;
    let low = 0;
    let high = ranges.length - 1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const range = ranges[middle]!;
      if (address < range.base) high = middle - 1;
      else if (address >= range.end) low = middle + 1;
      else {
        this.lastHit = range;
        return range;
      }
    }
    return undefined;
  }

  /** Index of the first range whose base is above `base`. */
  private insertionPoint(base: number): number {
    let low = 0;
    let high = this.ranges.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.ranges[middle]!.base <= base) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}
