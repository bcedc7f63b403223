import { guestAddress as a } from '@tsvirt/interfaces';
import { ManualClock, MemoryCharacterBackend as PipeBackend } from '@tsvirt/interfaces/testing';
import { GuestRam } from '@tsvirt/memory';
import { describe, expect, it } from 'vitest';
import { buildAcpiTables, defaultAcpiConfig } from '../firmware/acpi/tables.js';
import { pcRamRegions } from '../machine-layout.js';
import { PcPlatform, type PcPlatformOptions } from './pc-platform.js';

function platform(extra: Partial<PcPlatformOptions> = {}) {
  const clock = new ManualClock();
  const serial = new PipeBackend();
  const events: string[] = [];
  const memory = new GuestRam({ regions: pcRamRegions(64 << 20) });
  const pc = new PcPlatform({
    memory,
    clock,
    ramBelow4G: 64 << 20,
    ramAbove4G: 0,
    serial,
    startTime: Date.UTC(2026, 0, 2, 3, 4, 5),
    tscFrequencyHz: 1e9,
    onReset: (source) => events.push(`reset ${source}`),
    onPowerOff: () => events.push('power-off'),
    onDebugExit: (status) => events.push(`exit ${status}`),
    ...extra,
  });
  const configRead = (slot: number, fn: number, offset: number) => {
    pc.io.write(0xcf8, 4, (0x8000_0000 | (slot << 11) | (fn << 8) | offset) >>> 0);
    return pc.io.read(0xcfc, 4);
  };
  return { pc, clock, serial, events, memory, configRead };
}

