import { StateReader } from '@tsvirt/interfaces';
import type { AccessSize, BusDevice } from '@tsvirt/interfaces';
import type { PciBus } from './pci-bus.js';

const ENABLE = 0x8000_0000;
/** Bits CONFADD keeps: enable, bus, device, function, dword register (30:24 and 1:0 are reserved, read 0). */
const ADDRESS_MASK = 0x80ff_fffc;

export interface PciConfigMechanismOptions {
  /**
   * Byte accesses to 0xCF9 (inside the CONFADD dword) belong to the PIIX3
   * reset control register, which another device models; they are
   * forwarded here (offset 0). Without it they read 0xff.
   */
  readonly resetControl?: BusDevice;
}

export interface PciConfigMechanismState {
  readonly version: 1;
  readonly address: number;
}

/**
 * PCI configuration mechanism #1: CONFADD at 0xCF8 (dword accesses only)
 * and CONFDATA at 0xCFC-0xCFF, where a byte, word or dword access at byte
 * lane n reaches configuration offset `register + n`. Register `addressPort`
 * at 0xCF8 (length 4) and `dataPort` at 0xCFC (length 4).
 */
export class PciConfigMechanism {
  private address = 0;
  readonly addressPort: BusDevice;
  readonly dataPort: BusDevice;

  constructor(
    private readonly bus: PciBus,
    options: PciConfigMechanismOptions = {},
  ) {
    const resetControl = options.resetControl;
    this.addressPort = {
      read: (offset: number, size: AccessSize) => {
        if (offset === 0 && size === 4) return this.address >>> 0;
        if (offset === 1 && size === 1 && resetControl !== undefined) return resetControl.read(0, 1) & 0xff;
        return size === 4 ? 0xffff_ffff : (1 << (8 * size)) - 1;
      },
      write: (offset: number, size: AccessSize, value: number) => {
        if (offset === 0 && size === 4) this.address = (value & ADDRESS_MASK) >>> 0;
        else if (offset === 1 && size === 1) resetControl?.write(0, 1, value & 0xff);
      },
    };
    this.dataPort = {
      read: (offset: number, size: AccessSize) => this.readData(offset, size),
      write: (offset: number, size: AccessSize, value: number) => this.writeData(offset, size, value),
    };
  }

  private target(): { slot: number; fn: number; register: number } | undefined {
    const address = this.address;
    // Only bus 0 exists; other buses (and a clear enable bit) decode nothing.
    if ((address & ENABLE) === 0 || ((address >>> 16) & 0xff) !== 0) return undefined;
    return { slot: (address >>> 11) & 0x1f, fn: (address >>> 8) & 7, register: address & 0xfc };
  }

  private readData(lane: number, size: AccessSize): number {
    const target = this.target();
    if (target === undefined || lane + size > 4) return size === 4 ? 0xffff_ffff : (1 << (8 * size)) - 1;
    return this.bus.readConfig(target.slot, target.fn, target.register + lane, size);
  }

  private writeData(lane: number, size: AccessSize, value: number): void {
    const target = this.target();
    if (target === undefined || lane + size > 4) return;
    this.bus.writeConfig(target.slot, target.fn, target.register + lane, size, value);
  }

  save(): PciConfigMechanismState {
    return { version: 1, address: this.address };
  }

  restore(state: unknown): void {
    const reader = StateReader.open(state, 'pciConfigMechanism', 1);
    const address = reader.uint('address', 0xffff_ffff);
    if ((address & ~ADDRESS_MASK) !== 0) reader.fail('address', 'reserved bits set');
    this.address = address;
  }
}
