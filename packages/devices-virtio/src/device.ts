import type { GuestMemory } from '@tsvirt/interfaces';
import type { SplitQueue } from './queue/split-queue.js';
import type { DeviceType } from './spec.js';

/**
 * What a transport gives a device once the driver has set DRIVER_OK: guest
 * memory for DMA, the queues as the driver configured them, the features it
 * accepted, and the ways back to the driver.
 */
export interface VirtioDeviceContext {
  readonly memory: GuestMemory;
  /** One per queue the device declared; a queue the driver did not enable has `ready` false. */
  readonly queues: readonly SplitQueue[];
  readonly driverFeatures: bigint;
  /** Used buffers were pushed on queue `index`: interrupts the driver if its suppression allows. */
  signalQueue(index: number): void;
  /** The device's configuration changed (the transport bumps the configuration generation). */
  signalConfigChange(): void;
  /** The driver broke the rules: the device stops and asks for a reset (DEVICE_NEEDS_RESET). */
  fail(reason: string): void;
}

/**
 * A virtio device behind any transport (PCI, MMIO), in the shape of
 * rust-vmm's VirtioDevice: its type, queues, features and configuration
 * space, and the transport's calls into it. It never sees the bus.
 */
export interface VirtioDevice {
  readonly deviceType: DeviceType;
  /** The largest size of each queue; their number is the device's queue count. */
  readonly queueMaxSizes: readonly number[];
  /** Device-specific feature bits offered (the transport adds VERSION_1 and the ring features). */
  readonly features: bigint;
  /** Bytes of device-specific configuration space. */
  readonly configSize: number;
  readConfig(offset: number, size: 1 | 2 | 4): number;
  writeConfig(offset: number, size: 1 | 2 | 4, value: number): void;
  /** DRIVER_OK: start serving the queues. */
  activate(context: VirtioDeviceContext): void;
  /** The driver notified (kicked) queue `index`. */
  notify(index: number): void;
  /** Device reset: forget the queues and drop the results of requests still in flight. */
  reset(): void;
  /** Device state beyond the queues (requests in flight, device registers), JSON-compatible. */
  save(): unknown;
  /** Puts back `save()`'s state; `context` is there when the saved device was active. */
  restore(state: unknown, context: VirtioDeviceContext | undefined): void;
}
