import { type GuestMemory, StateReader } from '@tsvirt/interfaces';
import type { VirtioDevice, VirtioDeviceContext } from '../device.js';
import { QueueError, SplitQueue } from '../queue/split-queue.js';
import { DeviceStatus, Feature, featureMask, hasFeature } from '../spec.js';

/** The ring features every transport's queues implement. */
const RING_FEATURES = featureMask(Feature.RingIndirectDescriptors, Feature.RingEventIndex);

/** How a transport tells the driver: its own interrupt mechanism (MSI-X vectors, INTx and ISR, an MMIO line). */
export interface TransportSignals {
  /** Queue `index` has used buffers the driver asked to hear about. */
  queue(index: number): void;
  /** The device configuration changed, or the device needs a reset. */
  config(): void;
}

/** The part of a transport's state that every transport has. */
export interface TransportCoreState {
  readonly status: number;
  readonly deviceFeatureSelect: number;
  readonly driverFeatureSelect: number;
  /** The driver's features, as a decimal string (64 bits). */
  readonly driverFeatures: string;
  readonly queueSelect: number;
  readonly configGeneration: number;
}

/**
 * What is common to the virtio transports (virtio 1.2, 4.1 PCI and 4.2
 * MMIO): device status and feature negotiation, the queues the driver sets
 * up, starting the device at DRIVER_OK, notifications, used-buffer and
 * configuration signals, DEVICE_NEEDS_RESET, and reset. A transport maps its
 * registers onto this and delivers the signals its own way.
 */
export class TransportCore {
  readonly queues: SplitQueue[];
  /** The driver enabled the queue (queue_enable, QueueReady, or a legacy PFN). */
  readonly queueEnabled: boolean[];
  status = 0;
  deviceFeatureSelect = 0;
  driverFeatureSelect = 0;
  driverFeatures = 0n;
  queueSelect = 0;
  configGeneration = 0;
  active = false;

  constructor(
    readonly device: VirtioDevice,
    private readonly signals: TransportSignals,
    /** Guest memory as the device reaches it by DMA; undefined while the transport is not attached. */
    private readonly memory: () => GuestMemory | undefined,
  ) {
    this.queues = device.queueMaxSizes.map((size) => new SplitQueue(size));
    this.queueEnabled = this.queues.map(() => false);
  }

  /** What the device offers: its own features and the rings', with VERSION_1 except on a legacy interface (32 bits). */
  offeredFeatures(legacy: boolean): bigint {
    const offered = this.device.features | RING_FEATURES;
    return legacy ? offered & 0xffff_ffffn : offered | featureMask(Feature.Version1);
  }

  /** The 32 bits of the offered features that `deviceFeatureSelect` picks (0 past the second word). */
  deviceFeatureWord(): number {
    return this.deviceFeatureSelect > 1 ? 0 : Number((this.offeredFeatures(false) >> BigInt(32 * this.deviceFeatureSelect)) & 0xffff_ffffn);
  }

  driverFeatureWord(): number {
    return this.driverFeatureSelect > 1 ? 0 : Number((this.driverFeatures >> BigInt(32 * this.driverFeatureSelect)) & 0xffff_ffffn);
  }

  /** Features are fixed once FEATURES_OK is set. */
  writeDriverFeatureWord(value: number): void {
    if ((this.status & DeviceStatus.FeaturesOk) !== 0 || this.driverFeatureSelect > 1) return;
    const shift = BigInt(32 * this.driverFeatureSelect);
    this.driverFeatures = (this.driverFeatures & ~(0xffff_ffffn << shift)) | (BigInt(value >>> 0) << shift);
  }

  /** The queue `queueSelect` names, if the device has it. */
  get selectedQueue(): SplitQueue | undefined {
    return this.queues[this.queueSelect];
  }

  /** Layout can change only while the selected queue is disabled. */
  get selectedQueueWritable(): boolean {
    return this.selectedQueue !== undefined && !this.queueEnabled[this.queueSelect];
  }

  readDeviceConfig(offset: number, size: 1 | 2 | 4): number {
    if (offset + size > this.device.configSize) return 0;
    return this.device.readConfig(offset, size);
  }

  writeDeviceConfig(offset: number, size: 1 | 2 | 4, value: number): void {
    if (offset + size <= this.device.configSize) this.device.writeConfig(offset, size, value);
  }

  /** A status write; 0 resets. `legacy` skips the modern FEATURES_OK check (legacy drivers never set it). */
  writeStatus(value: number, legacy: boolean): void {
    if (value === 0) {
      this.reset();
      return;
    }
    let next = value;
    if (!legacy && (next & DeviceStatus.FeaturesOk) !== 0 && (this.status & DeviceStatus.FeaturesOk) === 0) {
      // FEATURES_OK stays clear when the driver accepted something not offered, or a modern driver not VERSION_1.
      const offered = this.offeredFeatures(false);
      if ((this.driverFeatures & ~offered) !== 0n || !hasFeature(this.driverFeatures, Feature.Version1)) next &= ~DeviceStatus.FeaturesOk;
    }
    this.status = next | (this.status & DeviceStatus.NeedsReset);
    if ((next & DeviceStatus.DriverOk) !== 0 && !this.active) this.activate();
  }

  private activate(): void {
    const memory = this.memory();
    if (memory === undefined) return;
    for (const [index, queue] of this.queues.entries()) {
      queue.ready = this.queueEnabled[index]!;
      this.applyRingFeatures(queue);
      if (!queue.ready) continue;
      const problem = queue.problem(memory);
      if (problem !== undefined) {
        this.needsReset(`queue ${index}: ${problem}`);
        return;
      }
    }
    this.active = true;
    this.device.activate(this.context(memory));
  }

