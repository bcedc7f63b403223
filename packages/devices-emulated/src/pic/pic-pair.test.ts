import { StateError } from '@tsvirt/interfaces';
import { describe, expect, it } from 'vitest';
import { PicPair } from './pic-pair.js';

const MASTER_CMD = 0;
const MASTER_IMR = 1;

function outMaster(pic: PicPair, offset: number, value: number): void {
  pic.master.write(offset, 1, value);
}
function outSlave(pic: PicPair, offset: number, value: number): void {
  pic.slave.write(offset, 1, value);
}

/** The sequence of Linux's init_8259A(auto_eoi) (arch/x86/kernel/i8259.c). */
function linuxInit(pic: PicPair, autoEoi = false): void {
  outMaster(pic, MASTER_IMR, 0xff);
  outSlave(pic, 1, 0xff);
  outMaster(pic, MASTER_CMD, 0x11); // ICW1: edge, cascade, ICW4
  outMaster(pic, MASTER_IMR, 0x30); // ICW2: ISA_IRQ_VECTOR(0) on x86-64
  outMaster(pic, MASTER_IMR, 0x04); // ICW3: slave on IR2
  outMaster(pic, MASTER_IMR, autoEoi ? 0x03 : 0x01); // ICW4: 8086 mode (+AEOI)
  outSlave(pic, 0, 0x11);
  outSlave(pic, 1, 0x38);
  outSlave(pic, 1, 0x02); // slave id 2
  outSlave(pic, 1, 0x01);
  outMaster(pic, MASTER_IMR, 0xfb); // all masked but the cascade
  outSlave(pic, 1, 0xff);
}

