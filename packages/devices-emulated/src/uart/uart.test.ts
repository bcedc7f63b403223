import { StateError } from '@tsvirt/interfaces';
import { ManualClock, RecordingIrqLine } from '@tsvirt/interfaces/testing';
import { describe, expect, it } from 'vitest';
import { MemoryCharacterBackend as PipeBackend } from '@tsvirt/interfaces/testing';
import { Uart } from './uart.js';

const RBR = 0;
const IER = 1;
const IIR = 2;
const FCR = 2;
const LCR = 3;
const MCR = 4;
const LSR = 5;
const MSR = 6;
const SCR = 7;

function setup() {
  const clock = new ManualClock(0);
  const irq = new RecordingIrqLine();
  const pipe = new PipeBackend();
  const uart = new Uart({ clock, irq, backend: pipe });
  const out = (offset: number, value: number) => uart.write(offset, 1, value);
  const inb = (offset: number) => uart.read(offset, 1);
  return { clock, irq, pipe, uart, out, inb };
}

describe('Uart', () => {
  it("passes Linux's 8250 autoconfig as a 16550A", () => {
    const { out, inb } = setup();
    out(SCR, 0xa5);
    expect(inb(SCR)).toBe(0xa5);
    out(IER, 0);
    expect(inb(IER) & 0x0f).toBe(0);
    out(IER, 0x0f);
    expect(inb(IER) & 0x0f).toBe(0x0f);
    out(IER, 0);
    out(MCR, 0x10 | 0x0a); // loopback with RTS and OUT2
    expect(inb(MSR) & 0xf0).toBe(0x90); // CTS and DCD
    out(MCR, 0);
    out(FCR, 0x01);
    expect(inb(IIR) >> 6).toBe(3); // FIFOs enabled: a 16550A
    out(LCR, 0xbf);
    expect(inb(2)).not.toBe(0); // no EFR: it reads IIR
    out(LCR, 0x80);
    out(2, 0x21); // FCR with the 16750's 64-byte bit
    expect((inb(IIR) >> 5) & 7).toBe(6); // not a 16750
  });

  it('raises THRE as serial8250_do_startup tests it and clears it on IIR read', () => {
    const { irq, pipe, out, inb } = setup();
    out(LCR, 0x03); // 8N1
    out(MCR, 0x08); // OUT2 gates the IRQ
    out(IER, 0x02);
    expect(irq.level).toBe(true);
    expect(inb(IIR)).toBe(0x02);
    expect(irq.level).toBe(false);
    expect(inb(IIR)).toBe(0x01);
    out(IER, 0);
    out(IER, 0x02); // re-enabling with THR empty re-raises it
    expect(inb(IIR)).toBe(0x02);
    out(RBR, 0x41);
    expect(pipe.takeText()).toBe('A');
    expect(irq.level).toBe(true); // the byte left: THR empty again
    expect(inb(LSR) & 0x60).toBe(0x60);
  });

  it('delivers received data at the FIFO trigger level, then by character timeout', () => {
    const { clock, pipe, out, inb } = setup();
    out(LCR, 0x03);
    out(MCR, 0x08);
    out(FCR, 0x87); // enable + clear, trigger 8
    out(IER, 0x01);
    pipe.send('1234567');
    expect(inb(IIR)).toBe(0xc1);
    pipe.send('8');
    expect(inb(IIR)).toBe(0xc4);
    expect(inb(RBR)).toBe(0x31);
    expect(inb(IIR)).toBe(0xc1); // 7 left: below the trigger
    // 9600 8N1 (divisor 12): 10 bits x 12 x 16 / 1.8432 MHz = 1.0417 ms per character.
    clock.advance(4_166_000);
    expect(inb(IIR)).toBe(0xc1);
    clock.advance(2_000);
    expect(inb(IIR)).toBe(0xcc);
    expect(inb(RBR)).toBe(0x32); // reading clears the timeout
    expect(inb(IIR)).toBe(0xc1);
  });

  it('prioritises line status > received data > THRE > modem status', () => {
    const { irq, out, inb, uart } = setup();
    out(FCR, 0x01);
    out(MCR, 0x08);
    out(IER, 0x0f);
    // Fill the FIFO from the host, then overrun it through loopback.
    uart.characterFrontend.receive(new Uint8Array(16).fill(0x55));
    out(MCR, 0x18);
    out(RBR, 0x66); // FIFO full: overrun
    out(MCR, 0x0b); // leave loopback; DSR, CTS, DCD change
    expect(irq.level).toBe(true);
    expect(inb(IIR)).toBe(0xc6);
    expect(inb(LSR) & 0x03).toBe(0x03); // OE and DR; reading clears OE
    expect(inb(IIR)).toBe(0xc4);
    for (let i = 0; i < 16; i++) expect(inb(RBR)).toBe(0x55);
    expect(inb(IIR)).toBe(0xc2);
    expect(inb(IIR)).toBe(0xc0);
    expect(inb(MSR) & 0x0f).not.toBe(0);
    expect(inb(IIR)).toBe(0xc1);
    expect(irq.level).toBe(false);
  });

  it('maps MCR to MSR in loopback with delta bits and TERI on the trailing edge', () => {
    const { out, inb, pipe } = setup();
    out(MCR, 0x10);
    expect(inb(MSR)).toBe(0x0b); // CTS, DSR, DCD dropped
    out(MCR, 0x10 | 0x04); // OUT1 -> RI
    expect(inb(MSR)).toBe(0x40);
    out(MCR, 0x10);
    expect(inb(MSR)).toBe(0x04); // TERI
    out(MCR, 0x10 | 0x01);
    expect(inb(MSR)).toBe(0x22);
    out(LCR, 0x02); // 7 data bits
    out(RBR, 0xff);
    expect(inb(LSR) & 0x01).toBe(1);
    expect(inb(RBR)).toBe(0x7f);
    expect(pipe.take().length).toBe(0); // loopback sends nothing out
  });

  it('keeps the IRQ low without OUT2 while IIR still reports', () => {
    const { irq, out, inb } = setup();
    out(IER, 0x02);
    expect(irq.level).toBe(false);
    expect(inb(IIR)).toBe(0x02);
  });

  it('switches offsets 0 and 1 to the divisor latch with DLAB', () => {
    const { out, inb } = setup();
    out(IER, 0x05);
    out(LCR, 0x83);
    out(0, 0x01);
    out(1, 0x00); // 115200 baud
    expect([inb(0), inb(1)]).toEqual([0x01, 0x00]);
    out(LCR, 0x03);
    expect(inb(IER)).toBe(0x05);
  });

  it('pushes back on the backend through receiveCapacity', () => {
    const { pipe, out, inb } = setup();
    out(FCR, 0x01);
    pipe.send(new Uint8Array(100).map((_, i) => i));
    expect(pipe.pendingInput).toBe(84);
    expect(inb(LSR) & 0x02).toBe(0); // no overrun
    const got: number[] = [];
    while (inb(LSR) & 1) got.push(inb(RBR));
    expect(got).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it('overruns the single holding register without FIFOs, keeping the newest byte', () => {
    const { uart, inb } = setup();
    uart.characterFrontend.receive(Uint8Array.of(1));
    expect(uart.characterFrontend.receiveCapacity()).toBe(0);
    uart.characterFrontend.receive(Uint8Array.of(2));
    expect(inb(LSR) & 0x03).toBe(0x03);
    expect(inb(RBR)).toBe(2);
  });

  it('rejects malformed saved state and keeps its own', () => {
    const { uart, out } = setup();
    out(IER, 0x03);
    const saved = uart.save();
    expect(() => uart.restore({ ...saved, version: 2 })).toThrow(StateError);
    expect(() => uart.restore({ ...saved, fcr: 0x02 })).toThrow(StateError);
    expect(() => uart.restore({ ...saved, rx: 'AAAA' })).toThrow(StateError); // 3 bytes without FIFO
    expect(() => uart.restore({ ...saved, ier: 0x10 })).toThrow(StateError);
    expect(uart.save()).toEqual(saved);
  });
});
