import { fc, test } from '@fast-check/vitest';
import { RecordingIrqLine } from '@tsvirt/interfaces/testing';
import { expect } from 'vitest';
import { I8042 } from './i8042.js';

/**
 * A small model of the 8042 and a PS/2 keyboard for the commands below:
 * one output buffer fed by controller replies, then the keyboard (when its
 * interface is enabled, translated when XLATE is set), then the mouse.
 */
class Model {
  ctr = 0x03;
  replies: Array<[number, boolean]> = [];
  keyboard: number[] = [];
  mouse: number[] = [];
  scanning = true;
  obf = false;
  aux = false;
  data = 0;
  lastWriteWasCommand = true;
  awaiting = 0;
  breakPending = false;

  static readonly XLATE: Record<number, number> = { 0x1c: 0x1e, 0x83: 0x41 };

  refill(): void {
    if (this.obf) return;
    const reply = this.replies.shift();
    if (reply !== undefined) return this.fill(reply[0], reply[1]);
    if (!(this.ctr & 0x10)) {
      while (this.keyboard.length > 0) {
        const byte = this.keyboard.shift()!;
        if (!(this.ctr & 0x40)) return this.fill(byte, false);
        if (byte === 0xf0) {
          this.breakPending = true;
          continue;
        }
        const translated = (Model.XLATE[byte] ?? byte) | (this.breakPending ? 0x80 : 0);
        this.breakPending = false;
        return this.fill(translated, false);
      }
    }
    if (!(this.ctr & 0x20) && this.mouse.length > 0) this.fill(this.mouse.shift()!, true);
  }

  fill(byte: number, aux: boolean): void {
    this.data = byte;
    this.aux = aux;
    this.obf = true;
  }

  command(value: number): void {
    this.lastWriteWasCommand = true;
    this.awaiting = 0;
    if (value === 0x20) this.replies.push([this.ctr, false]);
    else if (value === 0x60 || value === 0xd2 || value === 0xd3 || value === 0xd4) this.awaiting = value;
    else if (value === 0xa7) this.ctr |= 0x20;
    else if (value === 0xa8) this.ctr &= ~0x20;
    else if (value === 0xad) this.ctr |= 0x10;
    else if (value === 0xae) this.ctr &= ~0x10;
    else if (value === 0xaa) {
      this.ctr |= 0x04;
      this.replies.push([0x55, false]);
    }
  }

  write(value: number): void {
    this.lastWriteWasCommand = false;
    const awaiting = this.awaiting;
    this.awaiting = 0;
    if (awaiting === 0x60) this.ctr = value;
    else if (awaiting === 0xd2) this.replies.push([value, false]);
    else if (awaiting === 0xd3) this.replies.push([value, true]);
    else if (awaiting === 0xd4) this.mouse.push(0xfa, 0x00); // only 0xF2 (identify) is sent to the mouse here
    else {
      this.keyboard = [];
      if (value === 0xee) this.keyboard.push(0xee);
      else if (value === 0xf2) this.keyboard.push(0xfa, 0xab, 0x83);
      else if (value === 0xff) {
        this.scanning = true;
        this.keyboard.push(0xfa, 0xaa);
      } else if (value === 0xf4) {
        this.scanning = true;
        this.keyboard.push(0xfa);
      } else if (value === 0xf5) {
        this.scanning = false;
        this.keyboard.push(0xfa);
      } else this.keyboard.push(0xfe);
    }
  }

  key(pressed: boolean): void {
    const bytes = pressed ? [0x1c] : [0xf0, 0x1c];
    if (this.scanning && this.keyboard.length + bytes.length <= 16) this.keyboard.push(...bytes);
  }

  read(): number {
    this.obf = false;
    return this.data;
  }

  status(): number {
    return (this.obf ? 1 : 0) | (this.obf && this.aux ? 0x20 : 0) | (this.ctr & 0x04) | (this.lastWriteWasCommand ? 0x08 : 0) | 0x10;
  }
}

type Op =
  | { op: 'command'; value: number; data?: number }
  | { op: 'keyboard'; value: number }
  | { op: 'key'; pressed: boolean }
  | { op: 'read' }
  | { op: 'status' };

