import { StateError } from '@tsvirt/interfaces';
import { ManualClock } from '@tsvirt/interfaces/testing';
import { describe, expect, it } from 'vitest';
import { I6300ESB_IDENTITY, I6300esb } from './i6300esb.js';
import { IB700_BASE, Ib700 } from './ib700.js';

const SECOND = 1_000_000_000;

describe('ib700', () => {
  function setup() {
    const clock = new ManualClock(0);
    let expired = 0;
    const watchdog = new Ib700({ clock, onExpire: () => expired++ });
    /** outb to an absolute port, as the guest's ib700wdt driver does. */
    const outb = (port: number, value: number) => watchdog.write(port - IB700_BASE, 1, value);
    return { clock, watchdog, outb, expired: () => expired };
  }

  it('runs out after the time the start port selects (0 → 30 s, 13 → 4 s), once', () => {
    const { clock, outb, expired } = setup();
    outb(0x443, 0);
    clock.advance(30 * SECOND - 1);
    expect(expired()).toBe(0);
    clock.advance(1);
    expect(expired()).toBe(1);
    clock.advance(100 * SECOND);
    expect(expired()).toBe(1);
    outb(0x443, 13);
    clock.advance(4 * SECOND);
    expect(expired()).toBe(2);
  });

  it('is fed by writing the start port again, and stopped by the stop ports', () => {
    const { clock, outb, expired } = setup();
    outb(0x443, 10); // 10 s
    for (let i = 0; i < 10; i++) {
      clock.advance(9 * SECOND);
      outb(0x444, 10);
    }
    expect(expired()).toBe(0);
    outb(0x442, 0);
    clock.advance(60 * SECOND);
    expect(expired()).toBe(0);
  });

  it('takes a word write as two byte writes (0x442 stops, 0x443 starts), reads all ones, and stops on reset', () => {
    const { clock, watchdog, expired } = setup();
    watchdog.write(1, 2, 0x0e00); // 0x442 ← 0, 0x443 ← 14: 2 s
    clock.advance(2 * SECOND);
    expect(expired()).toBe(1);
    expect([watchdog.read(0, 1), watchdog.read(2, 2), watchdog.read(0, 4)]).toEqual([0xff, 0xffff, 0xffff_ffff]);
    watchdog.write(2, 1, 0);
    watchdog.reset();
    clock.advance(60 * SECOND);
    expect(expired()).toBe(1);
  });

  it('keeps its deadline across save and restore, and refuses a corrupt state without changing', () => {
    const a = setup();
    a.outb(0x443, 12); // 6 s
    a.clock.advance(SECOND);
    const saved = JSON.parse(JSON.stringify(a.watchdog.save())) as unknown;
    const b = setup();
    b.clock.jumpTo(a.clock.now());
    b.watchdog.restore(saved);
    b.clock.advance(5 * SECOND - 1);
    expect(b.expired()).toBe(0);
    b.clock.advance(1);
    expect(b.expired()).toBe(1);
    expect(() => b.watchdog.restore({ version: 1, deadline: -5 })).toThrow(StateError);
    expect(() => b.watchdog.restore({ version: 2, deadline: -1 })).toThrow(StateError);
    expect(b.watchdog.save()).toEqual({ version: 1, deadline: -1 });
  });
});

