import { test, fc } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { ManualClock, RecordingIrqLine } from '@tsvirt/interfaces/testing';
import { AcpiPm } from './acpi-pm.js';

type Op =
  | { kind: 'pm'; offset: number; size: 1 | 2 | 4; value: number }
  | { kind: 'gpe'; offset: number; size: 1 | 2 | 4; value: number }
  | { kind: 'button' }
  | { kind: 'raiseGpe'; bit: number }
  | { kind: 'advance'; ns: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('pm' as const), offset: fc.constantFrom(0, 1, 2, 3, 4, 5), size: fc.constantFrom<1 | 2 | 4>(1, 2), value: fc.nat(0xffff).map((v) => v & ~0x2000) }),
  fc.record({ kind: fc.constant('gpe' as const), offset: fc.nat(3), size: fc.constantFrom<1 | 2 | 4>(1, 2), value: fc.nat(0xffff) }),
  fc.record({ kind: fc.constant('button' as const) }),
  fc.record({ kind: fc.constant('raiseGpe' as const), bit: fc.nat(15) }),
  fc.record({ kind: fc.constant('advance' as const), ns: fc.oneof(fc.nat(1000), fc.nat(3_000_000_000)) }),
);

function makePm(clock = new ManualClock()) {
  const sci = new RecordingIrqLine();
  return { clock, sci, pm: new AcpiPm({ clock, sci }) };
}

function apply(rig: ReturnType<typeof makePm>, o: Op): void {
  if (o.kind === 'pm') rig.pm.pmBlock.write(o.offset, o.size, o.value);
  else if (o.kind === 'gpe') rig.pm.gpeBlock.write(o.offset, o.size, o.value);
  else if (o.kind === 'button') rig.pm.pressPowerButton();
  else if (o.kind === 'raiseGpe') rig.pm.raiseGpe(o.bit);
  else rig.clock.advance(o.ns);
}

describe('ACPI PM model', () => {
  test.prop([fc.array(op, { maxLength: 50 })], { numRuns: 200 })('PM1/GPE registers and SCI follow ACPI 4.8 (RW1C status, enables, SCI = status & enable)', (ops) => {
    const rig = makePm();
    let status = 0;
    let enable = 0;
    let control = 0;
    let gpeStatus = 0;
    let gpeEnable = 0;
    // TMR_STS latches every 2^23 ticks of the 3.579545 MHz timer.
    let nextToggle = 0x80_0000;
    const ticks = () => Number((BigInt(rig.clock.now()) * 3_579_545n) / 1_000_000_000n);
    for (const o of ops) {
      apply(rig, o);
      if (ticks() >= nextToggle) status |= 1;
      const bytes = (offset: number, size: number, value: number, start: number, handle: (shift: number, byte: number) => void) => {
        for (let i = 0; i < size; i++) {
          const at = offset + i - start;
          if (at === 0 || at === 1) handle(8 * at, (value >>> (8 * i)) & 0xff);
        }
      };
      if (o.kind === 'pm') {
        bytes(o.offset, o.size, o.value, 0, (shift, byte) => {
          if ((byte << shift) & status & 1) nextToggle = (Math.floor(ticks() / 0x80_0000) + 1) * 0x80_0000;
          status &= ~((byte << shift) & 0x8731);
        });
        bytes(o.offset, o.size, o.value, 2, (shift, byte) => (enable = ((enable & ~(0xff << shift)) | (byte << shift)) & 0x0721));
        bytes(o.offset, o.size, o.value, 4, (shift, byte) => (control = ((control & ~(0xff << shift)) | (byte << shift)) & 0x1c07));
      } else if (o.kind === 'gpe') {
        bytes(o.offset, o.size, o.value, 0, (shift, byte) => (gpeStatus &= ~(byte << shift)));
        bytes(o.offset, o.size, o.value, 2, (shift, byte) => (gpeEnable = (gpeEnable & ~(0xff << shift)) | (byte << shift)));
      } else if (o.kind === 'button') status |= 0x100;
      else if (o.kind === 'raiseGpe') gpeStatus |= 1 << o.bit;
      expect(rig.pm.pmBlock.read(0, 4)).toBe(((enable << 16) | status) >>> 0);
      expect(rig.pm.pmBlock.read(4, 2)).toBe(control);
      expect(rig.pm.gpeBlock.read(0, 4)).toBe(((gpeEnable << 16) | gpeStatus) >>> 0);
      expect(rig.sci.level).toBe((status & enable & 0x0521) !== 0 || (gpeStatus & gpeEnable) !== 0);
      expect(rig.pm.pmBlock.read(8, 4)).toBe(ticks() & 0xff_ffff);
    }
  });

  test.prop([fc.array(op, { maxLength: 30 }), fc.array(op, { maxLength: 30 })], { numRuns: 100 })('save, restore into a fresh PM, continue equals continue', (before, after) => {
    const a = makePm();
    for (const o of before) apply(a, o);
    const b = makePm(new ManualClock(a.clock.now()));
    b.pm.restore(JSON.parse(JSON.stringify(a.pm.save())));
    for (const o of after) {
      apply(a, o);
      apply(b, o);
      expect(b.pm.pmBlock.read(0, 4)).toBe(a.pm.pmBlock.read(0, 4));
      expect(b.sci.level).toBe(a.sci.level);
    }
    expect(b.pm.save()).toEqual(a.pm.save());
  });

  test.prop([fc.array(fc.record({ block: fc.nat(2), offset: fc.nat(0x3f), size: fc.constantFrom<1 | 2 | 4>(1, 2, 4), value: fc.nat({ max: 0xffff_ffff }), write: fc.boolean() }), { maxLength: 100 })], { numRuns: 100 })(
    'never throws on any access',
    (accesses) => {
      const rig = makePm();
      const blocks = [rig.pm.pmBlock, rig.pm.gpeBlock, rig.pm.smiCommand];
      for (const a of accesses) {
        const block = blocks[a.block]!;
        if (a.write) block.write(a.offset, a.size, a.value);
        else block.read(a.offset, a.size);
      }
    },
  );
});
