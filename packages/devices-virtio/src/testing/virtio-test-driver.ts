import { type BusDevice, type GuestMemory, guestAddress, type PciDeviceContext } from '@tsvirt/interfaces';
import type { VirtioPci } from '../pci/virtio-pci.js';
import { DescriptorFlag, DeviceStatus, Feature, featureMask } from '../spec.js';

/** A PCI core stand-in: records INTx and MSI-X signals, DMA goes to `dma`. */
export class TestPciContext implements PciDeviceContext {
  intx = false;
  readonly msiVectors: number[] = [];
  mode: 'intx' | 'msix' = 'msix';

  constructor(readonly dma: GuestMemory) {}

  setIntx(asserted: boolean): void {
    this.intx = asserted;
  }

  signalMsi(vector: number): void {
    this.msiVectors.push(vector);
  }

  interruptMode(): 'intx' | 'msi' | 'msix' {
    return this.mode;
  }

  busMasterEnabled(): boolean {
    return true;
  }
}

export interface TestRequest {
  /** Buffers the device reads, in order. */
  readonly readable?: readonly Uint8Array[];
  /** Lengths of the buffers the device writes, in order. */
  readonly writable?: readonly number[];
  /** Put the chain in an indirect table. */
  readonly indirect?: boolean;
}

export interface TestCompletion {
  readonly head: number;
  /** The used length the device reported. */
  readonly length: number;
  /** What the device wrote into each writable buffer. */
  readonly writable: Uint8Array[];
}

export interface VirtioTestDriverOptions {
  /** Guest-physical address from which rings and buffers are allocated (default 1 MiB). */
  readonly base?: number;
  /** Device features to accept (default: everything offered). */
  readonly accept?: (offered: bigint) => bigint;
  /** Queue size to program (default: the device's maximum). */
  readonly queueSize?: number;
}

interface QueueLayout {
  size: number;
  descriptors: number;
  available: number;
  used: number;
  freeHeads: number[];
  availableIndex: number;
  usedSeen: number;
  pending: Map<number, { writable: Array<{ address: number; length: number }>; descriptors: number[] }>;
}

const MODERN_BAR = 4;

/**
 * A virtio 1.x driver for tests, over the modern PCI interface of a
 * `VirtioPci` (no PCI core needed): feature negotiation, split queues in
 * guest memory, requests with direct or indirect descriptors, and the used
 * ring read back. Device implementers drive their device with it the way
 * Linux's virtio_pci does.
 *
 * @example
 * ```ts
 * const memory = new GuestRam({ size: 16 << 20 });
 * const pci = new TestPciContext(memory);
 * const transport = new VirtioPci(new VirtioRng());
 * transport.attach(pci);
 * const driver = new VirtioTestDriver(transport, memory);
 * driver.initialize();
 * driver.submit(0, { writable: [32] });
 * driver.notify(0);
 * const [done] = driver.takeUsed(0); // { head, length: 32, writable: [32 random bytes] }
 * ```
 */
export class VirtioTestDriver {
  private readonly registers: BusDevice;
  private next: number;
  private readonly queues: QueueLayout[] = [];
  /** The features the driver accepted. */
  features = 0n;

  constructor(
    readonly transport: VirtioPci,
    readonly memory: GuestMemory,
    private readonly options: VirtioTestDriverOptions = {},
  ) {
    const bar = transport.bars[MODERN_BAR];
    if (bar === undefined) throw new Error('the transport has no modern BAR');
    this.registers = bar.device;
    this.next = options.base ?? 1 << 20;
  }

  readCommon(offset: number, size: 1 | 2 | 4): number {
    return this.registers.read(offset, size);
  }

  writeCommon(offset: number, size: 1 | 2 | 4, value: number): void {
    this.registers.write(offset, size, value);
  }

  get status(): number {
    return this.readCommon(0x14, 1);
  }

  set status(value: number) {
    this.writeCommon(0x14, 1, value);
  }

  /** The device's offered features (64 bits). */
  offeredFeatures(): bigint {
    this.writeCommon(0x00, 4, 0);
    const low = BigInt(this.readCommon(0x04, 4));
    this.writeCommon(0x00, 4, 1);
    return low | (BigInt(this.readCommon(0x04, 4)) << 32n);
  }

  /** Linux's virtio_dev_probe + virtio_pci's find_vqs: reset, negotiate, set up every queue, DRIVER_OK. */
  initialize(): void {
    this.status = 0;
    this.status = DeviceStatus.Acknowledge;
    this.status = DeviceStatus.Acknowledge | DeviceStatus.Driver;
    const offered = this.offeredFeatures();
    this.features = (this.options.accept ?? ((all) => all))(offered) | featureMask(Feature.Version1);
    for (const select of [0, 1]) {
      this.writeCommon(0x08, 4, select);
      this.writeCommon(0x0c, 4, Number((this.features >> BigInt(32 * select)) & 0xffff_ffffn));
    }
    this.status = DeviceStatus.Acknowledge | DeviceStatus.Driver | DeviceStatus.FeaturesOk;
    if ((this.status & DeviceStatus.FeaturesOk) === 0) throw new Error('the device refused the features');
    const count = this.readCommon(0x12, 2);
    for (let index = 0; index < count; index++) this.setUpQueue(index);
    this.status = DeviceStatus.Acknowledge | DeviceStatus.Driver | DeviceStatus.FeaturesOk | DeviceStatus.DriverOk;
  }