const ctrValue = fc.integer({ min: 0, max: 0x7f });
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('command' as const), value: fc.constantFrom(0x20, 0xa7, 0xa8, 0xaa, 0xad, 0xae) }),
  fc.record({ op: fc.constant('command' as const), value: fc.constant(0x60), data: ctrValue }),
  fc.record({ op: fc.constant('command' as const), value: fc.constantFrom(0xd2, 0xd3), data: fc.integer({ min: 0, max: 0xff }) }),
  fc.record({ op: fc.constant('command' as const), value: fc.constant(0xd4), data: fc.constant(0xf2) }),
  fc.record({ op: fc.constant('keyboard' as const), value: fc.constantFrom(0xee, 0xf2, 0xff, 0xf4, 0xf5, 0x00, 0x10, 0x7f) }),
  fc.record({ op: fc.constant('key' as const), pressed: fc.boolean() }),
  fc.constant({ op: 'read' as const }),
  fc.constant({ op: 'read' as const }),
  fc.constant({ op: 'status' as const }),
);

function applyDevice(kbc: I8042, o: Op): number | undefined {
  switch (o.op) {
    case 'command':
      kbc.command.write(0, 1, o.value);
      if (o.data !== undefined) kbc.data.write(0, 1, o.data);
      return undefined;
    case 'keyboard':
      kbc.data.write(0, 1, o.value);
      return undefined;
    case 'key':
      kbc.keyboard.pressKey(0x1e, o.pressed);
      return undefined;
    case 'read':
      return kbc.data.read(0, 1);
    case 'status':
      return kbc.command.read(0, 1);
  }
}

test.prop([fc.array(op, { maxLength: 80, size: 'max' })], { numRuns: 300 })('the i8042 agrees with a model of its output buffer, command byte and IRQs', (ops) => {
  const keyboardIrq = new RecordingIrqLine();
  const mouseIrq = new RecordingIrqLine();
  const kbc = new I8042({ keyboardIrq, mouseIrq });
  const model = new Model();
  for (const o of ops) {
    const got = applyDevice(kbc, o);
    switch (o.op) {
      case 'command':
        model.command(o.value);
        model.refill();
        if (o.data !== undefined) model.write(o.data);
        break;
      case 'keyboard':
        model.write(o.value);
        break;
      case 'key':
        model.key(o.pressed);
        break;
      case 'read':
        expect(got).toBe(model.read());
        break;
      case 'status':
        expect(got).toBe(model.status());
        break;
    }
    model.refill();
    expect(keyboardIrq.level).toBe(model.obf && !model.aux && (model.ctr & 1) === 1);
    expect(mouseIrq.level).toBe(model.obf && model.aux && (model.ctr & 2) === 2);
  }
});

const anyOp = fc.oneof(
  fc.record({ kind: fc.constantFrom('data', 'command'), value: fc.integer({ min: 0, max: 0xff }), write: fc.boolean(), size: fc.constantFrom(1 as const, 2 as const, 4 as const) }),
  fc.record({ kind: fc.constant('key' as const), value: fc.oneof(fc.integer({ min: 1, max: 0x7f }), fc.integer({ min: 0xe001, max: 0xe07f })), write: fc.boolean(), size: fc.constant(1 as const) }),
  fc.record({ kind: fc.constant('mouse' as const), value: fc.integer({ min: -1000, max: 1000 }), write: fc.boolean(), size: fc.constant(1 as const) }),
);

type AnyOp = { kind: 'data' | 'command' | 'key' | 'mouse'; value: number; write: boolean; size: 1 | 2 | 4 };

function drive(kbc: I8042, o: AnyOp): number | undefined {
  if (o.kind === 'key') {
    try {
      kbc.keyboard.pressKey(o.value, o.write);
    } catch (error) {
      // Host API misuse (a code with no key) is a RangeError, never guest-triggered.
      expect(error).toBeInstanceOf(RangeError);
    }
    return undefined;
  }
  if (o.kind === 'mouse') {
    if (o.write) kbc.mouse.move(o.value, -o.value, o.value % 3);
    else kbc.mouse.setButtons(o.value & 7);
    return undefined;
  }
  const port = o.kind === 'data' ? kbc.data : kbc.command;
  if (o.write) {
    port.write(0, o.size, o.value);
    return undefined;
  }
  return port.read(0, o.size);
}

