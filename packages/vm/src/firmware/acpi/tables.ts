import { PcLayout } from '../../machine-layout.js';
import { Resource, aPackage, concat, device, dword, eisaId, integer, name, resourceTemplate, scope, string, type AmlTerm } from './aml.js';

/** What the ACPI tables describe: generated from the machine's actual configuration. */
export interface AcpiConfig {
  /** Local APIC IDs of the vCPUs, boot processor first. */
  readonly cpuApicIds: readonly number[];
  readonly localApicAddress: number;
  readonly ioapic: { readonly id: number; readonly address: number; readonly gsiBase: number };
  readonly hpetAddress?: number;
  /** PIIX4-style power management I/O blocks. */
  readonly pm: {
    readonly sciIrq: number;
    readonly pm1aEvent: number;
    readonly pm1aControl: number;
    readonly pmTimer: number;
    readonly gpe0: number;
    readonly gpe0Length: number;
    /** PM1_CNT.SLP_TYP value that means soft-off (S5) on this PM device. */
    readonly sleepTypeS5: number;
    /** The APM/SMI command port and the values that switch ACPI mode on and off. */
    readonly smiCommand: number;
    readonly acpiEnable: number;
    readonly acpiDisable: number;
  };
  /** Reset register (an I/O port) and the value to write. */
  readonly reset: { readonly port: number; readonly value: number };
  /** The ISA IRQ each PCI interrupt line PIRQA–PIRQD is routed to (the PIIX3 routing registers). */
  readonly pirqToIrq: readonly [number, number, number, number];
  /** virtio-mmio devices (Linux's virtio_mmio binds `LNRO0005`): their register windows and level-triggered GSIs. */
  readonly virtioMmio?: readonly { readonly base: number; readonly length: number; readonly gsi: number }[];
  /** PCI slots in use on bus 0 (device numbers); `_PRT` covers these. */
  readonly pciSlots: readonly number[];
  /** The ISA bridge (PIIX3 function 0) and the legacy devices behind it, described in the DSDT for PnP. */
  readonly isa: IsaConfig;
}

export interface IsaConfig {
  /** PCI device number of the ISA bridge on bus 0. */
  readonly bridgeSlot: number;
  /** The i8042: its data and command ports and the keyboard and mouse IRQs. */
  readonly i8042?: { readonly dataPort: number; readonly commandPort: number; readonly keyboardIrq: number; readonly mouseIrq: number };
  /** 16550 UARTs, COM1 first. */
  readonly serialPorts: readonly { readonly base: number; readonly irq: number }[];
  readonly rtc?: { readonly base: number; readonly irq: number };
}

/** QEMU's pc machine, as tsvirt builds it by default. */
export const defaultAcpiConfig: AcpiConfig = {
  cpuApicIds: [0],
  localApicAddress: PcLayout.localApicBase,
  ioapic: { id: PcLayout.ioapicId, address: PcLayout.ioapicBase, gsiBase: 0 },
  hpetAddress: PcLayout.hpetBase,
  pm: { sciIrq: 9, pm1aEvent: 0x600, pm1aControl: 0x604, pmTimer: 0x608, gpe0: 0xafe0, gpe0Length: 4, sleepTypeS5: 0, smiCommand: 0xb2, acpiEnable: 0xf1, acpiDisable: 0xf0 },
  reset: { port: 0xcf9, value: 0x06 },
  pirqToIrq: [10, 10, 11, 11],
  pciSlots: Array.from({ length: 32 }, (_, slot) => slot),
  isa: {
    bridgeSlot: 1,
    i8042: { dataPort: 0x60, commandPort: 0x64, keyboardIrq: 1, mouseIrq: 12 },
    serialPorts: [{ base: 0x3f8, irq: 4 }],
    rtc: { base: 0x70, irq: 8 },
  },
};

