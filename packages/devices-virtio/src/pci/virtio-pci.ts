import {
  type AccessSize,
  type BusDevice,
  type PciBarDefinition,
  type PciCapability,
  type PciDevice,
  type PciDeviceContext,
  type PciIdentity,
  StateReader,
} from '@tsvirt/interfaces';
import type { VirtioDevice } from '../device.js';
import type { SplitQueue, SplitQueueState } from '../queue/split-queue.js';
import { DeviceType, NO_VECTOR } from '../spec.js';
import { high, low, TransportCore, withHalf } from '../transport/transport-core.js';

/** Red Hat's PCI vendor ID, which every virtio PCI device uses. */
const VIRTIO_VENDOR = 0x1af4;
/** virtio_pci_cap.cfg_type values (4.1.4). */
enum CapabilityType {
  Common = 1,
  Notify = 2,
  Isr = 3,
  Device = 4,
}
/** Where each structure lives in the modern BAR (BAR 4), as QEMU lays it out. */
enum ModernRegion {
  Common = 0x0000,
  Isr = 0x1000,
  Device = 0x2000,
  Notify = 0x3000,
}
const MODERN_BAR = 4;
const MODERN_BAR_SIZE = 0x4000;
const MSIX_BAR = 1;
const LEGACY_BAR = 0;
/** Bytes between two queues' notification addresses. */
const NOTIFY_MULTIPLIER = 4;
/** Size of the common configuration structure Linux reads (up to queue_device). */
const COMMON_SIZE = 0x38;

/** QEMU's PCI class codes for virtio devices. */
const CLASS_CODES: Readonly<Record<number, number>> = {
  [DeviceType.Network]: 0x020000,
  [DeviceType.Block]: 0x010000,
  [DeviceType.Console]: 0x078000,
  [DeviceType.Entropy]: 0x00ff00,
  [DeviceType.Balloon]: 0x00ff00,
  [DeviceType.Scsi]: 0x010000,
};

/** Legacy (virtio 0.9.5) I/O registers. */
enum Legacy {
  HostFeatures = 0x00,
  GuestFeatures = 0x04,
  QueuePfn = 0x08,
  QueueSize = 0x0c,
  QueueSelect = 0x0e,
  QueueNotify = 0x10,
  Status = 0x12,
  Isr = 0x13,
  ConfigVector = 0x14,
  QueueVector = 0x16,
}
const LEGACY_HEADER = 0x14;
const LEGACY_MSIX_HEADER = 0x18;
/** Legacy rings: the used ring starts at the next 4 KiB boundary. */
const LEGACY_ALIGN = 4096;

export interface VirtioPciOptions {
  /**
   * Also offer the legacy (virtio 0.9.5) interface in an I/O BAR, as QEMU's
   * transitional devices on the PCI bus do (default true). Linux uses the
   * modern interface when present; `virtio_pci.force_legacy=1` picks this one.
   */
  readonly transitional?: boolean;
  /** MSI-X vectors (default: one per queue, plus one for configuration changes, as QEMU). */
  readonly vectors?: number;
}

export interface VirtioPciState {
  readonly version: 1;
  readonly status: number;
  readonly deviceFeatureSelect: number;
  readonly driverFeatureSelect: number;
  /** The driver's features, as a decimal string (64 bits). */
  readonly driverFeatures: string;
  readonly queueSelect: number;
  readonly configVector: number;
  readonly configGeneration: number;
  readonly isr: number;
  readonly legacy: boolean;
  readonly queues: Array<{ state: SplitQueueState; vector: number; enabled: boolean }>;
  readonly device: unknown;
}