describe('PcPlatform', () => {
  it('presents the i440FX and the PIIX3 at 00:00.0 and 00:01.0 with the PIRQs routed', () => {
    const { configRead } = platform();
    expect(configRead(0, 0, 0)).toBe(0x1237_8086);
    expect(configRead(1, 0, 0)).toBe(0x7000_8086);
    expect((configRead(1, 0, 0x0c) >>> 16) & 0x80).toBe(0x80); // multifunction
    expect(configRead(1, 0, 0x60)).toBe(0x0b0b_0a0a); // PIRQA-D -> IRQ 10, 10, 11, 11
    expect(configRead(2, 0, 0)).toBe(0xffff_ffff); // empty slot
  });

  it('sends what the guest writes to COM1 to the serial backend', () => {
    const { pc, serial } = platform();
    pc.io.write(0x3fb, 1, 0x03); // LCR: 8 data bits (at reset a 16550 sends 5-bit characters)
    for (const byte of new TextEncoder().encode('hi\n')) pc.io.write(0x3f8, 1, byte);
    expect(serial.takeText()).toBe('hi\n');
    expect(pc.io.read(0x3fd, 1) & 0x60).toBe(0x60); // LSR: THRE and TEMT
  });

  it('delivers the PIT tick on IRQ 0 through the PIC as the programmed vector', () => {
    const { pc, clock } = platform();
    // Linux's init_8259A: vectors 0x30 and 0x38, cascade on IRQ 2, 8086 mode; unmask IRQ 0 only.
    for (const [port, value] of [[0x20, 0x11], [0x21, 0x30], [0x21, 0x04], [0x21, 0x01], [0xa0, 0x11], [0xa1, 0x38], [0xa1, 0x02], [0xa1, 0x01], [0x21, 0xfe], [0xa1, 0xff]] as const) pc.io.write(port, 1, value);
    // PIT channel 0, mode 2, count 1193 (1 ms).
    pc.io.write(0x43, 1, 0x34);
    pc.io.write(0x40, 1, 1193 & 0xff);
    pc.io.write(0x40, 1, 1193 >> 8);
    expect(pc.pic.pending()).toBe(false);
    clock.advance(1_100_000);
    expect(pc.pic.pending()).toBe(true);
    expect(pc.pic.acknowledge()).toBe(0x30);
  });

  it('routes FERR# to IRQ 13, and a write to port 0xF0 clears it and asserts IGNNE# until FERR# goes away', () => {
    const { pc } = platform();
    for (const [port, value] of [[0x20, 0x11], [0x21, 0x30], [0x21, 0x04], [0x21, 0x01], [0xa0, 0x11], [0xa1, 0x38], [0xa1, 0x02], [0xa1, 0x01], [0x21, 0xfb], [0xa1, 0xdf]] as const) pc.io.write(port, 1, value);
    const ignne: boolean[] = [];
    pc.attachProcessor(0, { nmi() {}, init() {}, startup() {}, wake() {}, ignoreNumericError: (asserted) => ignne.push(asserted) });
    pc.floatingPointError.setLevel(true);
    expect(pc.pic.pending()).toBe(true);
    expect(pc.pic.acknowledge()).toBe(0x38 + 5); // IRQ 13 is the slave's input 5
    pc.io.write(0xf0, 1, 0);
    expect(ignne).toEqual([true]);
    pc.floatingPointError.setLevel(false);
    expect(ignne).toEqual([true, false]);
  });

  it('reports the RTC time and the memory size in CMOS', () => {
    const { pc } = platform();
    const cmos = (index: number) => {
      pc.io.write(0x70, 1, index);
      return pc.io.read(0x71, 1);
    };
    expect(cmos(0x00)).toBe(0x05); // seconds, BCD
    expect(cmos(0x04)).toBe(0x03); // hours
    expect(cmos(0x09)).toBe(0x26); // year
    // Extended memory above 1 MiB in KiB: 63 MiB.
    expect(cmos(0x17) | (cmos(0x18) << 8)).toBe(63 * 1024);
  });

  it('turns guest requests into reset, power-off and debug-exit events', () => {
    const { pc, events } = platform();
    pc.io.write(0xcf9, 1, 0x06);
    pc.io.write(0x64, 1, 0xfe);
    pc.io.write(0x92, 1, 0x01);
    pc.io.write(0xf4, 1, 0x10);
    // ACPI S5: SLP_TYP 0 with SLP_EN in PM1a_CNT.
    pc.io.write(0x604, 2, 1 << 13);
    expect(events).toEqual(['reset 0xcf9 hard', 'reset i8042', 'reset port 0x92', 'exit 33', 'power-off']);
  });

  it("describes in the MADT exactly the ISA IRQs the platform wires level-triggered (the ELCR)", () => {
    const { pc } = platform();
    const elcr = pc.io.read(0x4d0, 1) | (pc.io.read(0x4d1, 1) << 8);
    const tables = buildAcpiTables(defaultAcpiConfig, 0xe_0000);
    const offset = tables.addresses.APIC! - tables.base;
    const view = new DataView(tables.bytes.buffer, tables.bytes.byteOffset + offset);
    const levelOverrides: number[] = [];
    for (let at = 44; at < view.getUint32(4, true); at += view.getUint8(at + 1)) {
      // Interrupt source override: bus IRQ at +3, GSI at +4, flags at +8 (trigger mode bits 3:2 = 3 means level).
      if (view.getUint8(at) !== 2 || ((view.getUint16(at + 8, true) >> 2) & 3) !== 3) continue;
      expect(view.getUint32(at + 4, true)).toBe(view.getUint8(at + 3));
      levelOverrides.push(view.getUint8(at + 3));
    }
    const levelIrqs = Array.from({ length: 16 }, (_, irq) => irq).filter((irq) => (elcr >> irq) & 1);
    expect(levelIrqs).toEqual([9, 10, 11]);
    expect(levelOverrides).toEqual(levelIrqs);
  });

  it('leaves the i8042 as SeaBIOS does: translation and keyboard interrupts on, mouse port off', () => {
    const { pc } = platform();
    pc.io.write(0x64, 1, 0x20);
    expect(pc.io.read(0x64, 1) & 1).toBe(1);
    expect(pc.io.read(0x60, 1)).toBe(0x61);
    expect(pc.io.read(0x64, 1) & 1).toBe(0);
  });

  it('answers at the local APIC, IOAPIC and HPET addresses', () => {
    const { pc } = platform();
    expect(pc.mmio.read(a(0xfee0_0030), 4) & 0xff).toBe(0x14); // LAPIC version
    pc.mmio.write(a(0xfec0_0000), 4, 1);
    expect((pc.mmio.read(a(0xfec0_0010), 4) >>> 16) & 0xff).toBe(23); // IOAPIC: 24 redirection entries
    expect(pc.mmio.read(a(0xfed0_0004), 4)).toBe(0x0098_9680); // HPET period: 10 ns in fs
    // The IOAPIC's ID register says what the MADT and MP table say.
    pc.mmio.write(a(0xfec0_0000), 4, 0);
    expect((pc.mmio.read(a(0xfec0_0010), 4) >>> 24) & 0x0f).toBe(defaultAcpiConfig.ioapic.id);
  });

  it('places system-bus devices 0x200 apart from 0xFEB00000, each on its own IOAPIC input from 16', () => {
    const { pc, memory } = platform();
    const devices = [0, 1].map((index) => {
      const accesses: string[] = [];
      const device = {
        length: 0x200,
        registers: { read: (offset: number) => 0x100 * index + offset, write: (offset: number, _size: number, value: number) => void accesses.push(`${offset}=${value}`) },
        memory: undefined as unknown,
        irq: undefined as unknown,
        attach(dma: unknown, irq: unknown) {
          this.memory = dma;
          this.irq = irq;
        },
      };
      return { device, accesses, placed: pc.plugMmioDevice(device, index) };
    });
    expect(devices.map(({ placed }) => placed)).toEqual([{ base: 0xfeb0_0000, length: 0x200, gsi: 16 }, { base: 0xfeb0_0200, length: 0x200, gsi: 17 }]);
    expect(pc.mmio.read(a(0xfeb0_0204), 4)).toBe(0x104);
    pc.mmio.write(a(0xfeb0_0070), 4, 7);
    expect(devices[0]!.accesses).toEqual(['112=7']);
    expect(devices[1]!.device.irq).toBe(pc.ioapic.inputs[17]);
    expect(devices[0]!.device.memory).toBe(memory);
    expect(() => pc.plugMmioDevice({ ...devices[0]!.device, length: 0x1000 }, 2)).toThrow(RangeError);
    expect(() => pc.plugMmioDevice(devices[0]!.device, 8)).toThrow(RangeError);
  });

  it("tells fw_cfg's readers what QEMU tells them: NB_CPUS (key 0x05) is 1, the RAM size and the signature", () => {
    const { pc } = platform();
    const item = (key: number, length: number) => {
      pc.io.write(0x510, 2, key);
      return Array.from({ length }, () => pc.io.read(0x511, 1));
    };
    expect(item(0x00, 4)).toEqual([0x51, 0x45, 0x4d, 0x55]); // "QEMU"
    expect(item(0x05, 2)).toEqual([1, 0]);
    expect(item(0x0f, 2)).toEqual([1, 0]); // MAX_CPUS
    expect(item(0x03, 8)).toEqual([0, 0, 0, 4, 0, 0, 0, 0]); // 64 MiB
  });

  it("places isa-debug-exit where -device isa-debug-exit,iobase=,iosize= says; its status is (value << 1) | 1", () => {
    const { pc, events } = platform({ debugExit: { iobase: 0xf4, iosize: 4 } });
    pc.io.write(0xf4, 4, 1);
    expect(events).toEqual(['exit 3']);
    expect(pc.io.read(0xf8, 1)).toBe(0xff); // nothing past it
  });

  it('adds pc-testdev: a scratch register at 0xE0/0xE8, IRQ lines from 0x2000, memory at 0xFF000000', () => {
    const { pc } = platform({ pcTestdev: true });
    pc.io.write(0xe0, 4, 0x1234_5678);
    expect(pc.io.read(0xe0, 4)).toBe(0x1234_5678);
    expect(pc.io.read(0xe8, 1)).toBe(0x78);
    expect(pc.io.read(0xe2, 2)).toBe(0x1234);
    pc.mmio.write(a(0xff00_0100), 4, 0xdead_beef);
    expect(pc.mmio.read(a(0xff00_0102), 2)).toBe(0xdead);
    // IRQ 11 through the PIC (initialised with vectors 0x70 on the slave, IRQ 11 unmasked).
    for (const [port, value] of [[0x20, 0x11], [0x21, 0x08], [0x21, 4], [0x21, 1], [0x21, 0xfb], [0xa0, 0x11], [0xa1, 0x70], [0xa1, 2], [0xa1, 1], [0xa1, 0xf7]] as const) pc.io.write(port, 1, value);
    pc.io.write(0x200b, 1, 1);
    expect(pc.pic.pending()).toBe(true);
    expect(pc.pic.acknowledge()).toBe(0x73);
    const { pc: without } = platform();
    expect(without.io.read(0xe0, 4)).toBe(0xffff_ffff);
  });
});