test.prop([fc.array(anyOp, { maxLength: 40, size: 'max' }), fc.array(anyOp, { maxLength: 40, size: 'max' })], { numRuns: 200 })(
  'save → restore into a fresh i8042 → continue equals continue',
  (before, after) => {
    const irqs = [new RecordingIrqLine(), new RecordingIrqLine(), new RecordingIrqLine(), new RecordingIrqLine()] as const;
    const original = new I8042({ keyboardIrq: irqs[0], mouseIrq: irqs[1] });
    for (const o of before) drive(original, o);
    const copy = new I8042({ keyboardIrq: irqs[2], mouseIrq: irqs[3] });
    copy.restore(JSON.parse(JSON.stringify(original.save())));
    for (const o of after) {
      expect(drive(copy, o)).toBe(drive(original, o));
      expect([irqs[2].level, irqs[3].level]).toEqual([irqs[0].level, irqs[1].level]);
    }
    expect(copy.save()).toEqual(original.save());
  },
);

test.prop([fc.array(anyOp, { maxLength: 300, size: 'max' })], { numRuns: 200 })('no access sequence or input throws out of the i8042', (ops) => {
  const kbc = new I8042({ keyboardIrq: new RecordingIrqLine(), mouseIrq: new RecordingIrqLine(), onReset: () => {}, onA20Change: () => {} });
  for (const o of ops) {
    const value = drive(kbc, o);
    if (value !== undefined) expect(value).toBeGreaterThanOrEqual(0);
  }
});

test.prop([fc.array(fc.tuple(fc.integer({ min: -3000, max: 3000 }), fc.integer({ min: -3000, max: 3000 }), fc.integer({ min: -20, max: 20 })), { minLength: 1, maxLength: 20 }), fc.boolean()], { numRuns: 200 })(
  'mouse packets are well formed and carry exactly the movement made',
  (moves, wheel) => {
    const kbc = new I8042({ keyboardIrq: new RecordingIrqLine(), mouseIrq: new RecordingIrqLine() });
    const toMouse = (byte: number) => {
      kbc.command.write(0, 1, 0xd4);
      kbc.data.write(0, 1, byte);
    };
    if (wheel) for (const byte of [0xf3, 200, 0xf3, 100, 0xf3, 80]) toMouse(byte);
    toMouse(0xf4);
    const bytes: number[] = [];
    const drain = () => {
      while (kbc.command.read(0, 1) & 0x01) {
        expect(kbc.command.read(0, 1) & 0x20).toBe(0x20); // everything here comes from the mouse
        bytes.push(kbc.data.read(0, 1));
      }
    };
    drain();
    bytes.length = 0;
    let total = [0, 0, 0];
    for (const [dx, dy, dz] of moves) {
      kbc.mouse.move(dx, dy, dz);
      total = [total[0]! + dx, total[1]! + dy, total[2]! + dz];
      drain();
    }
    const size = wheel ? 4 : 3;
    expect(bytes.length % size).toBe(0);
    const sum = [0, 0, 0];
    for (let i = 0; i < bytes.length; i += size) {
      const head = bytes[i]!;
      expect(head & 0x08).toBe(0x08);
      expect(head & 0xc0).toBe(0); // no overflow: large moves are split
      // Buttons never change here, so every packet carries motion.
      expect(bytes[i + 1] !== 0 || bytes[i + 2] !== 0 || head & 0x30 || (wheel && bytes[i + 3] !== 0)).toBeTruthy();
      sum[0]! += bytes[i + 1]! - (head & 0x10 ? 256 : 0);
      sum[1]! += bytes[i + 2]! - (head & 0x20 ? 256 : 0);
      if (wheel) sum[2]! += (bytes[i + 3]! << 24) >> 24;
    }
    expect(sum).toEqual(wheel ? total : [total[0], total[1], 0]);
    // No packet more than the motion needs: each axis moves at most 255/256 per packet.
    const needed = Math.max(...moves.map(([dx, dy, dz]) => Math.max(Math.ceil(Math.abs(dx) / 255), Math.ceil(Math.abs(dy) / 255), wheel ? Math.ceil(Math.abs(dz) / 7) : 0)));
    expect(bytes.length / size).toBeLessThanOrEqual(needed * moves.length);
  },
);
