import { describe, expect, it } from 'vitest';
import { StateError, guestAddress } from '@tsvirt/interfaces';
import { TestPciDevice } from '../testing/platform.js';
import { createPcPciFixture as makePcPci } from '../testing/platform.js';

describe('configuration mechanism #1', () => {
  it('finds the i440FX at 00:00.0 and the PIIX3 at 00:01.0', () => {
    const pc = makePcPci();
    expect(pc.read(0, 0, 0)).toBe(0x1237_8086);
    expect(pc.read(0, 0, 0x08)).toBe(0x0600_0002); // class 06/00/00, revision 2
    expect(pc.read(1, 0, 0)).toBe(0x7000_8086);
    expect(pc.read(1, 0, 0x0e, 1)).toBe(0x80); // multifunction, header type 0
    expect(pc.read(1, 0, 0x08) >>> 8).toBe(0x06_01_00);
  });

  it('serves byte and word accesses at the right byte lanes', () => {
    const pc = makePcPci();
    expect(pc.read(0, 0, 0x02, 2)).toBe(0x1237);
    expect(pc.read(0, 0, 0x03, 1)).toBe(0x12);
    expect(pc.read(0, 0, 0x01, 1)).toBe(0x80);
    pc.write(0, 0, 0x5a, 1, 0x33);
    expect(pc.read(0, 0, 0x58)).toBe(0x0033_0000);
  });

  it('reads all-ones with the enable bit clear, for absent functions and on other buses', () => {
    const pc = makePcPci();
    pc.pio.write(0xcf8, 4, 0x0000_0000);
    expect(pc.pio.read(0xcfc, 4)).toBe(0xffff_ffff);
    expect(pc.read(5, 0, 0)).toBe(0xffff_ffff);
    expect(pc.read(0, 3, 0, 2)).toBe(0xffff);
    pc.pio.write(0xcf8, 4, 0x8001_0000);
    expect(pc.pio.read(0xcfc, 4)).toBe(0xffff_ffff);
  });

  it('keeps CONFADD as Linux probes it and ignores non-dword writes to 0xCF8', () => {
    const pc = makePcPci();
    pc.pio.write(0xcf8, 4, 0x8000_0000);
    expect(pc.pio.read(0xcf8, 4)).toBe(0x8000_0000);
    pc.pio.write(0xcf8, 1, 0x12);
    expect(pc.pio.read(0xcf8, 4)).toBe(0x8000_0000);
    pc.pio.write(0xcf8, 4, 0xffff_ffff);
    expect(pc.pio.read(0xcf8, 4)).toBe(0x80ff_fffc); // reserved bits 30:24 and 1:0 read 0
  });

  it('forwards byte accesses at 0xCF9 to the reset control register', async () => {
    const { PciConfigMechanism } = await import('./config-mechanism.js');
    const pc = makePcPci();
    const seen: number[] = [];
    const mechanism = new PciConfigMechanism(pc.bus, { resetControl: { read: () => 0x02, write: (_o, _s, v) => seen.push(v) } });
    mechanism.addressPort.write(1, 1, 0x06);
    expect(seen).toEqual([0x06]);
    expect(mechanism.addressPort.read(1, 1)).toBe(0x02);
  });
});

