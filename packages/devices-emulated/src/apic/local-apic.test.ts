import { describe, expect, it } from 'vitest';
import { StateError } from '@tsvirt/interfaces';
import { createApicFixture as makeApics } from '../testing/platform.js';

const SVR = 0xf0;
const ICR_LOW = 0x300;
const ICR_HIGH = 0x310;
const LVT_TIMER = 0x320;
const LVT_LINT0 = 0x350;
const LVT_ERROR = 0x370;
const TIMER_INITIAL = 0x380;
const TIMER_CURRENT = 0x390;
const TIMER_DIVIDE = 0x3e0;
const EOI = 0xb0;

function enabled(count = 1) {
  const rig = makeApics(count);
  for (const apic of rig.apics) rig.reg(apic).write(SVR, 0x1ff);
  return rig;
}

describe('local APIC registers', () => {
  it('powers up as the SDM and QEMU describe', () => {
    const { apics, reg } = makeApics(2);
    const r = reg(apics[1]!);
    expect(r.read(0x20)).toBe(0x0100_0000);
    expect(r.read(0x30)).toBe(0x0005_0014);
    expect(r.read(0xe0)).toBe(0xffff_ffff);
    expect(r.read(SVR)).toBe(0xff);
    for (const offset of [0x320, 0x330, 0x340, 0x350, 0x360, 0x370]) expect(r.read(offset)).toBe(0x1_0000);
    expect(reg(apics[0]!).read(LVT_LINT0)).toBe(0x700); // BSP: ExtINT, as QEMU
    const msr = new Uint32Array(2);
    apics[0]!.readMsr(0x1b, msr);
    expect([msr[0], msr[1]]).toEqual([0xfee0_0900, 0]);
    apics[1]!.readMsr(0x1b, msr);
    expect(msr[0]).toBe(0xfee0_0800);
  });

  it('forces LVT masks while software-disabled and masks all on disable', () => {
    const { apics, reg } = makeApics();
    const r = reg(apics[0]!);
    r.write(LVT_ERROR, 0xfe);
    expect(r.read(LVT_ERROR)).toBe(0x1_00fe);
    r.write(SVR, 0x1ff);
    r.write(LVT_ERROR, 0xfe);
    expect(r.read(LVT_ERROR)).toBe(0xfe);
    r.write(SVR, 0x0ff);
    expect(r.read(LVT_ERROR)).toBe(0x1_00fe);
    expect(r.read(LVT_LINT0)).toBe(0x1_0700);
  });

  it('keeps only the architectural bits of LDR, DFR, TPR, ICR and the divide register', () => {
    const { apics, reg } = enabled();
    const r = reg(apics[0]!);
    r.write(0xd0, 0xffff_ffff);
    r.write(0xe0, 0x0000_0000);
    r.write(0x80, 0xffff_ffff);
    r.write(ICR_HIGH, 0xffff_ffff);
    r.write(TIMER_DIVIDE, 0xffff_ffff);
    expect(r.read(0xd0)).toBe(0xff00_0000);
    expect(r.read(0xe0)).toBe(0x0fff_ffff);
    expect(r.read(0x80)).toBe(0xff);
    expect(r.read(ICR_HIGH)).toBe(0xff00_0000);
    expect(r.read(TIMER_DIVIDE)).toBe(0xb);
  });
});