/**
 * The virtio PCI transport (virtio 1.2, 4.1) around any `VirtioDevice`: the
 * modern interface (common, notify, ISR and device-configuration structures
 * in a 64-bit memory BAR, found through vendor capabilities), MSI-X with a
 * vector per queue, INTx, and for a transitional device the legacy I/O
 * interface. The PCI core serves the header, BAR placement and MSI-X; this
 * class serves the registers inside the BARs.
 *
 * @example
 * ```ts
 * const rng = new VirtioRng({ random: (bytes) => crypto.getRandomValues(bytes) });
 * pciBus.plug(new VirtioPci(rng), 4);
 * ```
 */
export class VirtioPci implements PciDevice {
  readonly identity: PciIdentity;
  readonly bars: readonly (PciBarDefinition | undefined)[];
  readonly capabilities: readonly PciCapability[];
  readonly interruptPin = 1 as const;
  private readonly core: TransportCore;
  private readonly queueVectors: number[];
  private readonly vectors: number;
  private readonly transitional: boolean;
  private pci: PciDeviceContext | undefined;
  private configVector = NO_VECTOR;
  private isr = 0;
  /** The driver uses the legacy interface (it touched the legacy BAR before DRIVER_OK). */
  private legacy = false;

  constructor(
    readonly device: VirtioDevice,
    options: VirtioPciOptions = {},
  ) {
    const queueCount = device.queueMaxSizes.length;
    this.transitional = options.transitional ?? true;
    this.vectors = options.vectors ?? queueCount + 1;
    if (!Number.isInteger(this.vectors) || this.vectors < 1 || this.vectors > 2048) throw new RangeError(`MSI-X vectors must be 1 to 2048, not ${this.vectors}`);
    this.core = new TransportCore(device, { queue: (index) => this.interrupt(this.queueVectors[index]!, 1), config: () => this.interrupt(this.configVector, 2) }, () => this.pci?.dma);
    this.queueVectors = this.core.queues.map(() => NO_VECTOR);
    const type = device.deviceType;
    // Transitional devices have IDs 0x1000 + type - 1 (with the type as subsystem ID), modern-only ones 0x1040 + type.
    this.identity = {
      vendorId: VIRTIO_VENDOR,
      deviceId: this.transitional ? transitionalDeviceId(type) : 0x1040 + type,
      classCode: CLASS_CODES[type] ?? 0x00ff00,
      revision: this.transitional ? 0 : 1,
      subsystemVendorId: VIRTIO_VENDOR,
      subsystemId: this.transitional ? type : 0x1100,
    };
    const legacySize = nextPowerOfTwo(LEGACY_MSIX_HEADER + device.configSize);
    const bars: Array<PciBarDefinition | undefined> = [undefined, undefined, undefined, undefined, undefined, undefined];
    if (this.transitional) bars[LEGACY_BAR] = { kind: 'io', size: Math.max(32, legacySize), device: this.legacyRegisters() };
    // The PCI core serves the MSI-X table and PBA inside BAR 1; the rest of it reads as zero.
    bars[MSIX_BAR] = { kind: 'memory32', size: 0x1000, device: { read: () => 0, write: () => {} } };
    bars[MODERN_BAR] = { kind: 'memory64', size: MODERN_BAR_SIZE, prefetchable: true, device: this.modernRegisters() };
    this.bars = bars;
    const notifyLength = Math.max(4, queueCount * NOTIFY_MULTIPLIER);
    this.capabilities = [
      { kind: 'msix', vectors: this.vectors, tableBar: MSIX_BAR, tableOffset: 0, pbaBar: MSIX_BAR, pbaOffset: 0x800 },
      virtioCapability(CapabilityType.Common, ModernRegion.Common, 0x1000),
      virtioCapability(CapabilityType.Isr, ModernRegion.Isr, 0x1000),
      virtioCapability(CapabilityType.Device, ModernRegion.Device, 0x1000),
      virtioCapability(CapabilityType.Notify, ModernRegion.Notify, notifyLength, NOTIFY_MULTIPLIER),
    ];
  }

  attach(context: PciDeviceContext): void {
    this.pci = context;
  }

  /** PCI reset: the device as after a status write of 0. */
  reset(): void {
    this.resetDevice();
  }