describe('PCI header', () => {
  it('sizes BARs as Linux does and places them when decoding is enabled', () => {
    const pc = makePcPci();
    const device = new TestPciDevice({
      bars: [
        { kind: 'io', size: 0x40 },
        { kind: 'memory32', size: 0x1000 },
        { kind: 'memory64', size: 0x4000, prefetchable: true },
        undefined,
      ],
    });
    pc.bus.plug(device, 3);
    expect(pc.read(3, 0, 0x10)).toBe(0x1);
    expect(pc.read(3, 0, 0x18)).toBe(0xc);
    // Linux __pci_read_base: decoding off, write all-ones, read the mask, restore.
    const sizes: number[] = [];
    for (const offset of [0x10, 0x14, 0x18, 0x1c]) {
      const original = pc.read(3, 0, offset);
      pc.write(3, 0, offset, 4, 0xffff_ffff);
      sizes.push(pc.read(3, 0, offset));
      pc.write(3, 0, offset, 4, original);
    }
    expect(sizes).toEqual([0xffff_ffc1, 0xffff_f000, 0xffff_c00c, 0xffff_ffff]);
    expect(pc.events.filter((e) => e.kind === 'bar-mapped')).toEqual([]);

    pc.write(3, 0, 0x10, 4, 0xc000);
    pc.write(3, 0, 0x14, 4, 0xfebf_0000);
    pc.write(3, 0, 0x18, 4, 0x0000_0000);
    pc.write(3, 0, 0x1c, 4, 0x1);
    pc.write(3, 0, 0x04, 2, 0x0003);
    pc.pio.write(0xc004, 4, 0xdead_beef);
    expect(device.barRegisters[0]!.bytes[4]).toBe(0xef);
    pc.mmio.write(guestAddress(0xfebf_0010), 4, 0x1234_5678);
    expect(pc.mmio.read(guestAddress(0xfebf_0010), 2)).toBe(0x5678);
    expect(pc.mmio.claims(guestAddress(0x1_0000_0000))).toBe(true);

    // Memory decoding off: the memory BARs leave the bus, the I/O BAR stays.
    pc.write(3, 0, 0x04, 2, 0x0001);
    expect(pc.mmio.claims(guestAddress(0xfebf_0000))).toBe(false);
    expect(pc.mmio.claims(guestAddress(0x1_0000_0000))).toBe(false);
    expect(pc.pio.read(0xc004, 1)).toBe(0xef);
    // Moving the I/O BAR moves its decoding.
    pc.write(3, 0, 0x10, 4, 0xd000);
    expect(pc.pio.read(0xc004, 1)).toBe(0xff);
    expect(pc.pio.read(0xd004, 1)).toBe(0xef);
  });

  it('sizes a BAR larger than 4 GiB through both halves', () => {
    const pc = makePcPci();
    pc.bus.plug(new TestPciDevice({ bars: [{ kind: 'memory64', size: 2 ** 33 }, undefined] }), 4);
    pc.write(4, 0, 0x10, 4, 0xffff_ffff);
    pc.write(4, 0, 0x14, 4, 0xffff_ffff);
    expect(pc.read(4, 0, 0x10)).toBe(0x4);
    expect(pc.read(4, 0, 0x14)).toBe(0xffff_fffe);
  });

  it('applies the command write mask and the RW1C status bits', () => {
    const pc = makePcPci();
    const device = new TestPciDevice();
    const fn = pc.bus.plug(device, 2);
    pc.write(2, 0, 0x04, 4, 0xffff_ffff);
    expect(pc.read(2, 0, 0x04, 2)).toBe(0x0507);
    fn.raiseStatus(0x2000 | 0x8000);
    expect(pc.read(2, 0, 0x06, 2)).toBe(0xa000);
    pc.write(2, 0, 0x06, 2, 0x2000);
    expect(pc.read(2, 0, 0x06, 2)).toBe(0x8000);
    // Read-only identity fields ignore writes.
    pc.write(2, 0, 0x00, 4, 0);
    expect(pc.read(2, 0, 0x00)).toBe(0x5678_1234);
  });

  it('drives INTx through PIRQ swizzling and honours InterruptDisable', () => {
    const pc = makePcPci();
    const device = new TestPciDevice({ interruptPin: 1 });
    pc.bus.plug(device, 3);
    // Slot 3 INTA -> PIRQC (register 0x62), as QEMU's pc machine swizzles.
    pc.write(1, 0, 0x62, 1, 11);
    expect(pc.read(3, 0, 0x3d, 1)).toBe(1);
    device.context!.setIntx(true);
    expect(pc.isaIrqs[11]!.level).toBe(true);
    expect(pc.read(3, 0, 0x06, 2) & 0x08).toBe(0x08);
    pc.write(3, 0, 0x04, 2, 0x0400);
    expect(pc.isaIrqs[11]!.level).toBe(false);
    expect(pc.read(3, 0, 0x06, 2) & 0x08).toBe(0x08);
    pc.write(3, 0, 0x04, 2, 0x0000);
    expect(pc.isaIrqs[11]!.level).toBe(true);
    // Rerouting PIRQC moves the level; disabling the route drops it.
    pc.write(1, 0, 0x62, 1, 10);
    expect(pc.isaIrqs[11]!.level).toBe(false);
    expect(pc.isaIrqs[10]!.level).toBe(true);
    pc.write(1, 0, 0x62, 1, 0x80);
    expect(pc.isaIrqs[10]!.level).toBe(false);
  });

  it('wire-ORs two functions sharing a PIRQ', () => {
    const pc = makePcPci();
    const a = new TestPciDevice({ interruptPin: 1 });
    const b = new TestPciDevice({ interruptPin: 4 });
    pc.bus.plug(a, 4); // INTA slot 4 -> PIRQD
    pc.bus.plug(b, 5); // INTD slot 5 -> (3 + 4) & 3 = PIRQD
    pc.write(1, 0, 0x63, 1, 5);
    a.context!.setIntx(true);
    b.context!.setIntx(true);
    a.context!.setIntx(false);
    expect(pc.isaIrqs[5]!.level).toBe(true);
    b.context!.setIntx(false);
    expect(pc.isaIrqs[5]!.level).toBe(false);
  });

  it('walks a capability list and delivers MSI with per-vector masking', () => {
    const pc = makePcPci();
    const device = new TestPciDevice({ capabilities: [{ kind: 'power-management' }, { kind: 'msi', vectors: 4, address64: true, perVectorMask: true }] });
    pc.bus.plug(device, 6);
    expect(pc.read(6, 0, 0x06, 2) & 0x10).toBe(0x10);
    const first = pc.read(6, 0, 0x34, 1);
    expect(pc.read(6, 0, first, 1)).toBe(0x01);
    const msi = pc.read(6, 0, first + 1, 1);
    expect(pc.read(6, 0, msi, 1)).toBe(0x05);
    expect(pc.read(6, 0, msi + 1, 1)).toBe(0);
    // Message control: 4 vectors capable (MMC=2), 64-bit, per-vector masking.
    expect(pc.read(6, 0, msi + 2, 2)).toBe(0x0184);
    pc.write(6, 0, msi + 4, 4, 0xfee0_1003);
    pc.write(6, 0, msi + 8, 4, 0);
    pc.write(6, 0, msi + 0x0c, 2, 0x4041);
    pc.write(6, 0, msi + 0x10, 4, 0x2); // mask vector 1
    pc.write(6, 0, msi + 2, 2, 0x0021); // enable, 4 vectors
    expect(device.context!.interruptMode()).toBe('msi');
    device.context!.signalMsi(0);
    expect(pc.msi.messages).toEqual([]); // bus master off
    pc.write(6, 0, 0x04, 2, 0x0004);
    device.context!.signalMsi(0);
    device.context!.signalMsi(1);
    device.context!.signalMsi(3);
    expect(pc.msi.messages).toEqual([
      { address: 0xfee0_1000, data: 0x4040 },
      { address: 0xfee0_1000, data: 0x4043 },
    ]);
    expect(pc.read(6, 0, msi + 0x14)).toBe(0x2);
    pc.write(6, 0, msi + 0x10, 4, 0);
    expect(pc.msi.messages.at(-1)).toEqual({ address: 0xfee0_1000, data: 0x4041 });
    expect(pc.read(6, 0, msi + 0x14)).toBe(0);
  });

  it('serves the MSI-X table and PBA inside the named BAR', () => {
    const pc = makePcPci();
    const device = new TestPciDevice({
      bars: [{ kind: 'memory32', size: 0x1000 }],
      capabilities: [{ kind: 'msix', vectors: 3, tableBar: 0, tableOffset: 0x800, pbaBar: 0, pbaOffset: 0xc00 }],
    });
    pc.bus.plug(device, 7);
    const cap = pc.read(7, 0, 0x34, 1);
    expect(pc.read(7, 0, cap, 1)).toBe(0x11);
    expect(pc.read(7, 0, cap + 2, 2)).toBe(2);
    expect(pc.read(7, 0, cap + 4)).toBe(0x800);
    expect(pc.read(7, 0, cap + 8)).toBe(0xc00);
    pc.write(7, 0, 0x10, 4, 0xfe00_0000);
    pc.write(7, 0, 0x04, 2, 0x0006);
    const table = (vector: number, field: number) => guestAddress(0xfe00_0800 + vector * 16 + field);
    expect(pc.mmio.read(table(1, 12), 4)).toBe(1); // masked at reset
    pc.mmio.write(table(1, 0), 4, 0xfee0_0000);
    pc.mmio.write(table(1, 8), 4, 0x31);
    pc.write(7, 0, cap + 2, 2, 0xc000); // enable + function mask
    device.context!.signalMsi(1);
    expect(pc.msi.messages).toEqual([]);
    expect(pc.mmio.read(guestAddress(0xfe00_0c00), 4)).toBe(0x2);
    pc.mmio.write(guestAddress(0xfe00_0c00), 4, 0); // PBA is read-only
    expect(pc.mmio.read(guestAddress(0xfe00_0c00), 4)).toBe(0x2);
    pc.write(7, 0, cap + 2, 2, 0x8000); // function unmask: vector 1 still masked
    expect(pc.msi.messages).toEqual([]);
    pc.mmio.write(table(1, 12), 4, 0);
    expect(pc.msi.messages).toEqual([{ address: 0xfee0_0000, data: 0x31 }]);
    expect(pc.mmio.read(guestAddress(0xfe00_0c00), 4)).toBe(0);
    // The rest of the BAR still reaches the device.
    pc.mmio.write(guestAddress(0xfe00_0010), 4, 0xabcd);
    expect(device.barRegisters[0]!.bytes[0x10]).toBe(0xcd);
  });

  it('passes device-specific registers to the device and defaults them to the device', () => {
    const pc = makePcPci();
    const device = new TestPciDevice();
    pc.bus.plug(device, 8);
    expect(pc.read(8, 0, 0x40)).toBe(0x4342_4140);
    pc.write(8, 0, 0x42, 2, 0xbeef);
    expect(device.configWrites).toEqual([{ offset: 0x42, size: 2, value: 0xbeef }]);
  });

  it('announces hot-add and hot-remove, and unplugging frees BARs and INTx', () => {
    const pc = makePcPci();
    const seen: string[] = [];
    pc.bus.onHotplug((event) => seen.push(`${event.kind}:${event.slot}.${event.fn}`));
    const device = new TestPciDevice({ bars: [{ kind: 'io', size: 0x10 }] });
    pc.bus.plug(device, 9);
    pc.write(1, 0, 0x60, 1, 9); // slot 9 INTA -> (0 + 8) & 3 = PIRQA
    pc.write(9, 0, 0x10, 4, 0xe000);
    pc.write(9, 0, 0x04, 2, 1);
    device.context!.setIntx(true);
    expect(pc.isaIrqs[9]!.level).toBe(true);
    pc.bus.unplug(9);
    expect(seen).toEqual(['hot-added:9.0', 'hot-removed:9.0']);
    expect(pc.isaIrqs[9]!.level).toBe(false);
    expect(pc.pio.read(0xe000, 1)).toBe(0xff);
    expect(pc.read(9, 0, 0)).toBe(0xffff_ffff);
  });

  it('sets the multifunction bit of function 0 when other functions join', () => {
    const pc = makePcPci();
    pc.bus.plug(new TestPciDevice(), 10, 0);
    expect(pc.read(10, 0, 0x0e, 1)).toBe(0);
    pc.bus.plug(new TestPciDevice(), 10, 2);
    expect(pc.read(10, 0, 0x0e, 1)).toBe(0x80);
  });

  it('refuses a BAR placement that collides, without throwing to the guest', () => {
    const pc = makePcPci();
    pc.bus.plug(new TestPciDevice({ bars: [{ kind: 'io', size: 0x10 }] }), 11);
    pc.write(11, 0, 0x10, 4, 0xcf0); // overlaps the config ports
    pc.write(11, 0, 0x04, 2, 1);
    expect(pc.events.some((e) => e.kind === 'bar-conflict')).toBe(true);
    expect(pc.read(0, 0, 0)).toBe(0x1237_8086);
  });
});

