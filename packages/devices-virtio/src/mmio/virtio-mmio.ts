import { type AccessSize, type BusDevice, type GuestMemory, type IrqLine, StateReader } from '@tsvirt/interfaces';
import type { VirtioDevice } from '../device.js';
import type { SplitQueueState } from '../queue/split-queue.js';
import { high, low, TransportCore, type TransportCoreState, withHalf } from '../transport/transport-core.js';

/** "virt", little-endian. */
const MAGIC = 0x7472_6976;
/** The modern (virtio 1.x) register layout; version 1 is the legacy one, which this transport does not offer. */
const VERSION = 2;
/** QEMU's vendor ID for its virtio-mmio devices: "QEMU". */
const VENDOR = 0x554d_4551;
/** Registers, then the device configuration from 0x100 (virtio 1.2, 4.2.2). */
export const VIRTIO_MMIO_SIZE = 0x200;

enum Register {
  MagicValue = 0x000,
  Version = 0x004,
  DeviceId = 0x008,
  VendorId = 0x00c,
  DeviceFeatures = 0x010,
  DeviceFeaturesSelect = 0x014,
  DriverFeatures = 0x020,
  DriverFeaturesSelect = 0x024,
  QueueSelect = 0x030,
  QueueSizeMax = 0x034,
  QueueSize = 0x038,
  QueueReady = 0x044,
  QueueNotify = 0x050,
  InterruptStatus = 0x060,
  InterruptAcknowledge = 0x064,
  Status = 0x070,
  QueueDescriptorLow = 0x080,
  QueueDescriptorHigh = 0x084,
  QueueDriverLow = 0x090,
  QueueDriverHigh = 0x094,
  QueueDeviceLow = 0x0a0,
  QueueDeviceHigh = 0x0a4,
  SharedMemoryLengthLow = 0x0b0,
  SharedMemoryLengthHigh = 0x0b4,
  SharedMemoryBaseLow = 0x0b8,
  SharedMemoryBaseHigh = 0x0bc,
  ConfigGeneration = 0x0fc,
  Config = 0x100,
}

const Interrupt = { UsedBuffer: 1, ConfigChange: 2 } as const;

export interface VirtioMmioState extends TransportCoreState {
  readonly version: 1;
  readonly interruptStatus: number;
  readonly queues: Array<{ state: SplitQueueState; enabled: boolean }>;
  readonly device: unknown;
}

/**
 * The virtio MMIO transport (virtio 1.2, 4.2), version 2, around any
 * `VirtioDevice`: 0x100 bytes of 32-bit registers, then the device
 * configuration, and one level-triggered interrupt line that stays asserted
 * while InterruptStatus has a bit set. Linux's `virtio_mmio` finds it through
 * an ACPI `LNRO0005` device giving its address and interrupt. Registers take
 * only 32-bit accesses (others read 0 and are ignored, as in QEMU); the
 * configuration any width.
 *
 * @example
 * ```ts
 * const rng = new VirtioMmio(new VirtioRng());
 * rng.attach(memory, irqLine);
 * mmioBus.register(0xfeb0_0000, VIRTIO_MMIO_SIZE, rng.registers, 'virtio-mmio');
 * ```
 */
export class VirtioMmio {
  readonly length = VIRTIO_MMIO_SIZE;
  readonly registers: BusDevice = { read: (offset, size) => this.read(offset, size), write: (offset, size, value) => this.write(offset, size, value) };
  private readonly core: TransportCore;
  private memory: GuestMemory | undefined;
  private irq: IrqLine | undefined;
  private interruptStatus = 0;

  constructor(readonly device: VirtioDevice) {
    this.core = new TransportCore(device, { queue: () => this.raise(Interrupt.UsedBuffer), config: () => this.raise(Interrupt.ConfigChange) }, () => this.memory);
  }

  /** Connects guest memory (for the queues) and the interrupt line. */
  attach(memory: GuestMemory, irq: IrqLine): void {
    this.memory = memory;
    this.irq = irq;
  }

  /** System reset: the device as after a status write of 0. */
  reset(): void {
    this.core.reset();
    this.interruptStatus = 0;
    this.irq?.setLevel(false);
  }