  private setUpQueue(index: number): void {
    this.writeCommon(0x16, 2, index);
    const size = this.options.queueSize ?? this.readCommon(0x18, 2);
    this.writeCommon(0x18, 2, size);
    const descriptors = this.allocate(16 * size, 16);
    const available = this.allocate(6 + 2 * size, 2);
    const used = this.allocate(6 + 8 * size, 4);
    for (const [offset, address] of [[0x20, descriptors], [0x28, available], [0x30, used]] as const) {
      this.writeCommon(offset, 4, address % 0x1_0000_0000);
      this.writeCommon(offset + 4, 4, Math.floor(address / 0x1_0000_0000));
    }
    this.writeCommon(0x1a, 2, index + 1); // queue MSI-X vector: 0 is for configuration changes
    this.writeCommon(0x1c, 2, 1);
    this.queues[index] = { size, descriptors, available, used, freeHeads: Array.from({ length: size }, (_, head) => head), availableIndex: 0, usedSeen: 0, pending: new Map() };
  }

  /** Guest memory for the driver's own use (rings, buffers). */
  allocate(length: number, alignment = 8): number {
    const address = Math.ceil(this.next / alignment) * alignment;
    this.next = address + length;
    if (this.next > this.memory.size) throw new Error('the test driver ran out of guest memory');
    return address;
  }

  /** Adds a request to queue `index` (not yet notified); returns its head descriptor. */
  submit(index: number, request: TestRequest): number {
    const queue = this.queues[index]!;
    const buffers: Array<{ address: number; length: number; write: boolean }> = [];
    for (const data of request.readable ?? []) {
      const address = this.allocate(Math.max(1, data.length));
      this.memory.write(guestAddress(address), data);
      buffers.push({ address, length: data.length, write: false });
    }
    for (const length of request.writable ?? []) buffers.push({ address: this.allocate(Math.max(1, length)), length, write: true });
    const used: number[] = [];
    let head: number;
    if (request.indirect) {
      const table = this.allocate(16 * buffers.length, 16);
      buffers.forEach((buffer, position) => this.writeDescriptor(table + 16 * position, buffer.address, buffer.length, (buffer.write ? DescriptorFlag.Write : 0) | (position + 1 < buffers.length ? DescriptorFlag.Next : 0), position + 1));
      head = this.takeHead(queue);
      used.push(head);
      this.writeDescriptor(queue.descriptors + 16 * head, table, 16 * buffers.length, DescriptorFlag.Indirect, 0);
    } else {
      const heads = buffers.map(() => this.takeHead(queue));
      head = heads[0]!;
      buffers.forEach((buffer, position) => this.writeDescriptor(queue.descriptors + 16 * heads[position]!, buffer.address, buffer.length, (buffer.write ? DescriptorFlag.Write : 0) | (position + 1 < buffers.length ? DescriptorFlag.Next : 0), heads[position + 1] ?? 0));
      used.push(...heads);
    }
    queue.pending.set(head, { writable: buffers.filter((buffer) => buffer.write), descriptors: used });
    this.memory.writeU16(guestAddress(queue.available + 4 + 2 * (queue.availableIndex % queue.size)), head);
    queue.availableIndex = (queue.availableIndex + 1) & 0xffff;
    this.memory.writeU16(guestAddress(queue.available + 2), queue.availableIndex);
    return head;
  }

  /** Kicks queue `index` through the notify structure. */
  notify(index: number): void {
    this.writeCommon(0x3000 + 4 * index, 2, index);
  }

  /** Used entries published since the last call, with what was written into their buffers. */
  takeUsed(index: number): TestCompletion[] {
    const queue = this.queues[index]!;
    const usedIndex = this.memory.readU16(guestAddress(queue.used + 2));
    const done: TestCompletion[] = [];
    while (queue.usedSeen !== usedIndex) {
      const slot = queue.used + 4 + 8 * (queue.usedSeen % queue.size);
      const head = this.memory.readU32(guestAddress(slot));
      const length = this.memory.readU32(guestAddress(slot + 4));
      const request = queue.pending.get(head);
      if (request === undefined) throw new Error(`the device returned head ${head}, which is not in flight`);
      queue.pending.delete(head);
      queue.freeHeads.push(...request.descriptors);
      done.push({
        head,
        length,
        writable: request.writable.map((buffer) => {
          const bytes = new Uint8Array(buffer.length);
          this.memory.read(guestAddress(buffer.address), bytes);
          return bytes;
        }),
      });
      queue.usedSeen = (queue.usedSeen + 1) & 0xffff;
    }
    return done;
  }

  /** Byte offset `offset` of the device-specific configuration. */
  readDeviceConfig(offset: number, size: 1 | 2 | 4): number {
    return this.registers.read(0x2000 + offset, size);
  }

  private takeHead(queue: QueueLayout): number {
    const head = queue.freeHeads.shift();
    if (head === undefined) throw new Error('the test driver ran out of descriptors');
    return head;
  }

  private writeDescriptor(at: number, address: number, length: number, flags: number, next: number): void {
    this.memory.writeU32(guestAddress(at), address % 0x1_0000_0000);
    this.memory.writeU32(guestAddress(at + 4), Math.floor(address / 0x1_0000_0000));
    this.memory.writeU32(guestAddress(at + 8), length);
    this.memory.writeU16(guestAddress(at + 12), flags);
    this.memory.writeU16(guestAddress(at + 14), next);
  }
}