  private applyRingFeatures(queue: SplitQueue): void {
    queue.eventIndex = hasFeature(this.driverFeatures, Feature.RingEventIndex);
    queue.indirect = hasFeature(this.driverFeatures, Feature.RingIndirectDescriptors);
  }

  private context(memory: GuestMemory): VirtioDeviceContext {
    return {
      memory,
      queues: this.queues,
      driverFeatures: this.driverFeatures,
      signalQueue: (index) => this.signalQueue(index, memory),
      signalConfigChange: () => this.signalConfig(),
      fail: (reason) => this.needsReset(reason),
    };
  }

  /** The driver kicked queue `index`; before DRIVER_OK, or for a queue not ready, nothing happens. */
  notifyQueue(index: number): void {
    if (!this.active || index >= this.queues.length || !this.queues[index]!.ready) return;
    try {
      this.device.notify(index);
    } catch (error) {
      if (error instanceof QueueError) this.needsReset(`queue ${index}: ${error.message}`);
      else throw error;
    }
  }

  private signalQueue(index: number, memory: GuestMemory): void {
    const queue = this.queues[index];
    if (!this.active || queue === undefined) return;
    let due: boolean;
    try {
      due = queue.shouldSignal(memory);
    } catch (error) {
      if (!(error instanceof QueueError)) throw error;
      this.needsReset(`queue ${index}: ${error.message}`);
      return;
    }
    if (due) this.signals.queue(index);
  }

  private signalConfig(): void {
    this.configGeneration = (this.configGeneration + 1) & 0xff;
    if ((this.status & DeviceStatus.DriverOk) !== 0) this.signals.config();
  }

  /** The driver broke the rules: stop the device and ask for a reset (4.1.4.3: NEEDS_RESET and a configuration interrupt). */
  needsReset(_reason: string): void {
    if (this.active) this.device.reset();
    this.active = false;
    for (const queue of this.queues) queue.ready = false;
    this.status |= DeviceStatus.NeedsReset;
    this.signalConfig();
  }

  /** The device as after a status write of 0; the transport resets its own registers too. */
  reset(): void {
    if (this.active || this.status !== 0) this.device.reset();
    this.active = false;
    this.status = 0;
    this.deviceFeatureSelect = 0;
    this.driverFeatureSelect = 0;
    this.driverFeatures = 0n;
    this.queueSelect = 0;
    for (const [index, queue] of this.queues.entries()) {
      queue.reset();
      this.queueEnabled[index] = false;
    }
  }

  save(): TransportCoreState {
    return {
      status: this.status,
      deviceFeatureSelect: this.deviceFeatureSelect,
      driverFeatureSelect: this.driverFeatureSelect,
      driverFeatures: this.driverFeatures.toString(),
      queueSelect: this.queueSelect,
      configGeneration: this.configGeneration,
    };
  }

  /**
   * Validates, then puts back the common state, the queues (`queues[i]` is
   * queue i's saved state and whether it was enabled) and the device.
   * `reader` is the transport's state; the device's state is its `device` field.
   */
  restore(reader: StateReader, queues: ReadonlyArray<{ readonly state: unknown; readonly enabled: boolean }>): void {
    const features = reader.string('driverFeatures');
    if (!/^\d{1,20}$/.test(features) || BigInt(features) >= 1n << 64n) reader.fail('driverFeatures', 'expected a 64-bit decimal');
    if (queues.length !== this.queues.length) reader.fail('queues', `expected ${this.queues.length} queues`);
    const status = reader.uint('status', 0xff);
    const deviceFeatureSelect = reader.uint('deviceFeatureSelect', 0xffff_ffff);
    const driverFeatureSelect = reader.uint('driverFeatureSelect', 0xffff_ffff);
    const queueSelect = reader.uint('queueSelect', 0xffff);
    const configGeneration = reader.uint('configGeneration', 0xff);
    // Every queue's state is checked before anything changes.
    const scratch = this.queues.map((queue) => new SplitQueue(queue.maxSize));
    queues.forEach((queue, index) => scratch[index]!.restore(queue.state));
    this.status = status;
    this.deviceFeatureSelect = deviceFeatureSelect;
    this.driverFeatureSelect = driverFeatureSelect;
    this.queueSelect = queueSelect;
    this.configGeneration = configGeneration;
    this.driverFeatures = BigInt(features);
    queues.forEach((queue, index) => {
      this.queues[index]!.restore(queue.state);
      this.applyRingFeatures(this.queues[index]!);
      this.queueEnabled[index] = queue.enabled;
    });
    this.active = (this.status & DeviceStatus.DriverOk) !== 0 && (this.status & DeviceStatus.NeedsReset) === 0;
    const memory = this.memory();
    this.device.restore(reader.raw('device'), this.active && memory !== undefined ? this.context(memory) : undefined);
  }
}

/** The low 32 bits of a guest address. */
export function low(value: number): number {
  return value % 0x1_0000_0000;
}

export function high(value: number): number {
  return Math.floor(value / 0x1_0000_0000);
}

/** Sets the low or high half of a 64-bit queue address (the high half limited to 53 bits in all). */
export function withHalf(current: number, highHalf: boolean, value: number): number {
  return highHalf ? Math.min(value >>> 0, 0x1f_ffff) * 0x1_0000_0000 + low(current) : high(current) * 0x1_0000_0000 + (value >>> 0);
}