export interface AcpiTables {
  /** Where `bytes` go in guest memory. */
  readonly base: number;
  readonly bytes: Uint8Array;
  readonly rsdpAddress: number;
  /** Each table's address by signature, for tests and traces. */
  readonly addresses: Readonly<Record<string, number>>;
}

const OEM_ID = 'TSVIRT';
const OEM_TABLE_ID = 'TSVIRTPC';
const CREATOR_ID = 'TSVT';

function checksum(bytes: Uint8Array): number {
  let sum = 0;
  for (const byte of bytes) sum = (sum + byte) & 0xff;
  return (0x100 - sum) & 0xff;
}

function ascii(view: DataView, offset: number, text: string, length: number): void {
  for (let i = 0; i < length; i++) view.setUint8(offset + i, i < text.length ? text.charCodeAt(i) : 0x20);
}

/** A system description table: the 36-byte header (checksum fixed up) followed by `body`. */
export function systemTable(signature: string, revision: number, body: Uint8Array): Uint8Array {
  const table = new Uint8Array(36 + body.length);
  const view = new DataView(table.buffer);
  ascii(view, 0, signature, 4);
  view.setUint32(4, table.length, true);
  view.setUint8(8, revision);
  ascii(view, 10, OEM_ID, 6);
  ascii(view, 16, OEM_TABLE_ID, 8);
  view.setUint32(24, 1, true);
  ascii(view, 28, CREATOR_ID, 4);
  view.setUint32(32, 1, true);
  table.set(body, 36);
  table[9] = checksum(table);
  return table;
}

/** A 12-byte Generic Address Structure in system I/O space. */
function ioAddress(view: DataView, offset: number, port: number, bitWidth: number, accessSize: number): void {
  view.setUint8(offset, 1);
  view.setUint8(offset + 1, bitWidth);
  view.setUint8(offset + 2, 0);
  view.setUint8(offset + 3, accessSize);
  view.setBigUint64(offset + 4, BigInt(port), true);
}

function fadt(config: AcpiConfig, facs: number, dsdt: number): Uint8Array {
  const body = new Uint8Array(244 - 36);
  const view = new DataView(body.buffer);
  const at = (offset: number) => offset - 36;
  view.setUint32(at(36), facs, true);
  view.setUint32(at(40), dsdt, true);
  view.setUint16(at(46), config.pm.sciIrq, true);
  // ACPI mode is entered as on QEMU: the OS writes ACPI_ENABLE to the SMI command port and the PM device sets SCI_EN.
  view.setUint32(at(48), config.pm.smiCommand, true);
  view.setUint8(at(52), config.pm.acpiEnable);
  view.setUint8(at(53), config.pm.acpiDisable);
  view.setUint32(at(56), config.pm.pm1aEvent, true);
  view.setUint32(at(64), config.pm.pm1aControl, true);
  view.setUint32(at(76), config.pm.pmTimer, true);
  view.setUint32(at(80), config.pm.gpe0, true);
  view.setUint8(at(88), 4); // PM1_EVT_LEN
  view.setUint8(at(89), 2); // PM1_CNT_LEN
  view.setUint8(at(91), 4); // PM_TMR_LEN
  view.setUint8(at(92), config.pm.gpe0Length);
  view.setUint16(at(96), 0x0fff, true); // P_LVL2_LAT > 100: C2 not supported
  view.setUint16(at(98), 0xffff, true); // P_LVL3_LAT > 1000: C3 not supported
  view.setUint8(at(108), 0x32); // CENTURY: the RTC's century byte
  view.setUint16(at(109), 0x0003, true); // IAPC_BOOT_ARCH: LEGACY_DEVICES | 8042
  // Flags: WBINVD | PROC_C1 | SLP_BUTTON (none) | RTC_S4 | RESET_REG_SUP
  view.setUint32(at(112), (1 << 0) | (1 << 2) | (1 << 5) | (1 << 7) | (1 << 10), true);
  ioAddress(view, at(116), config.reset.port, 8, 1);
  view.setUint8(at(128), config.reset.value);
  // X_FIRMWARE_CTRL (132) stays 0: ACPI says at most one of the two FACS pointers may be non-zero, and the
  // 64-bit one is for a FACS above 4 GiB. Ours is in low memory, so FIRMWARE_CTRL carries it (as QEMU's FADTs).
  view.setBigUint64(at(140), BigInt(dsdt), true);
  ioAddress(view, at(148), config.pm.pm1aEvent, 32, 2);
  ioAddress(view, at(172), config.pm.pm1aControl, 16, 2);
  ioAddress(view, at(208), config.pm.pmTimer, 32, 3);
  ioAddress(view, at(220), config.pm.gpe0, config.pm.gpe0Length * 8, 1);
  return systemTable('FACP', 3, body);
}

