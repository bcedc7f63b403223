import type { BusDevice } from './bus.js';
import type { GuestMemory } from './memory.js';

/** What identifies a PCI function in its configuration header. */
export interface PciIdentity {
  readonly vendorId: number;
  readonly deviceId: number;
  /** Class, subclass and programming interface as one 24-bit value, e.g. 0x020000 for an Ethernet controller. */
  readonly classCode: number;
  readonly revision: number;
  readonly subsystemVendorId?: number;
  readonly subsystemId?: number;
  /** 0 for an ordinary function (the default), 1 for a PCI-to-PCI bridge. */
  readonly headerType?: 0 | 1;
}

export type PciBarKind = 'io' | 'memory32' | 'memory64';

/**
 * A base address register as the device declares it. The guest decides where
 * it lives: the PCI core sizes it, places it on the I/O or MMIO bus when the
 * guest programs an address and enables decoding, and forwards accesses to
 * `device` with offsets inside the BAR. A 64-bit BAR uses two slots; the slot
 * after it must be `undefined`.
 */
export interface PciBarDefinition {
  readonly kind: PciBarKind;
  /** A power of two: at least 4 for I/O, at least 16 for memory. */
  readonly size: number;
  readonly prefetchable?: boolean;
  readonly device: BusDevice;
}

/**
 * Capabilities the PCI core implements for the device, so each device gets
 * them right once: MSI and MSI-X (table and PBA are placed inside the named
 * BAR and served by the core), power management, and vendor-specific
 * capabilities whose body the device supplies (virtio's, for instance).
 */
export type PciCapability =
  | { readonly kind: 'msi'; readonly vectors: 1 | 2 | 4 | 8 | 16 | 32; readonly address64: boolean; readonly perVectorMask: boolean }
  | {
      readonly kind: 'msix';
      readonly vectors: number;
      readonly tableBar: number;
      readonly tableOffset: number;
      readonly pbaBar: number;
      readonly pbaOffset: number;
    }
  | { readonly kind: 'power-management' }
  | {
      /** Any other capability: `body` is what follows the ID and next-pointer bytes. */
      readonly kind: 'vendor';
      readonly id: number;
      readonly body: Uint8Array;
    };

/** What the PCI core gives a device when it is plugged in. */
export interface PciDeviceContext {
  /** Drives the function's INTx pin; the core honours Command.InterruptDisable and keeps Status.Interrupt. */
  setIntx(asserted: boolean): void;
  /** Signals MSI or MSI-X vector `vector`; the core applies enable, function mask, per-vector mask and pending bits. */
  signalMsi(vector: number): void;
  /** Which interrupt mechanism the guest has enabled. */
  interruptMode(): 'intx' | 'msi' | 'msix';
  /** False until the guest sets Command.BusMaster; a device must not DMA before. */
  busMasterEnabled(): boolean;
  /** Guest memory as the device reaches it by DMA. */
  readonly dma: GuestMemory;
}

/**
 * A PCI (or PCI Express) function. The standard header, BARs and the listed
 * capabilities are served by the PCI core; the device answers only for its
 * own registers in the rest of configuration space.
 */
export interface PciDevice {
  readonly identity: PciIdentity;
  /** Up to six BARs; `undefined` for unused slots. */
  readonly bars: readonly (PciBarDefinition | undefined)[];
  readonly capabilities: readonly PciCapability[];
  /** 0 when the function uses no INTx pin, 1–4 for INTA#–INTD#. */
  readonly interruptPin: 0 | 1 | 2 | 3 | 4;
  /** True for a PCI Express function with 4 KiB of configuration space. */
  readonly express?: boolean;
  /** Device-specific configuration registers (offsets the core does not own). Reads default to 0. */
  readConfig?(offset: number, size: 1 | 2 | 4): number;
  writeConfig?(offset: number, size: 1 | 2 | 4, value: number): void;
  /** Called once, when the function is plugged into a bus. */
  attach(context: PciDeviceContext): void;
  /** PCI reset (RST#, or a function-level reset). */
  reset(): void;
}
