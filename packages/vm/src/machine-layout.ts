import type { RamRegion } from '@tsvirt/memory';

/**
 * Where things live in the guest-physical address space of tsvirt's `pc`
 * machine, after QEMU's i440FX layout.
 */
export const PcLayout = {
  /** Conventional memory ends where the VGA window starts. */
  lowRamEnd: 0xa_0000,
  /** The VGA window (MMIO) 0xA0000–0xBFFFF is a hole; 0xC0000–0xFFFFF is RAM shadowing the option ROMs and BIOS. */
  biosAreaStart: 0xc_0000,
  /** Firmware tables (ACPI, MP table, RSDP) go at the top of the BIOS area, where OSes scan for them. */
  firmwareTablesStart: 0xe_0000,
  firmwareTablesEnd: 0x10_0000,
  /** RAM above this is split off above 4 GiB when the guest has this much or more (QEMU's gigabyte alignment). */
  splitThreshold: 0xe000_0000,
  lowRamLimitWhenSplit: 0xc000_0000,
  fourGiB: 0x1_0000_0000,
  /** Local APIC, IOAPIC and HPET MMIO windows. */
  ioapicBase: 0xfec0_0000,
  /** The IOAPIC's ID, as QEMU gives it (the MADT and MP table must say the same). */
  ioapicId: 0,
  hpetBase: 0xfed0_0000,
  localApicBase: 0xfee0_0000,
  /** virtio-mmio devices, 0x200 bytes apart as on QEMU's microvm; the PCI window ends below them when there are any. */
  virtioMmioBase: 0xfeb0_0000,
  virtioMmioStride: 0x200,
  /** Their interrupts: the IOAPIC inputs past the ISA IRQs, which the pc's PCI routing leaves free. */
  virtioMmioFirstGsi: 16,
  /** The 32-bit PCI MMIO window the host bridge decodes, up to the IOAPIC. */
  pciHoleStart: 0xe000_0000,
  pciHoleEnd: 0xfec0_0000,
} as const;

/** The RAM regions of a `pc` machine with `ramBytes` of memory (a multiple of 4 KiB, at least 2 MiB). */
export function pcRamRegions(ramBytes: number): RamRegion[] {
  if (!Number.isSafeInteger(ramBytes) || ramBytes % 4096 !== 0 || ramBytes < 2 << 20) {
    throw new RangeError(`memory size must be a multiple of 4 KiB and at least 2 MiB, got ${ramBytes}`);
  }
  const below4g = ramBytes >= PcLayout.splitThreshold ? PcLayout.lowRamLimitWhenSplit : ramBytes;
  const regions: RamRegion[] = [
    { start: 0, size: PcLayout.lowRamEnd },
    { start: PcLayout.biosAreaStart, size: below4g - PcLayout.biosAreaStart },
  ];
  if (ramBytes > below4g) regions.push({ start: PcLayout.fourGiB, size: ramBytes - below4g });
  return regions;
}