function facs(): Uint8Array {
  const table = new Uint8Array(64);
  const view = new DataView(table.buffer);
  ascii(view, 0, 'FACS', 4);
  view.setUint32(4, 64, true);
  return table;
}

/** PCI interrupt flags for MADT overrides: active high, level triggered (the PIIX3 inverts PIRQ# lines). */
const LEVEL_ACTIVE_HIGH = 0x000d;

function madt(config: AcpiConfig): Uint8Array {
  const entries: Uint8Array[] = [];
  config.cpuApicIds.forEach((apicId, index) => entries.push(Uint8Array.of(0, 8, index, apicId, 1, 0, 0, 0)));
  const ioapic = new Uint8Array(12);
  const ioapicView = new DataView(ioapic.buffer);
  ioapic.set([1, 12, config.ioapic.id, 0]);
  ioapicView.setUint32(4, config.ioapic.address, true);
  ioapicView.setUint32(8, config.ioapic.gsiBase, true);
  entries.push(ioapic);
  const override = (irq: number, gsi: number, flags: number): Uint8Array => {
    const entry = new Uint8Array(10);
    const view = new DataView(entry.buffer);
    entry.set([2, 10, 0, irq]);
    view.setUint32(4, gsi, true);
    view.setUint16(8, flags, true);
    return entry;
  };
  // The PIT's IRQ 0 is wired to IOAPIC pin 2, as on every PC with an IOAPIC.
  entries.push(override(0, 2, 0));
  const levelIrqs = new Set([config.pm.sciIrq, ...config.pirqToIrq]);
  for (const irq of [...levelIrqs].sort((a, b) => a - b)) entries.push(override(irq, irq, LEVEL_ACTIVE_HIGH));
  // LINT1 of every processor is the NMI input.
  entries.push(Uint8Array.of(4, 6, 0xff, 0, 0, 1));
  const header = new Uint8Array(8);
  const view = new DataView(header.buffer);
  view.setUint32(0, config.localApicAddress, true);
  view.setUint32(4, 1, true); // PCAT_COMPAT: there are 8259s too
  return systemTable('APIC', 1, concat(header, ...entries));
}

function hpet(address: number): Uint8Array {
  const body = new Uint8Array(20);
  const view = new DataView(body.buffer);
  // Vendor 0x8086, legacy replacement capable, 64-bit counter, 3 comparators (field is count - 1), revision 1.
  view.setUint32(0, 0x8086_a201, true);
  view.setUint8(4, 0); // system memory
  view.setUint8(5, 64);
  view.setBigUint64(8, BigInt(address), true);
  view.setUint8(16, 0); // HPET number
  view.setUint16(17, 0, true); // minimum clock tick
  return systemTable('HPET', 1, body);
}