describe('i6300esb', () => {
  const CONFIG = 0x60;
  const LOCK = 0x68;
  const RELOAD = 0x0c;

  function setup() {
    const clock = new ManualClock(0);
    let expired = 0;
    const watchdog = new I6300esb({ clock, onExpire: () => expired++ });
    const registers = watchdog.bars[0]!.device;
    const unlock = () => {
      registers.write(RELOAD, 1, 0x80);
      registers.write(RELOAD, 1, 0x86);
    };
    /** What Linux's i6300esb driver does for `heartbeat` seconds: preload = heartbeat << 9 in both timers, then a reload. */
    const setHeartbeat = (seconds: number) => {
      unlock();
      registers.write(0x00, 4, seconds << 9);
      unlock();
      registers.write(0x04, 4, seconds << 9);
      unlock();
      registers.write(RELOAD, 2, 0x100);
    };
    const ping = () => {
      unlock();
      registers.write(RELOAD, 2, 0x100);
    };
    return { clock, watchdog, registers, unlock, setHeartbeat, ping, expired: () => expired };
  }

  /** One stage at the 1 kHz scale: preload · 2^15 periods of the 33 MHz PCI clock. */
  const stageNanoseconds = (preload: number) => (preload * 32768 * SECOND) / 33_000_000;

  it('identifies as QEMU\'s i6300esb: 8086:25ab, class 0880, 16 bytes of memory in BAR 0', () => {
    const { watchdog } = setup();
    expect(I6300ESB_IDENTITY).toMatchObject({ vendorId: 0x8086, deviceId: 0x25ab, classCode: 0x088000 });
    expect(watchdog.bars[0]).toMatchObject({ kind: 'memory32', size: 16 });
  });

  it('as Linux drives it: 30 s heartbeat expires after both stages, once, and sets the timeout flag Linux reads', () => {
    const { clock, watchdog, registers, setHeartbeat, unlock, expired } = setup();
    watchdog.writeConfig(CONFIG, 2, 0x0003);
    setHeartbeat(30);
    watchdog.writeConfig(LOCK, 1, 0x02);
    expect(watchdog.readConfig(LOCK, 1)).toBe(0x02);
    const total = 2 * stageNanoseconds(30 << 9);
    expect(total / SECOND).toBeCloseTo(30.5, 1);
    clock.advanceTo(Math.floor(total) - 1_000_000);
    expect(expired()).toBe(0);
    clock.advance(2_000_000);
    expect(expired()).toBe(1);
    // The action reset the function: disabled, and it stays quiet.
    expect(watchdog.readConfig(LOCK, 1)).toBe(0);
    clock.advance(100 * SECOND);
    expect(expired()).toBe(1);
    expect(registers.read(RELOAD, 2)).toBe(0x1200);
    unlock();
    registers.write(RELOAD, 2, 0x1000);
    expect(registers.read(RELOAD, 2)).toBe(0);
  });

  it('is kept alive by reloads, also from stage 2, and stops when disabled', () => {
    const { clock, watchdog, setHeartbeat, ping, expired } = setup();
    setHeartbeat(10);
    watchdog.writeConfig(LOCK, 1, 0x02);
    for (let i = 0; i < 20; i++) {
      clock.advance(7 * SECOND); // past stage 1 (about 5.08 s) each time
      ping();
    }
    expect(expired()).toBe(0);
    watchdog.writeConfig(LOCK, 1, 0x00);
    clock.advance(60 * SECOND);
    expect(expired()).toBe(0);
  });

  it('takes preloads and reloads only after the unlock sequence, and only at their width', () => {
    const { clock, watchdog, registers, unlock, expired } = setup();
    registers.write(0x00, 4, 1); // locked: ignored, the preloads stay at 0xfffff
    unlock();
    registers.write(0x00, 2, 1); // a word at TIMER1 relocks without effect
    registers.write(0x04, 4, 1);
    watchdog.writeConfig(LOCK, 1, 0x02);
    clock.advance(2 * stageNanoseconds(1) + 1);
    expect(expired()).toBe(0);
    clock.advance(2 * stageNanoseconds(0xfffff));
    expect(expired()).toBe(1);
  });

  it('with output disabled does nothing at the end; free-running, it starts over', () => {
    const { clock, watchdog, setHeartbeat, expired } = setup();
    watchdog.writeConfig(CONFIG, 2, 0x0020);
    setHeartbeat(1);
    watchdog.writeConfig(LOCK, 1, 0x06);
    clock.advance(10 * SECOND);
    expect(expired()).toBe(0);
    expect(watchdog.save().deadline).toBeGreaterThan(clock.now());
  });

  it('holds the lock register once locked, until reset', () => {
    const { watchdog } = setup();
    watchdog.writeConfig(LOCK, 1, 0x03);
    watchdog.writeConfig(LOCK, 1, 0x00);
    expect(watchdog.readConfig(LOCK, 1)).toBe(0x03);
    watchdog.reset();
    expect(watchdog.readConfig(LOCK, 1)).toBe(0);
  });

  it('continues the same after save and restore, and refuses corrupt states', () => {
    const a = setup();
    a.setHeartbeat(4);
    a.watchdog.writeConfig(LOCK, 1, 0x02);
    a.clock.advance(3 * SECOND); // in stage 2
    a.unlock();
    const saved = JSON.parse(JSON.stringify(a.watchdog.save())) as unknown;
    const b = setup();
    b.clock.jumpTo(a.clock.now());
    b.watchdog.restore(saved);
    // The unlock sequence carried over: this reload takes.
    for (const side of [a, b]) side.registers.write(RELOAD, 2, 0x100);
    for (const side of [a, b]) side.clock.advance(4 * SECOND);
    expect([a.expired(), b.expired()]).toEqual([0, 0]);
    for (const side of [a, b]) side.clock.advance(2 * SECOND);
    expect([a.expired(), b.expired()]).toEqual([1, 1]);
    expect(b.watchdog.save()).toEqual(a.watchdog.save());
    const good = a.watchdog.save();
    for (const bad of [{ ...good, config: 0x100 }, { ...good, stage: 3 }, { ...good, preload1: 0x100000 }, { ...good, lock: 0, deadline: 5 }]) {
      expect(() => b.watchdog.restore(bad)).toThrow(StateError);
    }
  });
});
