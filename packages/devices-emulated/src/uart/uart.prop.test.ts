import { fc, test } from '@fast-check/vitest';
import { ManualClock, RecordingIrqLine } from '@tsvirt/interfaces/testing';
import { expect } from 'vitest';
import { MemoryCharacterBackend as PipeBackend } from '@tsvirt/interfaces/testing';
import { Uart } from './uart.js';

/** A plain model of the 16550A's register file and interrupt logic, from the datasheet. */
class ModelUart {
  rx: number[] = [];
  host: number[] = [];
  output: number[] = [];
  fcr = 0;
  ier = 0;
  lcr = 0;
  mcr = 0;
  errors = 0;
  inputs = 0xb0;
  deltas = 0;
  scr = 0;
  divisor = 12;
  thr = false;
  timeout = false;
  deadline: number | undefined;
  now = 0;

  get fifo(): boolean {
    return (this.fcr & 1) === 1;
  }
  get loop(): boolean {
    return (this.mcr & 0x10) !== 0;
  }
  characterNs(): number {
    const bits = 1 + 5 + (this.lcr & 3) + ((this.lcr >> 3) & 1) + (this.lcr & 4 ? 2 : 1);
    return Math.ceil((bits * (this.divisor || 65536) * 16 * 1e9) / 1_843_200);
  }
  rearm(): void {
    this.deadline = this.fifo && this.rx.length > 0 ? this.now + 4 * this.characterNs() : undefined;
  }
  advance(ns: number): void {
    this.now += ns;
    if (this.deadline !== undefined && this.now >= this.deadline) {
      this.deadline = undefined;
      if (this.fifo && this.rx.length > 0) this.timeout = true;
    }
  }
  space(): number {
    return (this.fifo ? 16 : 1) - this.rx.length;
  }
  pump(): void {
    while (!this.loop && this.host.length > 0 && this.space() > 0) this.receive(this.host.shift()!);
  }
  receive(byte: number): void {
    if (this.space() <= 0) {
      this.errors |= 0x02;
      if (!this.fifo) this.rx[0] = byte;
      return;
    }
    this.rx.push(byte);
    this.timeout = false;
    this.rearm();
  }
  id(): number {
    if (this.ier & 4 && this.errors) return 0x06;
    const trigger = this.fifo ? [1, 4, 8, 14][this.fcr >> 6]! : 1;
    if (this.ier & 1 && this.rx.length > 0 && this.rx.length >= trigger) return 0x04;
    if (this.ier & 1 && this.timeout) return 0x0c;
    if (this.ier & 2 && this.thr) return 0x02;
    if (this.ier & 8 && this.deltas) return 0x00;
    return 0x01;
  }
  irq(): boolean {
    return this.id() !== 1 && (this.mcr & 0x18) === 0x08;
  }
  read(offset: number): number {
    const dlab = (this.lcr & 0x80) !== 0;
    switch (offset) {
      case 0: {
        if (dlab) return this.divisor & 0xff;
        const byte = this.rx.shift() ?? 0;
        this.timeout = false;
        this.rearm();
        return byte;
      }
      case 1:
        return dlab ? this.divisor >> 8 : this.ier;
      case 2: {
        const id = this.id();
        if (id === 2) this.thr = false;
        return id | (this.fifo ? 0xc0 : 0);
      }
      case 3:
        return this.lcr;
      case 4:
        return this.mcr;
      case 5: {
        const value = this.errors | (this.rx.length ? 1 : 0) | 0x60;
        this.errors = 0;
        return value;
      }
      case 6: {
        const value = this.inputs | this.deltas;
        this.deltas = 0;
        return value;
      }
      default:
        return this.scr;
    }
  }
  write(offset: number, value: number): void {
    const dlab = (this.lcr & 0x80) !== 0;
    switch (offset) {
      case 0:
        if (dlab) this.divisor = (this.divisor & 0xff00) | value;
        else {
          const byte = value & ((1 << (5 + (this.lcr & 3))) - 1);
          if (this.loop) this.receive(byte);
          else this.output.push(byte);
          this.thr = true;
        }
        return;
      case 1:
        if (dlab) this.divisor = (this.divisor & 0xff) | (value << 8);
        else {
          this.ier = value & 15;
          this.thr = (value & 2) !== 0;
        }
        return;
      case 2: {
        const enable = (value & 1) === 1;
        if (enable !== this.fifo || (enable && value & 2)) {
          this.rx = [];
          this.timeout = false;
        }
        this.fcr = enable ? value & 0xc9 : 0;
        this.rearm();
        return;
      }
      case 3:
        this.lcr = value;
        return;
      case 4: {
        this.mcr = value & 0x1f;
        const m = this.mcr;
        const inputs = this.loop ? (m & 2 ? 0x10 : 0) | (m & 1 ? 0x20 : 0) | (m & 4 ? 0x40 : 0) | (m & 8 ? 0x80 : 0) : 0xb0;
        const changed = inputs ^ this.inputs;
        if (changed & 0x10) this.deltas |= 1;
        if (changed & 0x20) this.deltas |= 2;
        if (this.inputs & 0x40 && !(inputs & 0x40)) this.deltas |= 4;
        if (changed & 0x80) this.deltas |= 8;
        this.inputs = inputs;
        return;
      }
      case 7:
        this.scr = value;
    }
  }
}

type Op = { op: 'write'; offset: number; value: number } | { op: 'read'; offset: number } | { op: 'send'; bytes: number[] } | { op: 'advance'; ns: number };

