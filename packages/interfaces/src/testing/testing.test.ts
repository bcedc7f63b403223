import { describe, expect, it } from 'vitest';
import { BusConflictError } from '../errors.js';
import { ManualClock, MapBus, RecordingIrqLine } from './index.js';

describe('ManualClock', () => {
  it('fires timers in deadline order at their deadline, and re-arming replaces', () => {
    const clock = new ManualClock();
    const log: string[] = [];
    const a = clock.createTimer(() => log.push(`a@${clock.now()}`));
    const b = clock.createTimer(() => log.push(`b@${clock.now()}`));
    a.arm(300);
    b.arm(100);
    a.arm(200);
    expect(clock.nextDeadline()).toBe(100);
    clock.advance(250);
    expect(log).toEqual(['b@100', 'a@200']);
    expect(clock.now()).toBe(250);
    b.arm(260);
    b.cancel();
    clock.advance(100);
    expect(log).toHaveLength(2);
    expect(() => clock.advanceTo(0)).toThrow(RangeError);
  });

  it('lets a timer callback re-arm itself (periodic timers)', () => {
    const clock = new ManualClock();
    let ticks = 0;
    const timer = clock.createTimer(() => {
      ticks++;
      timer.arm(clock.now() + 10);
    });
    timer.arm(10);
    clock.advance(55);
    expect(ticks).toBe(5);
    expect(timer.deadline).toBe(60);
  });

  it('jumpTo fires what is due late, at the new time, as a real-time clock after a host stall', () => {
    const clock = new ManualClock();
    const seen: number[] = [];
    const timer = clock.createTimer(() => {
      seen.push(clock.now());
      timer.arm(clock.now() + 10);
    });
    timer.arm(10);
    clock.jumpTo(55);
    expect(seen).toEqual([55]);
    expect(timer.deadline).toBe(65);
    expect(() => clock.jumpTo(0)).toThrow(RangeError);
  });
});

describe('MapBus', () => {
  it('routes, splits straddling accesses, and returns all-ones when unclaimed', () => {
    const bus = new MapBus();
    const registers = new Uint8Array(4);
    const device = {
      read: (offset: number, size: number) => registers.subarray(offset, offset + size).reduceRight((value, byte) => (value << 8) | byte, 0),
      write: (offset: number, size: number, value: number) => {
        for (let i = 0; i < size; i++) registers[offset + i] = (value >>> (8 * i)) & 0xff;
      },
    };
    const registration = bus.register(0x3f8, 4, device, 'regs');
    bus.write(0x3f8, 4, 0x4433_2211);
    expect(bus.read(0x3f8, 2)).toBe(0x2211);
    expect(bus.read(0x3fa, 4)).toBe(0xffff_4433);
    expect(bus.claims(0x3fb)).toBe(true);
    expect(() => bus.register(0x3fb, 2, device, 'clash')).toThrow(BusConflictError);
    registration.unregister();
    expect(bus.read(0x3f8, 1)).toBe(0xff);
  });
});

describe('RecordingIrqLine', () => {
  it('counts rising edges, not repeated levels', () => {
    const line = new RecordingIrqLine();
    line.setLevel(true);
    line.setLevel(true);
    line.setLevel(false);
    line.pulse();
    expect(line.raised).toBe(2);
    expect(line.level).toBe(false);
  });
});
