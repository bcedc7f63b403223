/**
 * The Intel MultiProcessor Specification 1.4 tables: a floating pointer the OS
 * finds by scanning 0xF0000–0xFFFFF and a configuration table listing
 * processors, buses, the IOAPIC and how every interrupt is wired. Kernels
 * booted with `acpi=off` (and older ones) use it instead of the MADT.
 */
export interface MpConfig {
  readonly cpuApicIds: readonly number[];
  readonly localApicAddress: number;
  readonly ioapic: { readonly id: number; readonly address: number };
  /** ISA IRQ of PIRQA–PIRQD. */
  readonly pirqToIrq: readonly [number, number, number, number];
  /** PCI slots in use on bus 0. */
  readonly pciSlots: readonly number[];
}

const ENTRY_PROCESSOR = 0;
const ENTRY_BUS = 1;
const ENTRY_IOAPIC = 2;
const ENTRY_IO_INTERRUPT = 3;
const ENTRY_LOCAL_INTERRUPT = 4;
const INT = 0;
const NMI = 1;
const EXTINT = 3;
const PCI_BUS = 0;
const ISA_BUS = 1;
/** Polarity active high (01), trigger level (11): how the PIIX3 presents PCI interrupts to the IOAPIC. */
const LEVEL_ACTIVE_HIGH = 0x0d;

function checksum(bytes: Uint8Array): number {
  let sum = 0;
  for (const byte of bytes) sum = (sum + byte) & 0xff;
  return (0x100 - sum) & 0xff;
}

function text(target: Uint8Array, offset: number, value: string, length: number): void {
  for (let i = 0; i < length; i++) target[offset + i] = i < value.length ? value.charCodeAt(i) : 0x20;
}

export interface MpTables {
  readonly base: number;
  readonly bytes: Uint8Array;
  readonly floatingPointer: number;
  readonly configTable: number;
}

/** Builds the floating pointer (at `base`, 16-byte aligned) followed by the configuration table. */
export function buildMpTables(config: MpConfig, base: number): MpTables {
  if (base % 16 !== 0) throw new RangeError('the MP floating pointer must be 16-byte aligned');
  const entries: Uint8Array[] = [];
  config.cpuApicIds.forEach((apicId, index) => {
    const entry = new Uint8Array(20);
    const view = new DataView(entry.buffer);
    entry.set([ENTRY_PROCESSOR, apicId, 0x14, index === 0 ? 0x03 : 0x01]);
    view.setUint32(4, 0x0000_0663, true); // family 6, model 6, stepping 3: QEMU's qemu64 signature
    view.setUint32(8, 0x0000_0201, true); // FPU and APIC present
    entries.push(entry);
  });
  const bus = (id: number, type: string): Uint8Array => {
    const entry = new Uint8Array(8);
    entry[0] = ENTRY_BUS;
    entry[1] = id;
    text(entry, 2, type, 6);
    return entry;
  };
  entries.push(bus(PCI_BUS, 'PCI'), bus(ISA_BUS, 'ISA'));
  const ioapic = new Uint8Array(8);
  ioapic.set([ENTRY_IOAPIC, config.ioapic.id, 0x11, 0x01]);
  new DataView(ioapic.buffer).setUint32(4, config.ioapic.address, true);
  entries.push(ioapic);
  const ioInterrupt = (type: number, flags: number, sourceBus: number, sourceIrq: number, pin: number): Uint8Array =>
    Uint8Array.of(ENTRY_IO_INTERRUPT, type, flags & 0xff, flags >> 8, sourceBus, sourceIrq, config.ioapic.id, pin);
  // The 8259's INTR reaches IOAPIC pin 0 (ExtINT); ISA IRQ 0 is on pin 2; the rest are identity-mapped.
  entries.push(ioInterrupt(EXTINT, 0, ISA_BUS, 0, 0));
  const levelIrqs = new Set(config.pirqToIrq);
  for (let irq = 0; irq < 16; irq++) {
    if (irq === 2) continue;
    entries.push(ioInterrupt(INT, levelIrqs.has(irq) ? LEVEL_ACTIVE_HIGH : 0, ISA_BUS, irq, irq === 0 ? 2 : irq));
  }
  for (const slot of config.pciSlots) {
    for (let pin = 0; pin < 4; pin++) entries.push(ioInterrupt(INT, LEVEL_ACTIVE_HIGH, PCI_BUS, (slot << 2) | pin, config.pirqToIrq[(slot + pin) % 4]!));
  }
  entries.push(Uint8Array.of(ENTRY_LOCAL_INTERRUPT, EXTINT, 0, 0, ISA_BUS, 0, 0xff, 0));
  entries.push(Uint8Array.of(ENTRY_LOCAL_INTERRUPT, NMI, 0, 0, ISA_BUS, 0, 0xff, 1));

  const entryBytes = entries.reduce((sum, entry) => sum + entry.length, 0);
  const configTable = base + 16;
  const bytes = new Uint8Array(16 + 44 + entryBytes);
  const view = new DataView(bytes.buffer);
  // Floating pointer.
  text(bytes, 0, '_MP_', 4);
  view.setUint32(4, configTable, true);
  bytes[8] = 1; // length in 16-byte units
  bytes[9] = 4; // MP spec 1.4
  bytes[10] = checksum(bytes.subarray(0, 16));
  // Configuration table header.
  const header = 16;
  text(bytes, header, 'PCMP', 4);
  view.setUint16(header + 4, 44 + entryBytes, true);
  bytes[header + 6] = 4;
  text(bytes, header + 8, 'TSVIRT', 8);
  text(bytes, header + 16, 'PC', 12);
  view.setUint16(header + 34, entries.length, true);
  view.setUint32(header + 36, config.localApicAddress, true);
  let offset = header + 44;
  for (const entry of entries) {
    bytes.set(entry, offset);
    offset += entry.length;
  }
  bytes[header + 7] = checksum(bytes.subarray(header));
  return { base, bytes, floatingPointer: base, configTable };
}