describe('local APIC interrupts', () => {
  it('delivers by priority, holds lower classes behind TPR and the ISR, and EOIs the highest', () => {
    const { apics, reg } = enabled();
    const apic = apics[0]!;
    apic.accept(0, 0x31, false);
    apic.accept(0, 0x52, false);
    expect(apic.pending()).toBe(true);
    expect(apic.acknowledge()).toBe(0x52);
    expect(reg(apic).read(0xa0)).toBe(0x50); // PPR follows the ISR
    expect(apic.pending()).toBe(false); // 0x31 is a lower class than 0x52 in service
    reg(apic).write(EOI, 0);
    expect(apic.acknowledge()).toBe(0x31);
    reg(apic).write(EOI, 0);
    apic.setTaskPriorityClass(4);
    expect(reg(apic).read(0x80)).toBe(0x40);
    apic.accept(0, 0x45, false);
    expect(apic.pending()).toBe(false);
    expect(apic.acknowledge()).toBe(0xff); // spurious vector
    apic.setTaskPriorityClass(3);
    expect(apic.acknowledge()).toBe(0x45);
  });

  it('rejects illegal vectors into ESR and raises the error LVT', () => {
    const { apics, reg } = enabled();
    const r = reg(apics[0]!);
    r.write(LVT_ERROR, 0xfe);
    apics[0]!.accept(0, 0x05, false);
    expect(r.read(0x280)).toBe(0);
    r.write(0x280, 0);
    expect(r.read(0x280)).toBe(0x40);
    expect(apics[0]!.acknowledge()).toBe(0xfe);
    r.write(ICR_LOW, 0x0000_4003); // send vector 3
    r.write(0x280, 0);
    expect(r.read(0x280)).toBe(0x20);
  });

  it('sends IPIs: physical, logical flat and cluster, shorthands, NMI, INIT, SIPI', () => {
    const { apics, reg, signals } = enabled(4);
    const [a0, a1, a2, a3] = apics as [typeof apics[0], typeof apics[0], typeof apics[0], typeof apics[0]];
    const r0 = reg(a0);
    r0.write(ICR_HIGH, 0x0200_0000);
    r0.write(ICR_LOW, 0x4040);
    expect(a2.acknowledge()).toBe(0x40);
    reg(a2).write(EOI, 0);
    // Flat logical: LDR bits select CPUs.
    for (const [index, apic] of apics.entries()) reg(apic).write(0xd0, (1 << (24 + index)) >>> 0);
    r0.write(ICR_HIGH, 0x0a00_0000);
    r0.write(ICR_LOW, 0x4841);
    expect([a1.pending(), a2.pending(), a3.pending()]).toEqual([true, false, true]);
    expect(a3.acknowledge()).toBe(0x41);
    reg(a3).write(EOI, 0);
    // Cluster model: cluster 1, members 0b0011.
    for (const [index, apic] of apics.entries()) {
      reg(apic).write(0xe0, 0x0fff_ffff);
      reg(apic).write(0xd0, ((index < 2 ? 0x1 : 0x2) << 28) | (1 << (24 + (index % 2))));
    }
    r0.write(ICR_HIGH, 0x2300_0000);
    r0.write(ICR_LOW, 0x4842);
    expect(a2.acknowledge()).toBe(0x42);
    expect(a3.acknowledge()).toBe(0x42);
    expect(a1.acknowledge()).toBe(0x41);
    for (const apic of apics) reg(apic).write(EOI, 0);
    // All excluding self.
    r0.write(ICR_LOW, 0x000c_4043);
    expect(a0.pending()).toBe(false);
    expect([a1, a2, a3].map((apic) => apic.acknowledge())).toEqual([0x43, 0x43, 0x43]);
    // NMI, INIT, INIT de-assert, SIPI to CPU 1.
    r0.write(ICR_HIGH, 0x0100_0000);
    r0.write(ICR_LOW, 0x4400);
    r0.write(ICR_LOW, 0x4500);
    r0.write(ICR_LOW, 0x8500);
    r0.write(ICR_LOW, 0x4699);
    expect(signals[1]!.log.filter((entry) => entry !== 'wake')).toEqual(['nmi', 'init', 'startup:153']);
    expect(reg(a1).read(SVR)).toBe(0xff); // INIT reset the registers
    expect(reg(a1).read(0x20)).toBe(0x0100_0000);
  });

  it('routes lowest-priority messages to the APIC with the lowest priority', () => {
    const { apics, reg, bus } = enabled(3);
    apics.forEach((apic, index) => reg(apic).write(0x80, [0x30, 0x10, 0x20][index]!));
    bus.deliver(0xfee_ff00c, 0x0161); // logical broadcast 0xFF, lowest priority, vector 0x61
    expect(apics.map((apic) => apic.pending())).toEqual([false, true, false]);
  });

  it('delivers MSI writes by destination ID and ignores other addresses', () => {
    const { apics, bus } = enabled(2);
    bus.deliver(0xfee0_1000, 0x0071);
    expect(apics[1]!.acknowledge()).toBe(0x71);
    bus.deliver(0xfed0_1000, 0x0072);
    bus.deliver(0x1_fee0_1000, 0x0073);
    expect(apics[1]!.pending()).toBe(false);
  });

  it('hands ExtINT through LINT0 to the PIC, and lets the PIC through when globally disabled', () => {
    const { apics, pic, signals } = makeApics();
    const apic = apics[0]!;
    pic.queue.push(0x08);
    apic.setLint0(true);
    expect(signals[0]!.count('wake')).toBe(1);
    expect(apic.pending()).toBe(true);
    expect(apic.acknowledge()).toBe(0x08);
    expect(apic.writeMsr(0x1b, 0xfee0_0100, 0)).toBe(true);
    pic.queue.push(0x09);
    expect(apic.acknowledge()).toBe(0x09);
  });
});