describe('i440FX and PIIX3 registers', () => {
  it('stores PAM registers with their reserved bits clear', () => {
    const pc = makePcPci();
    pc.write(0, 0, 0x59, 1, 0xff);
    pc.write(0, 0, 0x5c, 4, 0xffff_ffff);
    expect(pc.read(0, 0, 0x58)).toBe(0x0000_3000);
    expect(pc.read(0, 0, 0x5c)).toBe(0x3333_3333);
    expect(pc.hostBridge.memoryMap.pam).toEqual([0x30, 0, 0, 0x33, 0x33, 0x33, 0x33]);
  });

  it('locks SMRAM with D_LCK until reset', () => {
    const pc = makePcPci();
    expect(pc.read(0, 0, 0x72, 1)).toBe(0x02);
    pc.write(0, 0, 0x72, 1, 0x4a); // D_OPEN | G_SMRAME
    expect(pc.read(0, 0, 0x72, 1)).toBe(0x4a);
    pc.write(0, 0, 0x72, 1, 0x5a); // set D_LCK: D_OPEN closes
    expect(pc.read(0, 0, 0x72, 1)).toBe(0x1a);
    pc.write(0, 0, 0x72, 1, 0x40);
    expect(pc.read(0, 0, 0x72, 1)).toBe(0x1a);
    pc.bus.reset();
    expect(pc.read(0, 0, 0x72, 1)).toBe(0x02);
  });

  it('resets PIRQ routes to disabled and masks ELCR bits of edge-only IRQs', () => {
    const pc = makePcPci();
    expect(pc.read(1, 0, 0x60)).toBe(0x8080_8080);
    pc.write(1, 0, 0x60, 4, 0xffff_ffff);
    expect(pc.read(1, 0, 0x60)).toBe(0x8f8f_8f8f);
    pc.pio.write(0x4d0, 2, 0xffff);
    expect(pc.pio.read(0x4d0, 2)).toBe(0xdef8);
    expect(pc.elcrMasks.at(-1)).toBe(0xdef8);
    pc.pio.write(0x4d1, 1, 0x0e);
    expect(pc.piix3.levelTriggered).toBe(0x0ef8);
  });
});