  // ---- the modern interface (BAR 4) ----

  private modernRegisters(): BusDevice {
    return {
      read: (offset, size) => this.readModern(offset, size),
      write: (offset, size, value) => this.writeModern(offset, size, value),
    };
  }

  private readModern(offset: number, size: AccessSize): number {
    if (offset < ModernRegion.Isr) return offset < COMMON_SIZE ? this.readCommon(offset, size) : 0;
    if (offset < ModernRegion.Device) return offset === ModernRegion.Isr ? this.readIsr() : 0;
    if (offset < ModernRegion.Notify) return this.core.readDeviceConfig(offset - ModernRegion.Device, size);
    return 0;
  }

  private writeModern(offset: number, size: AccessSize, value: number): void {
    if (offset < ModernRegion.Isr) {
      if (offset < COMMON_SIZE) this.writeCommon(offset, size, value);
    } else if (offset >= ModernRegion.Device && offset < ModernRegion.Notify) {
      this.core.writeDeviceConfig(offset - ModernRegion.Device, size, value);
    } else if (offset >= ModernRegion.Notify) {
      const index = (offset - ModernRegion.Notify) / NOTIFY_MULTIPLIER;
      if (Number.isInteger(index)) this.core.notifyQueue(index);
    }
  }

  private readCommon(offset: number, size: AccessSize): number {
    const core = this.core;
    const queue = core.selectedQueue;
    let value: number;
    switch (offset & ~3) {
      case 0x00: value = core.deviceFeatureSelect; break;
      case 0x04: value = core.deviceFeatureWord(); break;
      case 0x08: value = core.driverFeatureSelect; break;
      case 0x0c: value = core.driverFeatureWord(); break;
      case 0x10: value = this.configVector | (core.queues.length << 16); break;
      case 0x14: value = core.status | (core.configGeneration << 8) | (core.queueSelect << 16); break;
      case 0x18: value = queue === undefined ? 0 : queue.size | (this.queueVectors[core.queueSelect]! << 16); break;
      case 0x1c: value = queue === undefined ? 0 : (core.queueEnabled[core.queueSelect] ? 1 : 0) | (core.queueSelect << 16); break;
      case 0x20: value = queue === undefined ? 0 : low(queue.descriptorTable); break;
      case 0x24: value = queue === undefined ? 0 : high(queue.descriptorTable); break;
      case 0x28: value = queue === undefined ? 0 : low(queue.availableRing); break;
      case 0x2c: value = queue === undefined ? 0 : high(queue.availableRing); break;
      case 0x30: value = queue === undefined ? 0 : low(queue.usedRing); break;
      case 0x34: value = queue === undefined ? 0 : high(queue.usedRing); break;
      default: value = 0;
    }
    return extract(value, offset & 3, size);
  }

  private writeCommon(offset: number, size: AccessSize, value: number): void {
    const core = this.core;
    const queue = core.selectedQueue;
    switch (offset) {
      case 0x00: core.deviceFeatureSelect = value >>> 0; return;
      case 0x08: core.driverFeatureSelect = value >>> 0; return;
      case 0x0c: core.writeDriverFeatureWord(value); return;
      case 0x10: this.configVector = this.vectorOrNone(value); return;
      case 0x14: if (size === 1) this.writeStatus(value & 0xff, false); return;
      case 0x16: core.queueSelect = value & 0xffff; return;
      case 0x18: if (queue !== undefined && core.selectedQueueWritable) queue.size = value & 0xffff; return;
      case 0x1a: if (queue !== undefined) this.queueVectors[core.queueSelect] = this.vectorOrNone(value); return;
      case 0x1c:
        if (queue !== undefined && (value & 1) === 1 && !core.active) core.queueEnabled[core.queueSelect] = true;
        return;
      case 0x20: case 0x24: case 0x28: case 0x2c: case 0x30: case 0x34:
        if (queue === undefined || !core.selectedQueueWritable) return;
        setQueueAddress(queue, offset, value);
        return;
      default:
        return;
    }
  }