describe('local APIC timer', () => {
  it('counts down as Linux calibrates it (divide 16, periodic, masked)', () => {
    const { apics, reg, clock } = enabled();
    const r = reg(apics[0]!);
    r.write(TIMER_DIVIDE, 0x3);
    r.write(LVT_TIMER, 0x3_00ef);
    r.write(TIMER_INITIAL, 0xffff_ffff);
    clock.advance(100_000_000); // 100 ms at the 1 GHz APIC bus clock
    expect(r.read(TIMER_CURRENT)).toBe(0xffff_ffff - 100_000_000 / 16);
    expect(apics[0]!.pending()).toBe(false);
  });

  it('fires one-shot once and periodic every period', () => {
    const { apics, reg, clock } = enabled();
    const apic = apics[0]!;
    const r = reg(apic);
    r.write(TIMER_DIVIDE, 0xb); // divide by 1
    r.write(LVT_TIMER, 0xec);
    r.write(TIMER_INITIAL, 1000);
    clock.advance(999);
    expect(apic.pending()).toBe(false);
    expect(r.read(TIMER_CURRENT)).toBe(1);
    clock.advance(1);
    expect(apic.acknowledge()).toBe(0xec);
    r.write(EOI, 0);
    clock.advance(5000);
    expect(apic.pending()).toBe(false);
    expect(r.read(TIMER_CURRENT)).toBe(0);
    r.write(LVT_TIMER, 0x2_00ec);
    r.write(TIMER_INITIAL, 500);
    let fired = 0;
    for (let step = 0; step < 10; step++) {
      clock.advance(250);
      if (apic.pending()) {
        apic.acknowledge();
        r.write(EOI, 0);
        fired++;
      }
    }
    expect(fired).toBe(5);
    expect(r.read(TIMER_CURRENT)).toBe(500);
  });

  it('fires at the TSC deadline and clears it', () => {
    const { apics, reg, clock } = enabled();
    const apic = apics[0]!;
    reg(apic).write(LVT_TIMER, 0x4_00d0);
    const msr = new Uint32Array(2);
    expect(apic.writeMsr(0x6e0, 4000, 0)).toBe(true); // 4000 ticks at 2 GHz = 2000 ns
    clock.advance(1999);
    expect(apic.pending()).toBe(false);
    apic.readMsr(0x6e0, msr);
    expect(msr[0]).toBe(4000);
    clock.advance(1);
    expect(apic.acknowledge()).toBe(0xd0);
    apic.readMsr(0x6e0, msr);
    expect(msr[0]).toBe(0);
  });
});

