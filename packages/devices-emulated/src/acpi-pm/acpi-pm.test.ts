import { describe, expect, it } from 'vitest';
import { StateError } from '@tsvirt/interfaces';
import { ManualClock, RecordingIrqLine } from '@tsvirt/interfaces/testing';
import { AcpiPm } from './acpi-pm.js';

function makePm(timerBits: 24 | 32 = 24) {
  const clock = new ManualClock();
  const sci = new RecordingIrqLine();
  const calls: string[] = [];
  const pm = new AcpiPm({ clock, sci, timerBits, onPowerOff: () => calls.push('off'), onSuspend: () => calls.push('suspend') });
  return { clock, sci, calls, pm };
}

describe('ACPI PM', () => {
  it('counts the PM timer at 3.579545 MHz and wraps at 24 bits', () => {
    const { clock, pm } = makePm();
    clock.advance(1_000_000_000);
    expect(pm.pmBlock.read(8, 4)).toBe(3_579_545);
    clock.advance(4_000_000_000); // 5 s = 17,897,725 ticks, past 2^24
    expect(pm.pmBlock.read(8, 4)).toBe(17_897_725 - 0x100_0000);
    const wide = makePm(32);
    wide.clock.advance(5_000_000_000);
    expect(wide.pm.pmBlock.read(8, 4)).toBe(17_897_725);
  });

  it('sets TMR_STS when bit 23 toggles and raises SCI when TMR_EN is set', () => {
    const { clock, sci, pm } = makePm();
    pm.pmBlock.write(2, 2, 0x0001);
    const toggle = Math.ceil((0x80_0000 * 1e9) / 3_579_545);
    clock.advance(toggle - 1);
    expect(pm.pmBlock.read(0, 2) & 1).toBe(0);
    expect(sci.level).toBe(false);
    clock.advance(1);
    expect(pm.pmBlock.read(0, 2) & 1).toBe(1);
    expect(sci.level).toBe(true);
    pm.pmBlock.write(0, 2, 0x0001);
    expect(pm.pmBlock.read(0, 2) & 1).toBe(0);
    expect(sci.level).toBe(false);
    clock.advance(toggle);
    expect(sci.level).toBe(true);
  });

  it('enters ACPI mode through the SMI command port as QEMU firmware does', () => {
    const { pm } = makePm();
    expect(pm.pmBlock.read(4, 2) & 1).toBe(0);
    pm.smiCommand.write(0, 1, 0xf1);
    expect(pm.pmBlock.read(4, 2) & 1).toBe(1);
    expect(pm.smiCommand.read(0, 1)).toBe(0xf1);
    pm.smiCommand.write(0, 1, 0xf0);
    expect(pm.sciEnabled).toBe(false);
  });

  it('powers off on SLP_TYP 0 (the _S5 value) with SLP_EN, and suspends on 1', () => {
    const { pm, calls } = makePm();
    pm.pmBlock.write(4, 2, (1 << 10) | 0x1);
    expect(calls).toEqual([]);
    pm.pmBlock.write(4, 2, 0x2000 | (1 << 10) | 0x1);
    expect(calls).toEqual(['suspend']);
    expect(pm.pmBlock.read(4, 2)).toBe(0x0401); // SLP_EN reads 0
    pm.pmBlock.write(4, 2, 0x2000 | 0x1);
    expect(calls).toEqual(['suspend', 'off']);
  });

  it('reports the power button and GPEs through SCI', () => {
    const { pm, sci } = makePm();
    pm.pressPowerButton();
    expect(pm.pmBlock.read(0, 2)).toBe(0x0100);
    expect(sci.level).toBe(false);
    pm.pmBlock.write(2, 2, 0x0100);
    expect(sci.level).toBe(true);
    pm.pmBlock.write(0, 2, 0x0100);
    expect(sci.level).toBe(false);
    pm.raiseGpe(1);
    pm.gpeBlock.write(2, 1, 0x02);
    expect(sci.level).toBe(true);
    expect(pm.gpeBlock.read(0, 4)).toBe(0x0002_0002);
    pm.gpeBlock.write(0, 1, 0x02);
    expect(sci.level).toBe(false);
  });

  it('rejects invalid state', () => {
    const { pm } = makePm();
    const good = pm.save();
    expect(() => pm.restore({ ...good, control: 0x2000 })).toThrow(StateError);
    expect(() => pm.restore({ ...good, nextOverflowTick: 5 })).toThrow(StateError);
    expect(() => pm.restore({ ...good, version: 0 })).toThrow(StateError);
  });
});