  /** MSI-X vector numbers past the table read back as NO_VECTOR, as the spec asks. */
  private vectorOrNone(value: number): number {
    const vector = value & 0xffff;
    return vector < this.vectors ? vector : NO_VECTOR;
  }

  // ---- the legacy interface (BAR 0) ----

  private legacyRegisters(): BusDevice {
    return {
      read: (offset, size) => this.readLegacy(offset, size),
      write: (offset, size, value) => this.writeLegacy(offset, size, value),
    };
  }

  private legacyConfigStart(): number {
    return this.pci?.interruptMode() === 'msix' ? LEGACY_MSIX_HEADER : LEGACY_HEADER;
  }

  private readLegacy(offset: number, size: AccessSize): number {
    const core = this.core;
    const configStart = this.legacyConfigStart();
    if (offset >= configStart) return core.readDeviceConfig(offset - configStart, size);
    const queue = core.selectedQueue;
    switch (offset) {
      case Legacy.HostFeatures: return Number(core.offeredFeatures(true));
      case Legacy.GuestFeatures: return Number(core.driverFeatures & 0xffff_ffffn);
      case Legacy.QueuePfn: return queue === undefined ? 0 : Math.floor(queue.descriptorTable / LEGACY_ALIGN);
      case Legacy.QueueSize: return queue?.maxSize ?? 0;
      case Legacy.QueueSelect: return core.queueSelect;
      case Legacy.Status: return core.status;
      case Legacy.Isr: return this.readIsr();
      case Legacy.ConfigVector: return this.configVector;
      case Legacy.QueueVector: return queue === undefined ? NO_VECTOR : this.queueVectors[core.queueSelect]!;
      default: return 0;
    }
  }

  private writeLegacy(offset: number, size: AccessSize, value: number): void {
    const core = this.core;
    const configStart = this.legacyConfigStart();
    if (offset >= configStart) {
      core.writeDeviceConfig(offset - configStart, size, value);
      return;
    }
    if (!core.active) this.legacy = true;
    const queue = core.selectedQueue;
    switch (offset) {
      case Legacy.GuestFeatures:
        if (!core.active) core.driverFeatures = BigInt(value >>> 0) & core.offeredFeatures(true);
        return;
      case Legacy.QueuePfn: {
        if (queue === undefined) return;
        const pfn = value >>> 0;
        if (pfn === 0) {
          this.resetDevice();
          return;
        }
        // The legacy layout: descriptors, then the available ring, then the used ring at the next 4 KiB.
        queue.size = queue.maxSize;
        queue.descriptorTable = pfn * LEGACY_ALIGN;
        queue.availableRing = queue.descriptorTable + 16 * queue.size;
        queue.usedRing = Math.ceil((queue.availableRing + 6 + 2 * queue.size) / LEGACY_ALIGN) * LEGACY_ALIGN;
        core.queueEnabled[core.queueSelect] = true;
        return;
      }
      case Legacy.QueueSelect: core.queueSelect = value & 0xffff; return;
      case Legacy.QueueNotify: core.notifyQueue(value & 0xffff); return;
      case Legacy.Status: this.writeStatus(value & 0xff, true); return;
      case Legacy.ConfigVector: this.configVector = this.vectorOrNone(value); return;
      case Legacy.QueueVector: if (queue !== undefined) this.queueVectors[core.queueSelect] = this.vectorOrNone(value); return;
      default: return;
    }
  }

  /** A status of 0 resets the transport's registers too. */
  private writeStatus(value: number, legacy: boolean): void {
    if (value === 0) this.resetDevice();
    else this.core.writeStatus(value, legacy);
  }

  // ---- interrupts ----

  private readIsr(): number {
    const value = this.isr;
    this.isr = 0;
    this.pci?.setIntx(false);
    return value;
  }