  private read(offset: number, size: AccessSize): number {
    const core = this.core;
    if (offset >= Register.Config) return core.readDeviceConfig(offset - Register.Config, size as 1 | 2 | 4);
    if (size !== 4 || (offset & 3) !== 0) return 0;
    const queue = core.selectedQueue;
    switch (offset) {
      case Register.MagicValue: return MAGIC;
      case Register.Version: return VERSION;
      case Register.DeviceId: return this.device.deviceType;
      case Register.VendorId: return VENDOR;
      case Register.DeviceFeatures: return core.deviceFeatureWord();
      case Register.QueueSizeMax: return queue?.maxSize ?? 0;
      case Register.QueueReady: return core.queueEnabled[core.queueSelect] === true ? 1 : 0;
      case Register.InterruptStatus: return this.interruptStatus;
      case Register.Status: return core.status;
      case Register.QueueDescriptorLow: return queue === undefined ? 0 : low(queue.descriptorTable);
      case Register.QueueDescriptorHigh: return queue === undefined ? 0 : high(queue.descriptorTable);
      case Register.QueueDriverLow: return queue === undefined ? 0 : low(queue.availableRing);
      case Register.QueueDriverHigh: return queue === undefined ? 0 : high(queue.availableRing);
      case Register.QueueDeviceLow: return queue === undefined ? 0 : low(queue.usedRing);
      case Register.QueueDeviceHigh: return queue === undefined ? 0 : high(queue.usedRing);
      // No shared memory regions: every ID reads a length of -1 (4.2.2).
      case Register.SharedMemoryLengthLow:
      case Register.SharedMemoryLengthHigh:
      case Register.SharedMemoryBaseLow:
      case Register.SharedMemoryBaseHigh:
        return 0xffff_ffff;
      case Register.ConfigGeneration: return core.configGeneration;
      default: return 0;
    }
  }

  private write(offset: number, size: AccessSize, value: number): void {
    const core = this.core;
    if (offset >= Register.Config) {
      core.writeDeviceConfig(offset - Register.Config, size as 1 | 2 | 4, value);
      return;
    }
    if (size !== 4 || (offset & 3) !== 0) return;
    const queue = core.selectedQueue;
    switch (offset) {
      case Register.DeviceFeaturesSelect: core.deviceFeatureSelect = value >>> 0; return;
      case Register.DriverFeatures: core.writeDriverFeatureWord(value); return;
      case Register.DriverFeaturesSelect: core.driverFeatureSelect = value >>> 0; return;
      // Any number past the queues selects none; 0xFFFF stands for all of them (no device has that many queues).
      case Register.QueueSelect: core.queueSelect = Math.min(value >>> 0, 0xffff); return;
      case Register.QueueSize: if (queue !== undefined && core.selectedQueueWritable) queue.size = value & 0xffff; return;
      case Register.QueueReady:
        // Enabling is the driver's last step for a queue; disabling it again is how it resets one queue, which is not offered.
        if (queue !== undefined && (value & 1) === 1 && !core.active) core.queueEnabled[core.queueSelect] = true;
        return;
      case Register.QueueNotify: core.notifyQueue(value & 0xffff); return;
      case Register.InterruptAcknowledge:
        this.interruptStatus &= ~value;
        this.irq?.setLevel(this.interruptStatus !== 0);
        return;
      case Register.Status:
        if ((value & 0xff) === 0) this.reset();
        else core.writeStatus(value & 0xff, false);
        return;
      case Register.QueueDescriptorLow:
      case Register.QueueDescriptorHigh:
        if (queue !== undefined && core.selectedQueueWritable) queue.descriptorTable = withHalf(queue.descriptorTable, offset === Register.QueueDescriptorHigh, value);
        return;
      case Register.QueueDriverLow:
      case Register.QueueDriverHigh:
        if (queue !== undefined && core.selectedQueueWritable) queue.availableRing = withHalf(queue.availableRing, offset === Register.QueueDriverHigh, value);
        return;
      case Register.QueueDeviceLow:
      case Register.QueueDeviceHigh:
        if (queue !== undefined && core.selectedQueueWritable) queue.usedRing = withHalf(queue.usedRing, offset === Register.QueueDeviceHigh, value);
        return;
      default:
        return;
    }
  }

  private raise(bit: number): void {
    this.interruptStatus |= bit;
    this.irq?.setLevel(true);
  }

  save(): VirtioMmioState {
    const core = this.core;
    return {
      version: 1,
      ...core.save(),
      interruptStatus: this.interruptStatus,
      queues: core.queues.map((queue, index) => ({ state: queue.save(), enabled: core.queueEnabled[index]! })),
      device: this.device.save(),
    };
  }

  /** Validates the transport's part, then restores it and the device (which validates its own). */
  restore(state: unknown): void {
    const reader = StateReader.open(state, 'virtio-mmio', 1);
    const interruptStatus = reader.uint('interruptStatus', 3);
    const queues = reader.children('queues', this.core.queues.length).map((queue) => ({ enabled: queue.boolean('enabled'), state: queue.raw('state') }));
    this.core.restore(reader, queues);
    this.interruptStatus = interruptStatus;
    this.irq?.setLevel(interruptStatus !== 0);
  }
}