describe('PicPair', () => {
  it('passes Linux probe_8259A: the mask register reads back', () => {
    const pic = new PicPair();
    pic.slave.write(1, 1, 0xff);
    pic.master.write(1, 1, 0xfb);
    expect(pic.master.read(1, 1)).toBe(0xfb);
  });

  it('delivers vectors after init_8259A and needs EOI for the next same-or-lower level', () => {
    const changes: boolean[] = [];
    const pic = new PicPair({ onInterruptChanged: (up) => changes.push(up) });
    linuxInit(pic);
    outMaster(pic, MASTER_IMR, 0xf8); // unmask IRQ 0, 1 (and cascade)
    pic.irqLine(1).pulse();
    expect(pic.pending()).toBe(true);
    expect(changes).toEqual([true]);
    pic.irqLine(0).pulse();
    expect(pic.acknowledge()).toBe(0x30); // IRQ 0 first: highest priority
    expect(pic.pending()).toBe(false); // IRQ 1 waits for IRQ 0's EOI
    outMaster(pic, MASTER_CMD, 0x0b); // OCW3 read ISR
    expect(pic.master.read(0, 1)).toBe(0x01);
    outMaster(pic, MASTER_CMD, 0x60); // specific EOI IRQ 0, as mask_and_ack_8259A
    expect(pic.pending()).toBe(true);
    expect(pic.acknowledge()).toBe(0x31);
    outMaster(pic, MASTER_CMD, 0x0a);
    expect(pic.master.read(0, 1)).toBe(0x00); // IRR: nothing left
  });

  it('cascades slave IRQs through IR2 and needs EOI on both chips', () => {
    const pic = new PicPair();
    linuxInit(pic);
    outSlave(pic, 1, 0xfe); // unmask IRQ 8
    pic.irqLine(8).pulse();
    expect(pic.pending()).toBe(true);
    expect(pic.acknowledge()).toBe(0x38);
    pic.irqLine(8).pulse();
    expect(pic.pending()).toBe(false);
    outSlave(pic, 0, 0x60);
    expect(pic.pending()).toBe(false); // master IR2 still in service
    outMaster(pic, 0, 0x62);
    expect(pic.pending()).toBe(true);
    expect(pic.acknowledge()).toBe(0x38);
  });

  it('answers a request that went away with spurious IRQ 7 and no ISR bit', () => {
    const pic = new PicPair();
    linuxInit(pic);
    outMaster(pic, MASTER_IMR, 0x00);
    pic.setTriggerModes(1 << 5);
    pic.irqLine(5).setLevel(true);
    expect(pic.pending()).toBe(true);
    pic.irqLine(5).setLevel(false);
    expect(pic.acknowledge()).toBe(0x37);
    outMaster(pic, 0, 0x0b);
    expect(pic.master.read(0, 1)).toBe(0); // i8259A_irq_real sees no ISR bit 7
  });

  it('answers a vanished slave request with spurious IRQ 15, leaving master IR2 in service', () => {
    const pic = new PicPair();
    linuxInit(pic);
    outSlave(pic, 1, 0x00);
    pic.setLevelTriggered(14, true);
    pic.irqLine(14).setLevel(true);
    expect(pic.pending()).toBe(true);
    pic.irqLine(14).setLevel(false);
    expect(pic.acknowledge()).toBe(0x3f);
    outMaster(pic, 0, 0x0b);
    expect(pic.master.read(0, 1)).toBe(0x04); // the cascade level was acknowledged
    outSlave(pic, 0, 0x0b);
    expect(pic.slave.read(0, 1)).toBe(0x00); // no ISR bit for the spurious IRQ 15
  });

  it('special fully nested mode lets a higher slave IRQ through while the cascade is in service', () => {
    for (const sfnm of [false, true]) {
      const pic = new PicPair();
      outMaster(pic, 0, 0x11);
      outMaster(pic, 1, 0x20);
      outMaster(pic, 1, 0x04);
      outMaster(pic, 1, sfnm ? 0x11 : 0x01);
      outSlave(pic, 0, 0x11);
      outSlave(pic, 1, 0x28);
      outSlave(pic, 1, 0x02);
      outSlave(pic, 1, 0x01);
      outMaster(pic, 1, 0x00);
      outSlave(pic, 1, 0x00);
      pic.irqLine(10).pulse();
      expect(pic.acknowledge()).toBe(0x2a);
      pic.irqLine(9).pulse(); // higher priority than IRQ 10 on the slave
      expect(pic.pending()).toBe(sfnm);
    }
  });

  it('keeps a level-triggered request after INTA while the line stays high', () => {
    const pic = new PicPair();
    linuxInit(pic, true);
    outSlave(pic, 1, 0x00);
    pic.setLevelTriggered(11, true);
    expect(pic.triggerModes).toBe(0x0800);
    pic.irqLine(11).setLevel(true);
    expect(pic.acknowledge()).toBe(0x3b);
    // Linux sets AEOI on the master only: the slave holds IR3 in service.
    expect(pic.pending()).toBe(false);
    outSlave(pic, 0, 0x63);
    // The line is still high: a second interrupt, as the datasheet warns.
    expect(pic.pending()).toBe(true);
    // The handler silences the device before its EOI: nothing more.
    expect(pic.acknowledge()).toBe(0x3b);
    pic.irqLine(11).setLevel(false);
    outSlave(pic, 0, 0x63);
    expect(pic.pending()).toBe(false);
    // Silenced after the EOI instead: master IR2 had latched the slave's INT, so INTA finds nothing on the slave.
    pic.irqLine(11).setLevel(true);
    pic.irqLine(11).setLevel(false);
    expect(pic.pending()).toBe(true);
    expect(pic.acknowledge()).toBe(0x3f); // spurious IRQ 15
  });

  it('masks ELCR bits that cannot be level-triggered on PIIX (IRQ 0, 1, 2, 8, 13)', () => {
    const pic = new PicPair();
    pic.elcr.write(0, 1, 0xff);
    pic.elcr.write(1, 1, 0xff);
    expect(pic.elcr.read(0, 1)).toBe(0xf8);
    expect(pic.elcr.read(1, 1)).toBe(0xde);
  });

  it('poll mode returns 0x80 | level and acknowledges it', () => {
    const pic = new PicPair();
    linuxInit(pic);
    outMaster(pic, MASTER_IMR, 0x00);
    pic.irqLine(3).pulse();
    outMaster(pic, 0, 0x0c); // OCW3 poll
    expect(pic.master.read(0, 1)).toBe(0x83);
    outMaster(pic, 0, 0x0b);
    expect(pic.master.read(0, 1)).toBe(0x08);
    outMaster(pic, 0, 0x0c);
    expect(pic.master.read(1, 1)).toBe(0x00); // nothing pending: I bit clear
  });

  it('rotates priorities on specific EOI and by set-priority', () => {
    const pic = new PicPair();
    linuxInit(pic);
    outMaster(pic, MASTER_IMR, 0x00);
    outMaster(pic, 0, 0xc4); // set priority: IR4 lowest, so IR5 highest
    pic.irqLine(3).pulse();
    pic.irqLine(6).pulse();
    expect(pic.acknowledge()).toBe(0x36);
    outMaster(pic, 0, 0xe6); // rotate on specific EOI 6: IR6 lowest, IR7 highest
    expect(pic.acknowledge()).toBe(0x33);
  });

  it('special mask mode lets lower levels in while a masked level is in service', () => {
    const pic = new PicPair();
    linuxInit(pic);
    outMaster(pic, MASTER_IMR, 0x00);
    pic.irqLine(1).pulse();
    expect(pic.acknowledge()).toBe(0x31);
    pic.irqLine(4).pulse();
    expect(pic.pending()).toBe(false);
    outMaster(pic, MASTER_IMR, 0x02);
    outMaster(pic, 0, 0x68); // OCW3: set special mask
    expect(pic.pending()).toBe(true);
    expect(pic.acknowledge()).toBe(0x34);
  });

  it('rejects malformed saved state without changing', () => {
    const pic = new PicPair();
    linuxInit(pic);
    const before = pic.save();
    expect(() => pic.restore({ version: 2 })).toThrow(StateError);
    expect(() => pic.restore({ ...before, master: { ...before.master, imr: 256 } })).toThrow(StateError);
    expect(() => pic.restore({ ...before, slave: { ...before.slave, elcr: 0x01 } })).toThrow(StateError);
    expect(() => pic.restore({ ...before, slave: { ...before.slave, initStep: 1 } })).toThrow(StateError);
    expect(() => pic.restore({ ...before, slave: 'x' })).toThrow(StateError);
    expect(pic.save()).toEqual(before);
  });
});
