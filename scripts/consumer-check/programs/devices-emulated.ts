/**
 * A consumer of @tsvirt/devices-emulated alone (scripts/consumer-check):
 * drives a 16550A UART as a guest's driver and as the host would — divisor
 * latch, FIFO with a trigger level, interrupt identification, loopback — and
 * moves its saved state through JSON into a second UART.
 */
import assert from 'node:assert/strict';
import type { Clock, IrqLine } from '@tsvirt/interfaces';
import { MemoryCharacterBackend as PipeBackend } from '@tsvirt/interfaces';
import { COM1_BASE, PortIoBus, Uart, UART_LENGTH } from '@tsvirt/devices-emulated';

const THR = 0, IER = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, SCR = 7;
const clock: Clock = { now: () => 0, createTimer: () => ({ deadline: undefined, arm() {}, cancel() {} }) };
let irq4 = false;
const irq: IrqLine = { setLevel: (asserted) => void (irq4 = asserted), pulse: () => {} };
const host = new PipeBackend();
const pio = new PortIoBus();
const uart = new Uart({ clock, irq, backend: host });
pio.register(COM1_BASE, UART_LENGTH, uart, 'com1');
const inb = (register: number): number => pio.read(COM1_BASE + register, 1);
const outb = (register: number, value: number): void => pio.write(COM1_BASE + register, 1, value);

// 115200 baud (divisor 1), 8N1, FIFO on with a trigger level of 4 bytes, receive interrupt, OUT2.
outb(LCR, 0x80);
outb(0, 0x01);
outb(1, 0x00);
outb(LCR, 0x03);
outb(FCR, 0x47); // enable, clear both FIFOs, trigger level 4
outb(IER, 0x01);
outb(MCR, 0x08);
assert.equal(inb(IIR), 0xc1); // FIFOs on, no interrupt pending

for (const byte of new TextEncoder().encode('tsvirt\n')) outb(THR, byte);
assert.equal(host.takeText(), 'tsvirt\n');

host.send('abc');
assert.equal(irq4, false); // below the trigger level (the rest would wait for the character timeout)
assert.equal(inb(LSR) & 0x01, 0x01);
host.send('d');
assert.equal(irq4, true);
assert.equal(inb(IIR), 0xc4); // received data available
assert.equal(String.fromCharCode(inb(THR), inb(THR), inb(THR), inb(THR)), 'abcd');
assert.equal(irq4, false);
assert.equal(inb(LSR) & 0x01, 0);

// Transmitter empty interrupt, as Linux's THRE test provokes it.
outb(IER, 0x03);
assert.equal(irq4, true);
assert.equal(inb(IIR), 0xc2);
assert.equal(irq4, false); // reading IIR cleared it
outb(IER, 0x01);

// Loopback: what the guest sends comes back to it, and nothing reaches the host.
outb(MCR, 0x18);
outb(THR, 0x42);
assert.equal(inb(THR), 0x42);
assert.equal(host.take().length, 0);
outb(MCR, 0x08);

// Saved state is plain data; a second UART continues from it.
outb(SCR, 0x5a);
const saved: unknown = JSON.parse(JSON.stringify(uart.save()));
const copy = new Uart({ clock, irq: { setLevel: () => {}, pulse: () => {} } });
copy.restore(saved);
assert.equal(copy.read(SCR, 1), 0x5a);
assert.equal(copy.read(LCR, 1), 0x03);
console.log('devices-emulated: a 16550A UART driven through its FIFO, interrupts and loopback; state saved and restored');