  private interrupt(vector: number, isrBit: number): void {
    const pci = this.pci;
    if (pci === undefined) return;
    if (pci.interruptMode() === 'msix') {
      if (vector !== NO_VECTOR) pci.signalMsi(vector);
      return;
    }
    this.isr |= isrBit;
    pci.setIntx(true);
  }

  private resetDevice(): void {
    this.core.reset();
    this.configVector = NO_VECTOR;
    this.isr = 0;
    this.legacy = false;
    this.queueVectors.fill(NO_VECTOR);
    this.pci?.setIntx(false);
  }

  save(): VirtioPciState {
    const core = this.core;
    return {
      version: 1,
      ...core.save(),
      configVector: this.configVector,
      isr: this.isr,
      legacy: this.legacy,
      queues: core.queues.map((queue, index) => ({ state: queue.save(), vector: this.queueVectors[index]!, enabled: core.queueEnabled[index]! })),
      device: this.device.save(),
    };
  }

  /** Validates the transport's part, then restores it and the device (which validates its own). */
  restore(state: unknown): void {
    const reader = StateReader.open(state, 'virtio-pci', 1);
    const queues = reader.children('queues', this.core.queues.length);
    const configVector = reader.uint('configVector', 0xffff);
    const isr = reader.uint('isr', 3);
    const legacy = reader.boolean('legacy');
    const queueValues = queues.map((queue) => ({ vector: queue.uint('vector', 0xffff), enabled: queue.boolean('enabled'), state: queue.raw('state') }));
    this.core.restore(reader, queueValues);
    this.configVector = configVector;
    this.isr = isr;
    this.legacy = legacy;
    queueValues.forEach((queue, index) => (this.queueVectors[index] = queue.vector));
    this.pci?.setIntx(this.isr !== 0 && this.pci.interruptMode() === 'intx');
  }
}

/** The common configuration's queue_desc/driver/device halves (0x20–0x37). */
function setQueueAddress(queue: SplitQueue, offset: number, value: number): void {
  const field = offset < 0x28 ? 'descriptorTable' : offset < 0x30 ? 'availableRing' : 'usedRing';
  queue[field] = withHalf(queue[field], (offset & 4) !== 0, value);
}

function transitionalDeviceId(type: DeviceType): number {
  // virtio 1.2, 4.1.2.3: net 0x1000, block 0x1001, balloon 0x1002, console 0x1003, SCSI 0x1004, entropy 0x1005.
  const ids: Partial<Record<DeviceType, number>> = {
    [DeviceType.Network]: 0x1000,
    [DeviceType.Block]: 0x1001,
    [DeviceType.Balloon]: 0x1002,
    [DeviceType.Console]: 0x1003,
    [DeviceType.Scsi]: 0x1004,
    [DeviceType.Entropy]: 0x1005,
  };
  const id = ids[type];
  if (id === undefined) throw new RangeError(`device type ${type} has no transitional PCI ID`);
  return id;
}

/** A virtio vendor capability (virtio_pci_cap, and virtio_pci_notify_cap with its multiplier). */
function virtioCapability(type: CapabilityType, offset: number, length: number, multiplier?: number): PciCapability {
  const body = new Uint8Array(multiplier === undefined ? 14 : 18);
  const view = new DataView(body.buffer);
  body[0] = body.length + 2; // cap_len counts the ID and next bytes too
  body[1] = type;
  body[2] = MODERN_BAR;
  view.setUint32(6, offset, true);
  view.setUint32(10, length, true);
  if (multiplier !== undefined) view.setUint32(14, multiplier, true);
  return { kind: 'vendor', id: 0x09, body };
}



/** `size` bytes at `shift` within a 32-bit register value. */
function extract(value: number, shift: number, size: AccessSize): number {
  const shifted = value >>> (8 * shift);
  return size >= 4 ? shifted >>> 0 : shifted & ((1 << (8 * size)) - 1);
}


function nextPowerOfTwo(value: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(1, value)));
}
