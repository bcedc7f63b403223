import { test, fc } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { BusConflictError, guestAddress } from '@tsvirt/interfaces';
import type { AccessSize, BusDevice } from '@tsvirt/interfaces';
import { MemoryMappedIoBus } from './memory-mapped-io-bus.js';
import { PortIoBus } from './port-io-bus.js';

/** A device that is plain byte storage and checks the bus never reaches past its end. */
class ByteRegisters implements BusDevice {
  readonly bytes: Uint8Array;
  calls = 0;
  constructor(readonly length: number) {
    this.bytes = new Uint8Array(length);
  }
  read(offset: number, size: AccessSize): number {
    this.calls++;
    if (offset < 0 || offset + size > this.length) throw new Error(`read past end: ${offset}+${size}`);
    let value = 0;
    for (let i = 0; i < size; i++) value |= this.bytes[offset + i]! << (8 * i);
    return value >>> 0;
  }
  write(offset: number, size: AccessSize, value: number): void {
    this.calls++;
    if (offset < 0 || offset + size > this.length) throw new Error(`write past end: ${offset}+${size}`);
    for (let i = 0; i < size; i++) this.bytes[offset + i] = (value >>> (8 * i)) & 0xff;
  }
}

type Op =
  | { kind: 'register'; base: number; length: number }
  | { kind: 'unregister'; index: number }
  | { kind: 'read'; address: number; size: AccessSize }
  | { kind: 'write'; address: number; size: AccessSize; value: number };

const WINDOW = 64;
const size = fc.constantFrom<AccessSize>(1, 2, 4);
const op = (origin: number): fc.Arbitrary<Op> =>
  fc.oneof(
    fc.record({ kind: fc.constant('register' as const), base: fc.integer({ min: 0, max: WINDOW - 1 }).map((b) => origin + b), length: fc.integer({ min: 1, max: 12 }) }),
    fc.record({ kind: fc.constant('unregister' as const), index: fc.nat(8) }),
    fc.record({ kind: fc.constant('read' as const), address: fc.integer({ min: 0, max: WINDOW }).map((a) => origin + a), size }),
    fc.record({ kind: fc.constant('write' as const), address: fc.integer({ min: 0, max: WINDOW }).map((a) => origin + a), size, value: fc.nat({ max: 0xffff_ffff }) }),
  );

interface AnyBus {
  register(base: number, length: number, device: BusDevice, name: string): { unregister(): void };
  read(address: number, size: AccessSize): number;
  write(address: number, size: AccessSize, value: number): void;
}

/** Runs ops on a bus and on a byte-level model: a claimed byte is device storage, an unclaimed one reads 0xff and drops writes. */
function checkAgainstModel(bus: AnyBus, origin: number, ops: Op[]): void {
  const live: Array<{ base: number; device: ByteRegisters; registration: { unregister(): void } }> = [];
  const modelOwner = (address: number) => live.find((r) => address >= r.base && address < r.base + r.device.length);
  for (const o of ops) {
    if (o.kind === 'register') {
      const device = new ByteRegisters(o.length);
      const overlaps = live.some((r) => o.base < r.base + r.device.length && r.base < o.base + o.length);
      if (overlaps) {
        expect(() => bus.register(o.base, o.length, device, 'd')).toThrow(BusConflictError);
      } else {
        live.push({ base: o.base, device, registration: bus.register(o.base, o.length, device, 'd') });
      }
    } else if (o.kind === 'unregister') {
      const entry = live[o.index];
      if (entry === undefined) continue;
      entry.registration.unregister();
      entry.registration.unregister(); // twice is harmless
      live.splice(o.index, 1);
    } else if (o.kind === 'read') {
      let expected = 0;
      for (let i = 0; i < o.size; i++) {
        const owner = modelOwner(o.address + i);
        expected |= (owner === undefined ? 0xff : owner.device.bytes[o.address + i - owner.base]!) << (8 * i);
      }
      const single = modelOwner(o.address);
      const callsBefore = single?.device.calls ?? 0;
      expect(bus.read(o.address, o.size)).toBe(expected >>> 0);
      // An access wholly inside one device reaches it as one access, not bytes.
      if (single !== undefined && o.address + o.size <= single.base + single.device.length) expect(single.device.calls).toBe(callsBefore + 1);
    } else {
      const shadow = live.map((r) => r.device.bytes.slice());
      for (let i = 0; i < o.size; i++) {
        const index = live.findIndex((r) => o.address + i >= r.base && o.address + i < r.base + r.device.length);
        if (index >= 0) shadow[index]![o.address + i - live[index]!.base] = (o.value >>> (8 * i)) & 0xff;
      }
      bus.write(o.address, o.size, o.value);
      live.forEach((r, i) => expect([...r.device.bytes]).toEqual([...shadow[i]!]));
    }
  }
}

describe('PortIoBus', () => {
  test.prop([fc.array(op(0xfff0 - WINDOW), { maxLength: 60 })], { numRuns: 150 })('matches a byte-level model', (ops) => {
    checkAgainstModel(new PortIoBus(), 0xfff0 - WINDOW, ops);
  });

  test.prop([fc.array(op(0), { maxLength: 60 })], { numRuns: 100 })('matches the model at port 0', (ops) => {
    checkAgainstModel(new PortIoBus(), 0, ops);
  });
});

describe('MemoryMappedIoBus', () => {
  const origin = 0xfee0_0000;
  test.prop([fc.array(op(origin), { maxLength: 60 })], { numRuns: 150 })('matches a byte-level model', (ops) => {
    const bus = new MemoryMappedIoBus();
    checkAgainstModel(
      {
        register: (base, length, device, name) => bus.register(guestAddress(base), length, device, name),
        read: (address, s) => bus.read(guestAddress(address), s),
        write: (address, s, v) => bus.write(guestAddress(address), s, v),
      },
      origin,
      ops,
    );
  });
});
