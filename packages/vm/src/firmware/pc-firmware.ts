import { guestAddress, type GuestMemory } from '@tsvirt/interfaces';
import type { RamRegion } from '@tsvirt/memory';
import { PcLayout } from '../machine-layout.js';
import { buildAcpiTables, type AcpiConfig } from './acpi/tables.js';
import { E820Type, buildE820, type E820Entry } from './e820.js';
import { buildMpTables } from './mptable.js';

export interface PcFirmware {
  readonly e820: E820Entry[];
  readonly acpiRsdp: number;
  readonly mpFloatingPointer: number;
}

/** The MP table lives in the last 64 KiB, where kernels scan for "_MP_". */
const MP_TABLE_BASE = 0xf_0000;

/**
 * Writes what a PC's firmware leaves behind for the OS, generated from the
 * machine's configuration: ACPI tables at 0xE0000 (RSDP first, found by
 * scanning and passed in boot_params), the MP table at 0xF0000, and the
 * e820 map that keeps the BIOS area out of the kernel's hands.
 */
export function installPcFirmware(memory: GuestMemory, ram: readonly RamRegion[], acpi: AcpiConfig): PcFirmware {
  const tables = buildAcpiTables(acpi, PcLayout.firmwareTablesStart);
  if (tables.base + tables.bytes.length > MP_TABLE_BASE) throw new RangeError(`ACPI tables (${tables.bytes.length} bytes) overflow into the MP table area`);
  const mp = buildMpTables(
    { cpuApicIds: acpi.cpuApicIds, localApicAddress: acpi.localApicAddress, ioapic: acpi.ioapic, pirqToIrq: acpi.pirqToIrq, pciSlots: acpi.pciSlots },
    MP_TABLE_BASE,
  );
  memory.write(guestAddress(tables.base), tables.bytes);
  memory.write(guestAddress(mp.base), mp.bytes);
  const e820 = buildE820(ram, [
    // The EBDA's conventional place, and the option-ROM/BIOS area that holds our tables.
    { start: 0x9_fc00, size: PcLayout.lowRamEnd - 0x9_fc00, type: E820Type.Reserved },
    { start: PcLayout.biosAreaStart, size: PcLayout.firmwareTablesEnd - PcLayout.biosAreaStart, type: E820Type.Reserved },
    // The BIOS ROM alias below 4 GiB, as QEMU reports it.
    { start: 0xfffc_0000, size: 0x4_0000, type: E820Type.Reserved },
  ]);
  return { e820, acpiRsdp: tables.rsdpAddress, mpFloatingPointer: mp.floatingPointer };
}