/** The ISA bridge's devices, as QEMU's pc describes them, so PnP drivers (i8042, serial, rtc_cmos) find them. */
function isaBridge(isa: IsaConfig): AmlTerm {
  const devices: AmlTerm[] = [];
  if (isa.i8042 !== undefined) {
    const { dataPort, commandPort, keyboardIrq, mouseIrq } = isa.i8042;
    devices.push(
      device('KBD', name('_HID', eisaId('PNP0303')), name('_CRS', resourceTemplate(Resource.io(dataPort, 1), Resource.io(commandPort, 1), Resource.irqNoFlags(keyboardIrq)))),
      device('MOU', name('_HID', eisaId('PNP0F13')), name('_CRS', resourceTemplate(Resource.irqNoFlags(mouseIrq)))),
    );
  }
  isa.serialPorts.forEach(({ base, irq }, index) => {
    devices.push(device(`COM${index + 1}`, name('_HID', eisaId('PNP0501')), name('_UID', integer(index + 1)), name('_CRS', resourceTemplate(Resource.io(base, 8, 0), Resource.irqNoFlags(irq)))));
  });
  if (isa.rtc !== undefined) {
    // Eight ports as QEMU declares them: rtc_cmos then assumes the second NVRAM bank (242 bytes in all).
    devices.push(device('RTC', name('_HID', eisaId('PNP0B00')), name('_CRS', resourceTemplate(Resource.io(isa.rtc.base, 8), Resource.irqNoFlags(isa.rtc.irq)))));
  }
  return device('ISA', name('_ADR', dword((isa.bridgeSlot << 16) >>> 0)), ...devices);
}

function hpetDevice(address: number): AmlTerm {
  return device('HPET', name('_HID', eisaId('PNP0103')), name('_UID', integer(0)), name('_CRS', resourceTemplate(Resource.memory32Fixed(address, 0x400, false))));
}

/** As QEMU's microvm describes its virtio-mmio devices: `VR00`, `VR01`, … with `_HID "LNRO0005"`. */
function virtioMmioDevice(index: number, base: number, length: number, gsi: number): AmlTerm {
  if (index > 0xff) throw new RangeError('at most 256 virtio-mmio devices');
  return device(
    `VR${index.toString(16).toUpperCase().padStart(2, '0')}`,
    name('_HID', string('LNRO0005')),
    name('_UID', integer(index)),
    name('_CCA', integer(1)),
    name('_CRS', resourceTemplate(Resource.memory32Fixed(base, length, true), Resource.levelInterrupt(gsi))),
  );
}

function dsdt(config: AcpiConfig): Uint8Array {
  const mmio = config.virtioMmio ?? [];
  // _PRT: slot S, pin P (INTA=0) reaches PIRQ[(S + P) % 4], which the PIIX3 routes to an ISA IRQ.
  const routes: AmlTerm[] = [];
  for (const slot of config.pciSlots) {
    for (let pin = 0; pin < 4; pin++) {
      routes.push(aPackage(dword(((slot << 16) | 0xffff) >>> 0), integer(pin), integer(0), integer(config.pirqToIrq[(slot + pin) % 4]!)));
    }
  }
  // 32 slots × 4 pins = 128 entries: within a Package's 255.
  const prt = aPackage(...routes);
  const pciHostBridge = device(
    'PCI0',
    name('_HID', eisaId('PNP0A03')),
    name('_ADR', integer(0)),
    name('_UID', integer(0)),
    name('_PRT', prt),
    name(
      '_CRS',
      resourceTemplate(
        Resource.busNumbers(0, 0xff),
        Resource.ioWindow(0x0000, 0x0cf7),
        Resource.ioWindow(0x0d00, 0xffff),
        Resource.memoryWindow(0x000a_0000, 0x000b_ffff),
        // The window stops below the virtio-mmio devices, so Linux places no BAR over them.
        Resource.memoryWindow(PcLayout.pciHoleStart, (mmio.length > 0 ? PcLayout.virtioMmioBase : PcLayout.pciHoleEnd) - 1),
      ),
    ),
    isaBridge(config.isa),
  );
  const systemBus = config.hpetAddress === undefined ? [pciHostBridge] : [pciHostBridge, hpetDevice(config.hpetAddress)];
  mmio.forEach((window, index) => systemBus.push(virtioMmioDevice(index, window.base, window.length, window.gsi)));
  const body = concat(scope('\\_SB', ...systemBus), name('\\_S5', aPackage(integer(config.pm.sleepTypeS5), integer(config.pm.sleepTypeS5), integer(0), integer(0))));
  return systemTable('DSDT', 2, body);
}

