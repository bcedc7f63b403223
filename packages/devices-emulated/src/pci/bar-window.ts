import type { AccessSize, BusDevice, PciBarDefinition } from '@tsvirt/interfaces';
import type { MsixState } from './msix.js';

/**
 * What the bus sees at a BAR: the device's registers, except where the
 * MSI-X table or pending bit array is placed, which the PCI core serves.
 * Built once per BAR so accesses allocate nothing.
 */
export class BarWindow implements BusDevice {
  constructor(
    private readonly definition: PciBarDefinition,
    private readonly msixTable: MsixState | undefined,
    private readonly msixPba: MsixState | undefined,
  ) {}

  read(offset: number, size: AccessSize): number {
    const table = this.msixTable;
    if (table !== undefined && offset >= table.layout.tableOffset && offset + size <= table.layout.tableOffset + table.tableLength) {
      return table.readTable(offset - table.layout.tableOffset, size);
    }
    const pba = this.msixPba;
    if (pba !== undefined && offset >= pba.layout.pbaOffset && offset + size <= pba.layout.pbaOffset + pba.pbaLength) {
      return pba.readPending(offset - pba.layout.pbaOffset, size);
    }
    return this.definition.device.read(offset, size);
  }

  write(offset: number, size: AccessSize, value: number): void {
    const table = this.msixTable;
    if (table !== undefined && offset >= table.layout.tableOffset && offset + size <= table.layout.tableOffset + table.tableLength) {
      table.writeTable(offset - table.layout.tableOffset, size, value);
      return;
    }
    const pba = this.msixPba;
    // The PBA is read-only.
    if (pba !== undefined && offset >= pba.layout.pbaOffset && offset + size <= pba.layout.pbaOffset + pba.pbaLength) return;
    this.definition.device.write(offset, size, value);
  }
}
