import { describe, expect, it } from 'vitest';
import { PC_TESTDEV_IRQ_LINES, PcTestdev } from './pc-testdev.js';
import { PCI_TESTDEV_IDENTITY, PciTestdev } from './pci-testdev.js';

describe('pc-testdev', () => {
  it('keeps a 32-bit scratch register any width reads and writes, at any byte offset', () => {
    const device = new PcTestdev({ irqLines: [] });
    device.dataPort.write(0, 4, 0x1234_5678);
    expect(device.dataPort.read(0, 4)).toBe(0x1234_5678);
    expect(device.dataPort.read(1, 2)).toBe(0x3456);
    device.dataPort.write(3, 1, 0xab);
    expect(device.dataPort.read(0, 4)).toBe(0xab34_5678);
    device.dataPort.write(2, 4, 0xffff_cdef); // past the register's end: only its low half lands
    expect(device.dataPort.read(0, 4)).toBe(0xcdef_5678);
  });

  it('raises and lowers interrupt line n from port 0x2000 + n; its memory reads back what was written', () => {
    const levels: string[] = [];
    const irqLines = Array.from({ length: PC_TESTDEV_IRQ_LINES }, (_, line) => ({ setLevel: (asserted: boolean) => void levels.push(`${line}:${asserted}`), pulse: () => {} }));
    const device = new PcTestdev({ irqLines });
    device.irqPorts.write(11, 1, 1);
    device.irqPorts.write(11, 1, 0);
    device.irqPorts.write(23, 1, 5);
    expect(levels).toEqual(['11:true', '11:false', '23:true']);
    device.mmio.write(0xfffc, 4, 0xdead_beef);
    expect(device.mmio.read(0xfffe, 2)).toBe(0xdead);
    expect(device.mmio.read(0xfffc, 1)).toBe(0xef);
  });
});

describe('pci-testdev', () => {
  const readName = (device: PciTestdev, bar: 0 | 1) => {
    const region = device.bars[bar]!.device;
    let name = '';
    for (let offset = 16; ; offset++) {
      const byte = region.read(offset, 1);
      if (byte === 0) return name;
      name += String.fromCharCode(byte);
    }
  };

  it("is Red Hat's test device with a memory and an I/O BAR, each holding three tests selected by writing offset 0", () => {
    const device = new PciTestdev();
    expect(device.identity).toBe(PCI_TESTDEV_IDENTITY);
    expect(device.bars.map((bar) => bar?.kind)).toEqual(['memory32', 'io']);
    const memory = device.bars[0]!.device;
    memory.write(0, 1, 2);
    expect(readName(device, 0)).toBe('mmio-datamatch-eventfd');
    const io = device.bars[1]!.device;
    io.write(0, 1, 0);
    expect(readName(device, 1)).toBe('portio-no-eventfd');
    expect(io.read(1, 1)).toBe(1); // width
  });

  it('counts the writes a data-matching test accepts: its offset, its data', () => {
    const device = new PciTestdev();
    const memory = device.bars[0]!.device;
    memory.write(0, 1, 2); // mmio-datamatch-eventfd
    const offset = memory.read(4, 4);
    const data = memory.read(8, 1);
    memory.write(offset, 1, data);
    memory.write(offset, 1, data ^ 1);
    memory.write(offset, 1, data);
    expect(memory.read(12, 4)).toBe(2);
  });
});