/**
 * Builds RSDP, XSDT, RSDT, FADT, FACS, DSDT, MADT and HPET for `config`,
 * laid out from `base` (16-byte aligned, below 4 GiB). The RSDP comes first
 * so that placing `base` in 0xE0000–0xFFFFF lets an OS find it by scanning.
 */
export function buildAcpiTables(config: AcpiConfig, base: number): AcpiTables {
  if (base % 16 !== 0 || base + 0x1_0000 > 2 ** 32) throw new RangeError('ACPI tables need a 16-byte aligned base below 4 GiB');
  let cursor = base;
  const reserve = (length: number, alignment = 16): number => {
    const address = Math.ceil(cursor / alignment) * alignment;
    cursor = address + length;
    return address;
  };
  // Every address is fixed before any table that points at it is built.
  const dsdtBytes = dsdt(config);
  const madtBytes = madt(config);
  const hpetBytes = config.hpetAddress === undefined ? undefined : hpet(config.hpetAddress);
  const rsdpAddress = reserve(36);
  const facsAddress = reserve(64, 64);
  const dsdtAddress = reserve(dsdtBytes.length);
  const fadtAddress = reserve(244);
  const madtAddress = reserve(madtBytes.length);
  const hpetAddress = hpetBytes === undefined ? undefined : reserve(hpetBytes.length);
  const pointed = [fadtAddress, madtAddress, ...(hpetAddress === undefined ? [] : [hpetAddress])];
  const rsdtBody = new Uint8Array(4 * pointed.length);
  const xsdtBody = new Uint8Array(8 * pointed.length);
  pointed.forEach((address, index) => {
    new DataView(rsdtBody.buffer).setUint32(index * 4, address, true);
    new DataView(xsdtBody.buffer).setBigUint64(index * 8, BigInt(address), true);
  });
  const rsdtAddress = reserve(36 + rsdtBody.length);
  const xsdtAddress = reserve(36 + xsdtBody.length);

  const rsdp = new Uint8Array(36);
  const rsdpView = new DataView(rsdp.buffer);
  ascii(rsdpView, 0, 'RSD PTR ', 8);
  ascii(rsdpView, 9, OEM_ID, 6);
  rsdp[15] = 2; // ACPI 2.0+: XSDT present
  rsdpView.setUint32(16, rsdtAddress, true);
  rsdpView.setUint32(20, 36, true);
  rsdpView.setBigUint64(24, BigInt(xsdtAddress), true);
  rsdp[8] = checksum(rsdp.subarray(0, 20));
  rsdp[32] = checksum(rsdp);

  const image = new Uint8Array(cursor - base);
  const addresses: Record<string, number> = {};
  const put = (label: string, address: number, bytes: Uint8Array): void => {
    image.set(bytes, address - base);
    addresses[label] = address;
  };
  put('RSDP', rsdpAddress, rsdp);
  put('FACS', facsAddress, facs());
  put('DSDT', dsdtAddress, dsdtBytes);
  put('FACP', fadtAddress, fadt(config, facsAddress, dsdtAddress));
  put('APIC', madtAddress, madtBytes);
  if (hpetBytes !== undefined && hpetAddress !== undefined) put('HPET', hpetAddress, hpetBytes);
  put('RSDT', rsdtAddress, systemTable('RSDT', 1, rsdtBody));
  put('XSDT', xsdtAddress, systemTable('XSDT', 1, xsdtBody));
  return { base, bytes: image, rsdpAddress, addresses };
}