describe('x2APIC', () => {
  it('enters from xAPIC only, serves MSRs, and refuses what the SDM forbids', () => {
    const { apics, signals } = enabled(2);
    const apic = apics[1]!;
    const msr = new Uint32Array(2);
    expect(apic.readMsr(0x802, msr)).toBe(false); // xAPIC mode: no x2APIC MSRs
    expect(apic.writeMsr(0x1b, 0xfee0_0400, 0)).toBe(false); // EXTD without EN
    expect(apic.writeMsr(0x1b, 0xfee0_0c00, 0)).toBe(true);
    expect(apic.mmio.read(0x30, 4)).toBe(0xffff_ffff); // MMIO no longer decodes
    expect(apic.readMsr(0x802, msr)).toBe(true);
    expect(msr[0]).toBe(1);
    apic.readMsr(0x80d, msr);
    expect(msr[0]).toBe(0x0000_0002); // cluster 0, bit 1
    expect(apic.readMsr(0x80b, msr)).toBe(false); // EOI is write-only
    expect(apic.writeMsr(0x80b, 1, 0)).toBe(false); // non-zero EOI write
    expect(apic.writeMsr(0x802, 5, 0)).toBe(false); // ID is read-only
    expect(apic.writeMsr(0x1b, 0xfee0_0800, 0)).toBe(false); // x2APIC -> xAPIC directly
    expect(apic.writeMsr(0x83f, 0x66, 0)).toBe(true);
    expect(apic.acknowledge()).toBe(0x66);
    // ICR as one 64-bit MSR: NMI to x2APIC ID 0, which is still in xAPIC mode.
    expect(apic.writeMsr(0x830, 0x4400, 0)).toBe(true);
    expect(signals[0]!.log).toContain('nmi');
    expect(apic.writeMsr(0x1b, 0xfee0_0000, 0)).toBe(true);
    expect(apic.writeMsr(0x1b, 0xfee0_0c00, 0)).toBe(false); // disabled -> x2APIC directly
  });

  it('tracks CR8 as TPR bits 7:4', () => {
    const { apics } = enabled();
    const apic = apics[0]!;
    apic.setTaskPriorityClass(0x1c);
    expect(apic.taskPriorityClass).toBe(0xc);
    expect(apic.mmio.read(0x80, 4)).toBe(0xc0);
  });
});

describe('IOAPIC with local APICs', () => {
  it('delivers a level-triggered interrupt once per EOI while the line stays asserted', () => {
    const { apics, ioapic, reg } = enabled();
    const apic = apics[0]!;
    const select = (index: number) => ioapic.mmio.write(0x00, 4, index);
    select(0x10 + 2 * 11);
    ioapic.mmio.write(0x10, 4, 0xa000 | 0x59); // level, active low, fixed, vector 0x59
    select(0x11 + 2 * 11);
    ioapic.mmio.write(0x10, 4, 0x0000_0000);
    ioapic.inputs[11]!.setLevel(true);
    expect(ioapic.entry(11).low & 0x4000).toBe(0x4000);
    expect(apic.acknowledge()).toBe(0x59);
    expect(reg(apic).read(0x180 + 0x20)).toBe(1 << (0x59 - 64)); // TMR marks it level
    ioapic.inputs[11]!.setLevel(true);
    expect(apic.pending()).toBe(false); // remote IRR holds it
    reg(apic).write(EOI, 0);
    expect(apic.acknowledge()).toBe(0x59); // still asserted: delivered again
    ioapic.inputs[11]!.setLevel(false);
    reg(apic).write(EOI, 0);
    expect(ioapic.entry(11).low & 0x4000).toBe(0);
    expect(apic.pending()).toBe(false);
  });

  it('reports its version and 24 entries, and loses edges on masked pins', () => {
    const { ioapic, apics } = enabled();
    ioapic.mmio.write(0x00, 1, 0x01);
    expect(ioapic.mmio.read(0x10, 4)).toBe(0x0017_0020);
    ioapic.mmio.write(0x00, 1, 0x00);
    ioapic.mmio.write(0x10, 4, 0x0f00_0000);
    expect(ioapic.mmio.read(0x10, 4)).toBe(0x0f00_0000);
    ioapic.inputs[4]!.pulse();
    ioapic.mmio.write(0x00, 1, 0x18);
    ioapic.mmio.write(0x10, 4, 0x0034);
    expect(apics[0]!.pending()).toBe(false);
    ioapic.inputs[4]!.pulse();
    expect(apics[0]!.acknowledge()).toBe(0x34);
  });
});

describe('local APIC state', () => {
  it('rejects invalid state with StateError', () => {
    const { apics } = enabled();
    const good = apics[0]!.save();
    expect(() => apics[0]!.restore({ ...good, version: 9 })).toThrow(StateError);
    expect(() => apics[0]!.restore({ ...good, apicBase: 0xfee0_0400 })).toThrow(StateError);
    expect(() => apics[0]!.restore({ ...good, lvt: [0, 0, 0] })).toThrow(StateError);
    expect(() => apics[0]!.restore({ ...good, timer: { ...good.timer, start: 1e12 } })).toThrow(StateError);
    expect(() => apics[0]!.restore({ ...good, dfr: 0 })).toThrow(StateError);
  });
});
