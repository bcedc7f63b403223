import { StateError } from '@tsvirt/interfaces';
import { RecordingIrqLine } from '@tsvirt/interfaces/testing';
import { describe, expect, it } from 'vitest';
import { I8042 } from './i8042.js';

function setup() {
  const keyboardIrq = new RecordingIrqLine();
  const mouseIrq = new RecordingIrqLine();
  const resets: number[] = [];
  const a20: boolean[] = [];
  const kbc = new I8042({ keyboardIrq, mouseIrq, onReset: () => resets.push(1), onA20Change: (on) => a20.push(on) });
  const command = (value: number) => kbc.command.write(0, 1, value);
  const write = (value: number) => kbc.data.write(0, 1, value);
  const status = () => kbc.command.read(0, 1);
  /** Reads everything in the output buffer, like i8042_flush. */
  const drain = () => {
    const bytes: number[] = [];
    while (status() & 1) bytes.push(kbc.data.read(0, 1));
    return bytes;
  };
  return { kbc, keyboardIrq, mouseIrq, resets, a20, command, write, status, drain };
}

describe('I8042', () => {
  it("passes Linux's controller checks: CTR read/write, self test, AUX loopback and AUX disable bit", () => {
    const { command, write, status, drain, mouseIrq } = setup();
    expect(drain()).toEqual([]);
    command(0x20);
    expect(drain()).toEqual([0x03]);
    command(0xaa);
    expect(drain()).toEqual([0x55]);
    expect(status() & 0x04).toBe(0x04); // system flag after self test
    command(0x60);
    write(0x47); // KBD int, AUX int, SYS, XLATE
    command(0x20);
    expect(drain()).toEqual([0x47]);
    command(0xd3);
    write(0x5a);
    expect(status() & 0x21).toBe(0x21); // AUX data in the output buffer
    expect(mouseIrq.level).toBe(true);
    expect(drain()).toEqual([0x5a]);
    expect(mouseIrq.level).toBe(false);
    command(0xa7);
    command(0x20);
    expect(drain()[0]! & 0x20).toBe(0x20);
    command(0xa8);
    command(0x20);
    expect(drain()[0]! & 0x20).toBe(0);
    command(0xa9);
    expect(drain()).toEqual([0x00]);
  });

  it('resets and identifies the keyboard, translating ID 0x83 to 0x41 as a real 8042 does', () => {
    const { command, write, drain, keyboardIrq } = setup();
    write(0xff);
    expect(keyboardIrq.level).toBe(true);
    expect(drain()).toEqual([0xfa, 0xaa]);
    write(0xf2);
    expect(drain()).toEqual([0xfa, 0xab, 0x83]);
    command(0x60);
    write(0x41); // XLATE + KBD int
    write(0xf2);
    expect(drain()).toEqual([0xfa, 0xab, 0x41]);
  });

  // Linux's i8042_interrupt reads one byte per interrupt, and IRQ 1 is edge-triggered on the PIC and the
  // IOAPIC: each byte of a multi-byte reply must come with its own rising edge, or atkbd's GETID times out.
  it("raises IRQ 1 once per byte of a multi-byte reply, as Linux's atkbd probe needs", () => {
    const { kbc, command, write, status, keyboardIrq } = setup();
    let handled = 0;
    /** One i8042_interrupt per rising edge: read the status, then one data byte. */
    const interrupts = () => {
      const bytes: number[] = [];
      while (handled < keyboardIrq.raised) {
        handled++;
        if (status() & 1) bytes.push(kbc.data.read(0, 1));
      }
      return bytes;
    };
    command(0x60);
    write(0x47); // i8042_controller_init: KBD and AUX interrupts, SYS, XLATE
    write(0xf2); // ATKBD_CMD_GETID
    expect(interrupts()).toEqual([0xfa, 0xab, 0x41]);
    expect(status() & 1).toBe(0);
    write(0xed); // ATKBD_CMD_SETLEDS and its parameter
    expect(interrupts()).toEqual([0xfa]);
    write(0x00);
    expect(interrupts()).toEqual([0xfa]);
    write(0xf3); // ATKBD_CMD_SETREP
    expect(interrupts()).toEqual([0xfa]);
    write(0x2b);
    expect(interrupts()).toEqual([0xfa]);
    write(0xf4); // ATKBD_CMD_ENABLE
    expect(interrupts()).toEqual([0xfa]);
    kbc.keyboard.pressKey(0x1e, true);
    kbc.keyboard.pressKey(0x1e, false);
    expect(interrupts()).toEqual([0x1e, 0x9e]);
    expect(keyboardIrq.level).toBe(false);
  });

  it('sends scancode set 2, translated to set 1 when the command byte says so', () => {
    const { kbc, command, write, drain } = setup();
    kbc.keyboard.pressKey(0x1e, true); // A
    kbc.keyboard.pressKey(0x1e, false);
    kbc.keyboard.pressKey(0xe048, true); // cursor up
    kbc.keyboard.pressKey(0xe048, false);
    expect(drain()).toEqual([0x1c, 0xf0, 0x1c, 0xe0, 0x75, 0xe0, 0xf0, 0x75]);
    command(0x60);
    write(0x41);
    for (const key of [0x1e, 0x01, 0x1c, 0x39, 0x41]) {
      kbc.keyboard.pressKey(key, true);
      kbc.keyboard.pressKey(key, false);
    }
    expect(drain()).toEqual([0x1e, 0x9e, 0x01, 0x81, 0x1c, 0x9c, 0x39, 0xb9, 0x41, 0xc1]);
    kbc.keyboard.pressKey(0xe048, true);
    kbc.keyboard.pressKey(0xe048, false);
    expect(drain()).toEqual([0xe0, 0x48, 0xe0, 0xc8]);
  });

  it('drops key bytes that do not fit the 16-byte keyboard buffer', () => {
    const { kbc, drain } = setup();
    let accepted = 0;
    for (let i = 0; i < 12; i++) if (kbc.keyboard.pressKey(0x1e, i % 2 === 0)) accepted++;
    // The first make moves straight to the output buffer; 15 more bytes fill the queue and the last break does not fit.
    expect(accepted).toBe(11);
    expect(drain()).toHaveLength(1 + 15);
  });

  it('uses set-2 codes Esc 0x76, Enter 0x5A, Space 0x29, F7 0x83 without translation', () => {
    const { kbc, drain } = setup();
    for (const key of [0x01, 0x1c, 0x39, 0x41]) kbc.keyboard.pressKey(key, true);
    expect(drain()).toEqual([0x76, 0x5a, 0x29, 0x83]);
  });

  it('switches scancode sets, sets LEDs and stops scanning on 0xF5', () => {
    const { kbc, write, drain } = setup();
    write(0xf0);
    write(0x00);
    expect(drain()).toEqual([0xfa, 0xfa, 0x02]);
    write(0xf0);
    write(0x01);
    expect(drain()).toEqual([0xfa, 0xfa]);
    kbc.keyboard.pressKey(0x1e, true);
    kbc.keyboard.pressKey(0x1e, false);
    expect(drain()).toEqual([0x1e, 0x9e]);
    write(0xf0);
    write(0x03);
    expect(drain()).toEqual([0xfa, 0xfe]); // set 3 refused
    write(0xed);
    write(0x05);
    expect(drain()).toEqual([0xfa, 0xfa]);
    expect(kbc.keyboard.leds).toBe(5);
    write(0xf5);
    expect(drain()).toEqual([0xfa]);
    expect(kbc.keyboard.pressKey(0x1e, true)).toBe(false);
    write(0xf4);
    expect(drain()).toEqual([0xfa]);
    expect(kbc.keyboard.pressKey(0x1e, true)).toBe(true);
  });

  it('holds keyboard data while the interface is disabled (0xAD) and gates IRQ 1 by the command byte', () => {
    const { kbc, command, write, status, drain, keyboardIrq } = setup();
    command(0xad);
    kbc.keyboard.pressKey(0x1e, true);
    expect(status() & 1).toBe(0);
    command(0xae);
    expect(status() & 1).toBe(1);
    expect(keyboardIrq.level).toBe(true);
    command(0x60);
    write(0x00);
    expect(keyboardIrq.level).toBe(false);
    expect(drain()).toEqual([0x1c]);
  });

  it('talks to the mouse: ID, IntelliMouse knock, stream packets on IRQ 12', () => {
    const { kbc, command, write, drain, mouseIrq } = setup();
    const mouse = (byte: number) => {
      command(0xd4);
      write(byte);
    };
    mouse(0xff);
    expect(drain()).toEqual([0xfa, 0xaa, 0x00]);
    mouse(0xf2);
    expect(drain()).toEqual([0xfa, 0x00]);
    for (const rate of [200, 100, 80]) {
      mouse(0xf3);
      mouse(rate);
    }
    expect(drain()).toEqual([0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa]);
    mouse(0xf2);
    expect(drain()).toEqual([0xfa, 0x03]);
    mouse(0xe9);
    expect(drain()).toEqual([0xfa, 0x00, 0x02, 80]);
    mouse(0xf4);
    expect(drain()).toEqual([0xfa]);
    kbc.mouse.setButtons(1);
    kbc.mouse.move(5, -3, 1);
    expect(mouseIrq.level).toBe(true);
    expect(drain()).toEqual([0x09, 0x00, 0x00, 0x00, 0x29, 0x05, 0xfd, 0x01]);
    kbc.mouse.move(300, 0);
    expect(drain()).toEqual([0x09, 0xff, 0x00, 0x00, 0x09, 45, 0x00, 0x00]);
  });

  it('answers read-data in remote mode and echoes in wrap mode', () => {
    const { kbc, command, write, drain } = setup();
    const mouse = (byte: number) => {
      command(0xd4);
      write(byte);
    };
    mouse(0xf4);
    mouse(0xf0);
    expect(drain()).toEqual([0xfa, 0xfa]);
    kbc.mouse.move(-2, 4);
    expect(drain()).toEqual([]);
    mouse(0xeb);
    expect(drain()).toEqual([0xfa, 0x18, 0xfe, 0x04]);
    mouse(0xee);
    mouse(0x12);
    mouse(0xec);
    expect(drain()).toEqual([0xfa, 0x12, 0xfa]);
  });

  it('drives A20 and reset through the output port and the 0xFE pulse', () => {
    const { command, write, drain, resets, a20, kbc } = setup();
    command(0xd0);
    expect(drain()[0]! & 0x03).toBe(0x03);
    command(0xd1);
    write(0xdd); // A20 off, reset line high
    expect(a20).toEqual([false]);
    expect(kbc.a20).toBe(false);
    command(0xd1);
    write(0xdf);
    expect(a20).toEqual([false, true]);
    expect(resets).toEqual([]);
    command(0xfe);
    expect(resets).toEqual([1]);
    command(0xff); // no bit pulsed
    expect(resets).toEqual([1]);
    command(0xd1);
    write(0xde); // bit 0 low: reset
    expect(resets).toEqual([1, 1]);
  });

  it('rejects malformed saved state and keeps its own', () => {
    const { kbc, write } = setup();
    write(0xed);
    const saved = kbc.save();
    expect(() => kbc.restore({ ...saved, version: 3 })).toThrow(StateError);
    expect(() => kbc.restore({ ...saved, ram: [1, 2] })).toThrow(StateError);
    expect(() => kbc.restore({ ...saved, writeCommand: 0x20 })).toThrow(StateError);
    expect(() => kbc.restore({ ...saved, keyboard: { ...saved.keyboard, scancodeSet: 3 } })).toThrow(StateError);
    expect(() => kbc.restore({ ...saved, mouse: { ...saved.mouse, deviceId: 2 } })).toThrow(StateError);
    expect(kbc.save()).toEqual(saved);
  });
});
