import { StateError } from '@tsvirt/interfaces';
import { ManualClock, RecordingIrqLine } from '@tsvirt/interfaces/testing';
import { describe, expect, it } from 'vitest';
import { Rtc } from './rtc.js';

const MS = 1_000_000;
// 2024-02-29 23:59:58.250 UTC, a Thursday.
const START = Date.UTC(2024, 1, 29, 23, 59, 58, 250);

function setup(startTime = START): { clock: ManualClock; irq: RecordingIrqLine; rtc: Rtc; reg: (i: number) => number; set: (i: number, v: number) => void } {
  const clock = new ManualClock(0);
  const irq = new RecordingIrqLine();
  const rtc = new Rtc({ clock, irq, startTime });
  const reg = (i: number) => {
    rtc.write(0, 1, i);
    return rtc.read(1, 1);
  };
  const set = (i: number, v: number) => {
    rtc.write(0, 1, i);
    rtc.write(1, 1, v);
  };
  return { clock, irq, rtc, reg, set };
}

function time(reg: (i: number) => number): number[] {
  return [0x32, 0x09, 0x08, 0x07, 0x06, 0x04, 0x02, 0x00].map(reg);
}

describe('Rtc', () => {
  it('shows the injected start time in BCD, 24-hour, and rolls over a leap day', () => {
    const { clock, reg } = setup();
    expect(time(reg)).toEqual([0x20, 0x24, 0x02, 0x29, 0x05, 0x23, 0x59, 0x58]);
    expect(reg(0x0d)).toBe(0x80); // VRT: battery good
    clock.advance(1750 * MS);
    expect(time(reg)).toEqual([0x20, 0x24, 0x03, 0x01, 0x06, 0x00, 0x00, 0x00]);
  });

  it('sets UIP during the 244 µs before each update, as mc146818_avoid_UIP expects', () => {
    const { clock, reg } = setup();
    const update = 750 * MS; // the next second boundary after .250
    clock.advanceTo(update - 245_000);
    expect(reg(0x0a) & 0x80).toBe(0);
    expect(reg(0x00)).toBe(0x58);
    clock.advanceTo(update - 244_000);
    expect(reg(0x0a) & 0x80).toBe(0x80);
    expect(reg(0x00)).toBe(0x58);
    clock.advanceTo(update);
    expect(reg(0x0a) & 0x80).toBe(0);
    expect(reg(0x00)).toBe(0x59);
  });

  it('reads binary and 12-hour formats', () => {
    const { reg, set } = setup();
    set(0x0b, 0x04); // binary, 12-hour
    expect(reg(0x04)).toBe(0x80 | 11); // 23h is 11 PM
    expect(reg(0x02)).toBe(59);
    expect(reg(0x09)).toBe(24);
    set(0x0b, 0x06);
    expect(reg(0x04)).toBe(23);
  });

  it('takes a new time written under SET and keeps the divider phase', () => {
    const { clock, reg, set } = setup();
    set(0x0b, 0x82);
    set(0x00, 0x00);
    set(0x02, 0x30);
    set(0x04, 0x12);
    set(0x07, 0x15);
    set(0x08, 0x06);
    set(0x09, 0x25);
    clock.advance(3000 * MS); // frozen while SET
    expect(reg(0x02)).toBe(0x30);
    expect(reg(0x00)).toBe(0x00);
    set(0x0b, 0x02);
    // Phase .250 at start, 3 s later still .250: next update 750 ms away.
    clock.advance(749 * MS);
    expect(reg(0x00)).toBe(0x00);
    clock.advance(1 * MS);
    expect(time(reg)).toEqual([0x20, 0x25, 0x06, 0x15, 0x01, 0x12, 0x30, 0x01]); // 2025-06-15 is a Sunday
  });

  it('raises IRQ 8 for periodic interrupts at the rate select and clears on register C read', () => {
    const { clock, irq, reg, set } = setup();
    set(0x0a, 0x26); // 1024 Hz
    set(0x0b, 0x42); // PIE
    let interrupts = 0;
    for (let i = 0; i < 1024; i++) {
      clock.advance(Math.ceil(1e9 / 1024));
      if (irq.level) {
        interrupts++;
        // UF rides along once a second; PF and IRQF every time.
        expect(reg(0x0c) & 0xe0).toBe(0xc0);
        expect(irq.level).toBe(false);
      }
    }
    expect(interrupts).toBeGreaterThanOrEqual(1020);
    expect(interrupts).toBeLessThanOrEqual(1024);
  });

  it('flags events without raising IRQ 8 when disabled', () => {
    const { clock, irq, reg, set } = setup();
    set(0x0a, 0x2f); // 2 Hz
    clock.advance(1000 * MS);
    expect(irq.raised).toBe(0);
    expect(reg(0x0c)).toBe(0x50); // PF and UF, no IRQF
    expect(reg(0x0c)).toBe(0x00);
    set(0x0a, 0x20); // no periodic rate
    clock.advance(1000 * MS);
    set(0x0b, 0x12); // enabling UIE with UF pending raises IRQ at once
    expect(irq.level).toBe(true);
    // The zeroed alarm registers match 00:00:00, which has just passed.
    expect(reg(0x0c)).toBe(0xb0);
  });

  it('drops IRQ 8 and IRQF when the pending source is disabled (IRQF = PF·PIE + AF·AIE + UF·UIE)', () => {
    const { clock, irq, reg, set } = setup();
    set(0x0b, 0x12); // UIE
    clock.advance(1000 * MS);
    expect(irq.level).toBe(true);
    set(0x0b, 0x02);
    expect(irq.level).toBe(false);
    expect(reg(0x0c) & 0x90).toBe(0x10); // UF still latched, IRQF clear
  });

  it('raises update-ended and alarm interrupts at the right second', () => {
    const { clock, irq, reg, set } = setup();
    set(0x0a, 0x20);
    set(0x01, 0x03); // alarm at xx:xx:03 (minute and hour don't care)
    set(0x03, 0xc0);
    set(0x05, 0xff);
    set(0x0b, 0x22); // AIE
    clock.advanceTo(750 * MS + 4000 * MS - 1); // 00:00:02.999…
    expect(irq.level).toBe(false);
    clock.advance(1);
    expect(irq.level).toBe(true);
    expect(reg(0x0c)).toBe(0xb0); // IRQF | AF | UF
    set(0x0b, 0x12); // UIE
    clock.advance(1000 * MS);
    expect(reg(0x0c)).toBe(0x90);
  });

  it('stops in divider reset and makes the first update 500 ms after leaving it', () => {
    const { clock, reg, set } = setup();
    set(0x0a, 0x70);
    clock.advance(10_000 * MS);
    expect(reg(0x00)).toBe(0x58);
    expect(reg(0x0a) & 0x80).toBe(0);
    set(0x0a, 0x26);
    clock.advance(499 * MS);
    expect(reg(0x00)).toBe(0x58);
    clock.advance(1 * MS);
    expect(reg(0x00)).toBe(0x59);
  });

  it('latches the NMI mask from index bit 7 and keeps port 0x70 write-only', () => {
    const { rtc } = setup();
    rtc.write(0, 1, 0x8a);
    expect(rtc.nmiDisabled).toBe(true);
    expect(rtc.read(1, 1) & 0x7f).toBe(0x26);
    expect(rtc.read(0, 1)).toBe(0xff);
    rtc.write(0, 1, 0x0a);
    expect(rtc.nmiDisabled).toBe(false);
  });

  it('takes index and data in one word access at 0x70', () => {
    const { rtc, reg } = setup();
    rtc.write(0, 2, (0x42 << 8) | 0x40);
    expect(reg(0x40)).toBe(0x42);
    rtc.write(0, 1, 0x40);
    expect(rtc.read(0, 2)).toBe(0x42ff);
  });

  it('fills the NVRAM fields SeaBIOS and Linux read', () => {
    const { rtc, reg } = setup();
    rtc.configureMemory({ below4G: 3.5 * 2 ** 30, above4G: 2 * 2 ** 30 });
    expect([0x15, 0x16, 0x17, 0x18, 0x30, 0x31, 0x34, 0x35, 0x5b, 0x5c, 0x5d].map(reg)).toEqual([0x80, 0x02, 0xff, 0xff, 0xff, 0xff, 0x00, 0xdf, 0x00, 0x80, 0x00]);
    rtc.configureMemory({ below4G: 16 * 2 ** 20, above4G: 0 });
    expect([0x17, 0x18, 0x34, 0x35].map(reg)).toEqual([0x00, 0x3c, 0x00, 0x00]); // 15360 KiB extended
    rtc.setCpuCount(4);
    expect(reg(0x5f)).toBe(3);
    rtc.setBootOrder(['cdrom', 'disk']);
    expect([reg(0x3d), reg(0x38)]).toEqual([0x23, 0x01]);
    rtc.setEquipment({ floppyDrives: 2, fpu: true, ps2Mouse: true });
    expect(reg(0x14)).toBe(0x47);
    expect(() => rtc.setCpuCount(0)).toThrow(RangeError);
  });

  it('rejects malformed saved state and keeps its own', () => {
    const { rtc } = setup();
    const saved = rtc.save();
    expect(() => rtc.restore({ ...saved, version: 9 })).toThrow(StateError);
    expect(() => rtc.restore({ ...saved, cmos: 'AAAA' })).toThrow(StateError);
    expect(() => rtc.restore({ ...saved, index: 0x80 })).toThrow(StateError);
    expect(() => rtc.restore({ ...saved, frozenPhase: 1e9 })).toThrow(StateError);
    expect(rtc.save()).toEqual(saved);
  });
});
