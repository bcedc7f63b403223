import { describe, expect, it } from 'vitest';
import { BusConflictError, guestAddress } from '@tsvirt/interfaces';
import type { AccessSize, BusDevice } from '@tsvirt/interfaces';
import { MemoryMappedIoBus } from './memory-mapped-io-bus.js';
import { PortIoBus } from './port-io-bus.js';

function recorder(): BusDevice & { log: string[] } {
  const log: string[] = [];
  return {
    log,
    read: (offset: number, size: AccessSize) => {
      log.push(`r${offset}/${size}`);
      return 0x1234_5678;
    },
    write: (offset: number, size: AccessSize, value: number) => {
      log.push(`w${offset}/${size}=${value.toString(16)}`);
    },
  };
}

describe('PortIoBus', () => {
  it('reads all-ones from unclaimed ports, at every width', () => {
    const bus = new PortIoBus();
    expect(bus.read(0x80, 1)).toBe(0xff);
    expect(bus.read(0x80, 2)).toBe(0xffff);
    expect(bus.read(0x80, 4)).toBe(0xffff_ffff);
    expect(bus.read(0xffff, 4)).toBe(0xffff_ffff);
  });

  it('masks values to the access width before handing them to the device', () => {
    const bus = new PortIoBus();
    const device = recorder();
    bus.register(0x60, 4, device, 'dev');
    expect(bus.read(0x60, 1)).toBe(0x78);
    bus.write(0x60, 2, 0xabcd_ef01);
    expect(device.log).toEqual(['r0/1', 'w0/2=ef01']);
  });

  it('splits an access that runs past a device end into bytes', () => {
    const bus = new PortIoBus();
    const device = recorder();
    bus.register(0x3f8, 2, device, 'dev');
    expect(bus.read(0x3f9, 4)).toBe(0xffff_ff78);
    expect(device.log).toEqual(['r1/1']);
  });

  it('rejects overlapping ranges and ranges outside the port space', () => {
    const bus = new PortIoBus();
    bus.register(0x70, 2, recorder(), 'rtc');
    expect(() => bus.register(0x71, 1, recorder(), 'x')).toThrow(BusConflictError);
    expect(() => bus.register(0xffff, 2, recorder(), 'x')).toThrow(RangeError);
    expect(bus.nameAt(0x71)).toBe('rtc');
  });

  it('frees a range for reuse after unregister', () => {
    const bus = new PortIoBus();
    const registration = bus.register(0x70, 2, recorder(), 'rtc');
    registration.unregister();
    expect(bus.read(0x70, 1)).toBe(0xff);
    bus.register(0x70, 2, recorder(), 'rtc2');
    expect(bus.nameAt(0x70)).toBe('rtc2');
  });
});

describe('MemoryMappedIoBus', () => {
  it('finds the right device among many and reports claims', () => {
    const bus = new MemoryMappedIoBus();
    const devices = Array.from({ length: 20 }, () => recorder());
    devices.forEach((device, i) => bus.register(guestAddress(0xfe00_0000 + i * 0x1000), 0x100, device, `d${i}`));
    bus.read(guestAddress(0xfe00_7010), 4);
    expect(devices[7]!.log).toEqual(['r16/4']);
    expect(bus.claims(guestAddress(0xfe00_70ff))).toBe(true);
    expect(bus.claims(guestAddress(0xfe00_7100))).toBe(false);
    expect(bus.read(guestAddress(0xfe00_7100), 4)).toBe(0xffff_ffff);
  });

  it('rejects overlaps on either side', () => {
    const bus = new MemoryMappedIoBus();
    bus.register(guestAddress(0x1000), 0x100, recorder(), 'a');
    expect(() => bus.register(guestAddress(0xf80), 0x100, recorder(), 'b')).toThrow(BusConflictError);
    expect(() => bus.register(guestAddress(0x10ff), 1, recorder(), 'c')).toThrow(BusConflictError);
    bus.register(guestAddress(0x1100), 1, recorder(), 'd');
    bus.register(guestAddress(0xfff), 1, recorder(), 'e');
  });
});
