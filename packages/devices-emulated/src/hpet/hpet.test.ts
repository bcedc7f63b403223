import { describe, expect, it } from 'vitest';
import { StateError } from '@tsvirt/interfaces';
import { ManualClock, RecordingIrqLine } from '@tsvirt/interfaces/testing';
import { Hpet } from './hpet.js';

function makeHpet() {
  const clock = new ManualClock();
  const routes = Array.from({ length: 24 }, () => new RecordingIrqLine());
  const irq0 = new RecordingIrqLine();
  const irq8 = new RecordingIrqLine();
  const legacy: boolean[] = [];
  const hpet = new Hpet({ clock, routes, legacyIrq0: irq0, legacyIrq8: irq8, onLegacyRoutingChange: (on) => legacy.push(on) });
  const write = (offset: number, value: number) => hpet.write(offset, 4, value >>> 0);
  const read = (offset: number) => hpet.read(offset, 4);
  return { clock, routes, irq0, irq8, legacy, hpet, write, read };
}

describe('HPET', () => {
  it('reports QEMU capabilities: 3 timers, 64-bit, legacy capable, 10 ns period, vendor 8086', () => {
    const { read } = makeHpet();
    expect(read(0x000)).toBe(0x8086_a201);
    expect(read(0x004)).toBe(0x0098_9680);
    expect(read(0x100)).toBe(0x30); // periodic and 64-bit capable
    expect(read(0x104)).toBe(0x4); // route capability: IOAPIC pin 2
    expect(read(0x108)).toBe(0xffff_ffff);
    expect(read(0x10c)).toBe(0xffff_ffff);
  });

  it('runs the main counter at 100 MHz only while enabled', () => {
    const { clock, write, read } = makeHpet();
    clock.advance(1000);
    expect(read(0xf0)).toBe(0);
    write(0xf0, 0xffff_fff0);
    write(0x10, 1);
    clock.advance(1000); // 100 ticks
    expect(read(0xf0)).toBe(0x54);
    expect(read(0xf4)).toBe(1);
    write(0xf0, 0); // ignored while running
    expect(read(0xf0)).toBe(0x54);
    write(0x10, 0);
    clock.advance(5000);
    expect(read(0xf0)).toBe(0x54);
  });

  it('drives IRQ0 periodically from timer 0 in legacy mode, as Linux programs it', () => {
    const { clock, routes, irq0, legacy, write, read } = makeHpet();
    write(0x10, 0);
    const delta = 100_000; // 1 ms
    const now = read(0xf0);
    write(0x100, read(0x100) | 0x4 | 0x8 | 0x40 | 0x100);
    write(0x108, now + delta);
    write(0x108, delta);
    write(0x10, 0x3);
    expect(legacy).toEqual([true]);
    clock.advance(10_000_000);
    expect(irq0.pulses).toBe(10);
    expect(routes.every((line) => line.raised === 0)).toBe(true);
    expect(read(0x108)).toBe(11 * delta);
  });

  it('keeps level-triggered status until software clears it (RW1C)', () => {
    const { clock, routes, write, read } = makeHpet();
    write(0x120, 0x4 | 0x2 | (2 << 9)); // timer 1: level, enabled, route 2
    write(0x128, 500);
    write(0x12c, 0);
    write(0x10, 1);
    clock.advance(4990);
    expect(routes[2]!.level).toBe(false);
    clock.advance(10);
    expect(read(0x20)).toBe(0x2);
    expect(routes[2]!.level).toBe(true);
    write(0x20, 0x1);
    expect(read(0x20)).toBe(0x2);
    write(0x20, 0x2);
    expect(read(0x20)).toBe(0);
    expect(routes[2]!.level).toBe(false);
  });

  it('restores into a fresh HPET and rejects bad state', () => {
    const a = makeHpet();
    a.write(0x100, 0x4 | 0x8 | 0x40 | 0x100); // 32-bit periodic, route 0
    a.write(0x108, 300);
    a.write(0x108, 300);
    a.write(0x10, 1);
    a.clock.advance(4500);
    const b = makeHpet();
    b.clock.advance(4500);
    b.hpet.restore(JSON.parse(JSON.stringify(a.hpet.save())));
    const pulsesAtSave = a.routes[0]!.pulses;
    a.clock.advance(9000);
    b.clock.advance(9000);
    expect([pulsesAtSave, a.routes[0]!.pulses, b.routes[0]!.pulses]).toEqual([1, 4, 3]);
    expect(b.read(0xf0)).toBe(a.read(0xf0));
    const good = a.hpet.save();
    expect(() => b.hpet.restore({ ...good, isr: 1 })).toThrow(StateError);
    expect(() => b.hpet.restore({ ...good, timers: [] })).toThrow(StateError);
    expect(() => b.hpet.restore({ ...good, timers: good.timers.map((t) => ({ ...t, comparator: '-1' })) })).toThrow(StateError);
    expect(() => b.hpet.restore({ ...good, timers: good.timers.map((t) => ({ ...t, config: 0 })) })).toThrow(StateError);
  });
});

describe('HPET level status without interrupts', () => {
  it('sets the status bit of a level timer with interrupts disabled, and raises the line once enabled', () => {
    const { clock, routes, write, read } = makeHpet();
    write(0x100, 0x2 | (3 << 9)); // level, interrupt disabled, route 3
    write(0x108, 100);
    write(0x10c, 0);
    write(0x10, 1);
    clock.advance(1000);
    expect(read(0x20)).toBe(0x1);
    expect(routes[3]!.level).toBe(false);
    write(0x100, 0x2 | 0x4 | (3 << 9));
    expect(routes[3]!.level).toBe(true);
    write(0x100, 0x4 | (3 << 9)); // switching to edge clears the status and lowers the line
    expect(read(0x20)).toBe(0);
    expect(routes[3]!.level).toBe(false);
  });
});