const registerValue = fc.oneof(fc.integer({ min: 0, max: 0xff }), fc.constantFrom(0x01, 0x07, 0xc1, 0x41, 0x81, 0x08, 0x0b, 0x18, 0x1f, 0x0f, 0x02));
// LCR mostly without DLAB, so the other registers stay reachable.
const lineControl = fc.oneof({ arbitrary: fc.constantFrom(0x03, 0x02, 0x1b, 0x07), weight: 4 }, { arbitrary: fc.integer({ min: 0, max: 0xff }), weight: 1 });
const write = fc.oneof(
  fc.record({ op: fc.constant('write' as const), offset: fc.constantFrom(0, 1, 2, 4, 5, 6, 7), value: registerValue }),
  fc.record({ op: fc.constant('write' as const), offset: fc.constant(3), value: lineControl }),
);
const op: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: write, weight: 5 },
  { arbitrary: fc.record({ op: fc.constant('read' as const), offset: fc.oneof(fc.constantFrom(0, 2, 2, 5), fc.integer({ min: 0, max: 7 })) }), weight: 6 },
  { arbitrary: fc.record({ op: fc.constant('send' as const), bytes: fc.array(fc.integer({ min: 0, max: 0xff }), { minLength: 1, maxLength: 20 }) }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('advance' as const), ns: fc.oneof(fc.nat(200_000), fc.nat(20_000_000)) }), weight: 2 },
);

function apply(uart: Uart, pipe: PipeBackend, clock: ManualClock, o: Op): number | undefined {
  switch (o.op) {
    case 'write':
      uart.write(o.offset, 1, o.value);
      return undefined;
    case 'read':
      return uart.read(o.offset, 1);
    case 'send':
      pipe.send(Uint8Array.from(o.bytes));
      return undefined;
    case 'advance':
      clock.advance(o.ns);
      return undefined;
  }
}

test.prop([fc.array(op, { maxLength: 80, size: 'max' })], { numRuns: 300 })('the UART agrees with a datasheet model on reads, output and IRQ', (ops) => {
  const clock = new ManualClock(0);
  const irq = new RecordingIrqLine();
  const pipe = new PipeBackend();
  const uart = new Uart({ clock, irq, backend: pipe });
  const model = new ModelUart();
  for (const o of ops) {
    const got = apply(uart, pipe, clock, o);
    if (o.op === 'read') expect(got).toBe(model.read(o.offset));
    if (o.op === 'write') model.write(o.offset, o.value);
    if (o.op === 'send') model.host.push(...o.bytes);
    if (o.op === 'advance') model.advance(o.ns);
    model.pump();
    expect(irq.level).toBe(model.irq());
    expect([...pipe.take()]).toEqual(model.output.splice(0));
  }
});

/** Host input fed straight to the frontend as far as it has room, so no input waits in a backend across the save. */
function applyDirect(uart: Uart, pipe: PipeBackend, clock: ManualClock, o: Op): number | undefined {
  if (o.op !== 'send') return apply(uart, pipe, clock, o);
  const room = uart.characterFrontend.receiveCapacity();
  if (room > 0) uart.characterFrontend.receive(Uint8Array.from(o.bytes.slice(0, room)));
  return undefined;
}

test.prop([fc.array(op, { maxLength: 40, size: 'max' }), fc.array(op, { maxLength: 40, size: 'max' })], { numRuns: 200 })('save → restore into a fresh UART → continue equals continue', (before, after) => {
  const clockA = new ManualClock(0);
  const irqA = new RecordingIrqLine();
  const pipeA = new PipeBackend();
  const original = new Uart({ clock: clockA, irq: irqA, backend: pipeA });
  for (const o of before) applyDirect(original, pipeA, clockA, o);
  pipeA.take();
  const clockB = new ManualClock(clockA.now());
  const irqB = new RecordingIrqLine();
  const pipeB = new PipeBackend();
  const copy = new Uart({ clock: clockB, irq: irqB, backend: pipeB });
  copy.restore(JSON.parse(JSON.stringify(original.save())));
  expect(irqB.level).toBe(irqA.level);
  for (const o of after) {
    expect(applyDirect(copy, pipeB, clockB, o)).toBe(applyDirect(original, pipeA, clockA, o));
    expect(irqB.level).toBe(irqA.level);
    expect([...pipeB.take()]).toEqual([...pipeA.take()]);
  }
  expect(copy.save()).toEqual(original.save());
});

test.prop([fc.array(fc.record({ offset: fc.integer({ min: 0, max: 7 }), size: fc.constantFrom(1 as const, 2 as const, 4 as const), value: fc.integer({ min: 0, max: 0xffffffff }), kind: fc.constantFrom('read', 'write', 'send', 'wait') }), { maxLength: 200, size: 'max' })], { numRuns: 200 })(
  'no access sequence or input throws out of the UART',
  (accesses) => {
    const clock = new ManualClock(0);
    const pipe = new PipeBackend();
    const uart = new Uart({ clock, irq: new RecordingIrqLine(), backend: pipe });
    for (const a of accesses) {
      const offset = a.size === 1 ? a.offset : 0;
      if (a.kind === 'write') uart.write(offset, a.size, a.size === 4 ? a.value : a.value & ((1 << (8 * a.size)) - 1));
      else if (a.kind === 'read') expect(uart.read(offset, a.size)).toBeGreaterThanOrEqual(0);
      else if (a.kind === 'send') pipe.send(Uint8Array.of(a.value & 0xff, a.value >>> 24));
      else clock.advance(a.value % 50_000_000);
    }
  },
);