describe('PCI state', () => {
  it('restores into a fresh platform: config, placements, MSI-X table', () => {
    const build = () => {
      const pc = makePcPci();
      const device = new TestPciDevice({
        bars: [{ kind: 'memory32', size: 0x1000 }],
        capabilities: [{ kind: 'msix', vectors: 2, tableBar: 0, tableOffset: 0x800, pbaBar: 0, pbaOffset: 0xc00 }],
      });
      pc.bus.plug(device, 3);
      return { pc, device };
    };
    const a = build();
    a.pc.write(3, 0, 0x10, 4, 0xfd00_0000);
    a.pc.write(3, 0, 0x04, 2, 0x0006);
    a.pc.mmio.write(guestAddress(0xfd00_0808), 4, 0x77);
    a.pc.write(1, 0, 0x62, 1, 11);
    a.device.context!.setIntx(true);
    const b = build();
    b.pc.bus.restore(JSON.parse(JSON.stringify(a.pc.bus.save())));
    b.pc.piix3.restore(JSON.parse(JSON.stringify(a.pc.piix3.save())));
    b.pc.mechanism.restore(a.pc.mechanism.save());
    for (let offset = 0; offset < 0x100; offset += 4) expect(b.pc.read(3, 0, offset)).toBe(a.pc.read(3, 0, offset));
    expect(b.pc.mmio.read(guestAddress(0xfd00_0808), 4)).toBe(0x77);
    expect(b.pc.isaIrqs[11]!.level).toBe(true);
  });

  it('rejects invalid state with StateError and changes nothing', () => {
    const pc = makePcPci();
    pc.bus.plug(new TestPciDevice(), 3);
    const good = pc.bus.save();
    expect(() => pc.bus.restore({ ...good, version: 2 })).toThrow(StateError);
    expect(() => pc.bus.restore({ version: 1, functions: good.functions.slice(1) })).toThrow(StateError);
    const bad = JSON.parse(JSON.stringify(good)) as { functions: Array<{ state: { config: string } }> };
    bad.functions[2]!.state.config = 'AAAA';
    expect(() => pc.bus.restore(bad)).toThrow(StateError);
    expect(() => pc.piix3.restore({ version: 1, registers: 'x', elcr: [0, 0] })).toThrow(StateError);
    expect(() => pc.piix3.restore({ ...pc.piix3.save(), elcr: [0x01, 0] })).toThrow(StateError);
    expect(() => pc.hostBridge.restore({ version: 1, registers: '' })).toThrow(StateError);
    expect(() => pc.mechanism.restore({ version: 1, address: 0x0100_0000 })).toThrow(StateError);
    expect(pc.read(0, 0, 0)).toBe(0x1237_8086);
  });

  it('restores only writable bits: saved identity fields cannot be forged', () => {
    const pc = makePcPci();
    pc.bus.plug(new TestPciDevice(), 3);
    const state = pc.bus.save();
    const forged = JSON.parse(JSON.stringify(state)) as { functions: Array<{ slot: number; state: { config: string } }> };
    const entry = forged.functions.find((f) => f.slot === 3)!;
    const bytes = Buffer.from(entry.state.config, 'base64');
    bytes[0] = 0xaa;
    entry.state.config = bytes.toString('base64');
    pc.bus.restore(forged);
    expect(pc.read(3, 0, 0, 2)).toBe(0x1234);
  });
});
