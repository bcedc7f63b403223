import { type CharacterBackend, type CharacterFrontend, encodeStateBytes, StateReader } from '@tsvirt/interfaces';
import type { VirtioDevice, VirtioDeviceContext } from '../device.js';
import { type DescriptorChain, QueueError, readFromChain, type SplitQueue, writeToChain } from '../queue/split-queue.js';
import { DeviceType, featureMask } from '../spec.js';

/** virtio-console feature bits (5.3.3). */
export enum ConsoleFeature {
  Size = 0,
  Multiport = 1,
  EmergencyWrite = 2,
}

/** Control message events (5.3.6.2). */
enum Control {
  DeviceReady = 0,
  DeviceAdd = 1,
  DeviceRemove = 2,
  PortReady = 3,
  ConsolePort = 4,
  Resize = 5,
  PortOpen = 6,
  PortName = 7,
}

const QUEUE_SIZE = 128;
const CONTROL_BYTES = 8;
/** Bytes taken from a transmit chain at a time, whatever it claims. */
const TRANSMIT_CHUNK = 64 * 1024;
/** A control message from the driver is 8 bytes; anything much longer is not one. */
const MAX_CONTROL = 4096;

/** One port of the device: `hvc0` when it is a console, `/dev/vport0pN` (named `name`) otherwise. */
export interface VirtioConsolePort {
  readonly backend: CharacterBackend;
  /** A console port (virtconsole) becomes an `hvc` device in Linux. */
  readonly console?: boolean;
  /** Shown in /sys/class/virtio-ports/vport0pN/name (udev links it as /dev/virtio-ports/NAME). */
  readonly name?: string;
}

export interface VirtioConsoleOptions {
  /** The ports, as QEMU's `virtconsole`/`virtserialport` devices on a `virtio-serial-pci`: port 0 first. */
  readonly ports: readonly VirtioConsolePort[];
  /** How many ports the device can ever have (QEMU's `max_ports`, default 31). */
  readonly maxPorts?: number;
}

/** What the device keeps for a port between calls. */
class Port implements CharacterFrontend {
  /** Receive buffers the driver gave, oldest first. */
  readonly buffers: DescriptorChain[] = [];
  /** The driver said PORT_READY, and whether the guest has the port open. */
  ready = false;
  guestOpen = false;

  constructor(
    readonly index: number,
    readonly options: VirtioConsolePort,
    private readonly device: VirtioConsole,
  ) {}

  receiveCapacity(): number {
    return this.device.receiveCapacity(this);
  }

  receive(data: Uint8Array): void {
    this.device.deliver(this, data);
  }
}

/**
 * virtio-console / virtio-serial (virtio 1.2, 5.3), as QEMU's
 * `virtio-serial-pci` with `virtconsole` and `virtserialport` devices: the
 * multiport protocol (control queues, DEVICE_ADD, CONSOLE_PORT, PORT_NAME,
 * PORT_OPEN), each port connected to a host character back end. Host input
 * waits in the back end until the guest gives receive buffers, and flows as
 * they come; guest output goes to the back end as the guest sends it.
 */
export class VirtioConsole implements VirtioDevice {
  readonly deviceType = DeviceType.Console;
  readonly queueMaxSizes: readonly number[];
  readonly features = featureMask(ConsoleFeature.Multiport);
  readonly configSize = 12;
  private readonly ports: Port[];
  private readonly maxPorts: number;
  private context: VirtioDeviceContext | undefined;
  /** Control messages waiting for receive buffers on the control queue. */
  private readonly controlOut: Uint8Array[] = [];

  constructor(options: VirtioConsoleOptions) {
    this.maxPorts = options.maxPorts ?? 31;
    if (!Number.isInteger(this.maxPorts) || this.maxPorts < 1 || this.maxPorts > 31) throw new RangeError(`max ports must be 1 to 31, not ${this.maxPorts}`);
    if (options.ports.length > this.maxPorts) throw new RangeError(`${options.ports.length} ports do not fit in ${this.maxPorts}`);
    options.ports.forEach((port, index) => {
      if (port.console === true && index !== 0 && options.ports.slice(0, index).some((other) => other.console === true)) throw new RangeError('one console port at most');
    });
    this.ports = options.ports.map((port, index) => new Port(index, port, this));
    // Port 0's queues, the control queues, then ports 1…max-1 (5.3.2).
    this.queueMaxSizes = Array.from({ length: 2 * (this.maxPorts + 1) }, () => QUEUE_SIZE);
    for (const port of this.ports) port.options.backend.connect(port);
  }

  readConfig(offset: number, size: 1 | 2 | 4): number {
    const config = new Uint8Array(this.configSize);
    new DataView(config.buffer).setUint32(4, this.maxPorts, true);
    let value = 0;
    for (let i = 0; i < size; i++) value |= (config[offset + i] ?? 0) << (8 * i);
    return value >>> 0;
  }

  writeConfig(offset: number, size: 1 | 2 | 4, value: number): void {
    // emerg_wr (offset 8): a character written with the device not ready (EMERGENCY_WRITE is not offered).
    if (offset === 8 && size === 4) this.ports[0]?.options.backend.write(Uint8Array.of(value & 0xff));
  }

  activate(context: VirtioDeviceContext): void {
    this.context = context;
  }

  notify(index: number): void {
    const context = this.context;
    if (context === undefined) return;
    if (index === 2) this.fillControl();
    else if (index === 3) this.readControl();
    else {
      const port = this.ports[queuePort(index)];
      if (port === undefined) {
        // A queue of a port that does not exist: drain it, writing nothing.
        const queue = context.queues[index]!;
        for (let chain = queue.pop(context.memory); chain !== undefined; chain = queue.pop(context.memory)) queue.push(context.memory, chain.head, 0);
        context.signalQueue(index);
      } else if (index % 2 === 0) this.takeReceiveBuffers(port);
      else this.transmit(port, index);
    }
  }

  reset(): void {
    this.context = undefined;
    this.controlOut.length = 0;
    for (const port of this.ports) {
      port.buffers.length = 0;
      port.ready = false;
      port.guestOpen = false;
    }
  }

  save(): unknown {
    return {
      version: 1,
      controlOut: this.controlOut.map((message) => ({ bytes: encodeStateBytes(message) })),
      ports: this.ports.map((port) => ({ ready: port.ready, guestOpen: port.guestOpen, buffers: port.buffers.map((chain) => chain.head) })),
    };
  }

  restore(state: unknown, context: VirtioDeviceContext | undefined): void {
    const reader = StateReader.open(state, 'virtio-console', 1);
    const ports = reader.children('ports', this.ports.length);
    if (ports.length !== this.ports.length) reader.fail('ports', `expected ${this.ports.length} ports`);
    const parsed = ports.map((port) => ({ ready: port.boolean('ready'), guestOpen: port.boolean('guestOpen'), buffers: port.uintArray('buffers', QUEUE_SIZE, QUEUE_SIZE - 1) }));
    const messages = reader.children('controlOut', 1024).map((message) => message.bytes('bytes', MAX_CONTROL));
    this.reset();
    this.controlOut.push(...messages);
    if (context === undefined) return;
    this.context = context;
    parsed.forEach((saved, index) => {
      const port = this.ports[index]!;
      port.ready = saved.ready;
      port.guestOpen = saved.guestOpen;
      for (const head of saved.buffers) port.buffers.push(context.queues[receiveQueue(index)]!.chainAt(context.memory, head));
    });
  }

  /** @internal Bytes the port can take now: the room in the receive buffers it holds. */
  receiveCapacity(port: Port): number {
    if (!port.ready) return 0;
    let room = 0;
    for (const chain of port.buffers) room += chain.writableLength;
    return room;
  }

  /** @internal Host input for `port`: fills its receive buffers in order and returns the full ones. */
  deliver(port: Port, data: Uint8Array): void {
    const context = this.context;
    if (context === undefined) return;
    const queueIndex = receiveQueue(port.index);
    const queue = context.queues[queueIndex]!;
    let offset = 0;
    try {
      while (offset < data.length && port.buffers.length > 0) {
        // A buffer goes back as soon as it holds something: a console wants characters now, not when 4 KiB are there.
        const chain = port.buffers.shift()!;
        const written = writeToChain(context.memory, chain, 0, data.subarray(offset, offset + chain.writableLength));
        offset += written;
        queue.push(context.memory, chain.head, written);
      }
    } catch (error) {
      this.queueFailed(error);
      return;
    }
    context.signalQueue(queueIndex);
  }

  private takeReceiveBuffers(port: Port): void {
    const context = this.context!;
    const queue = context.queues[receiveQueue(port.index)]!;
    for (let chain = queue.pop(context.memory); chain !== undefined; chain = queue.pop(context.memory)) {
      if (chain.writableLength === 0) queue.push(context.memory, chain.head, 0);
      else port.buffers.push(chain);
    }
    port.options.backend.notifyReceiveReady();
  }

  private transmit(port: Port, index: number): void {
    const context = this.context!;
    const queue = context.queues[index]!;
    for (let chain = queue.pop(context.memory); chain !== undefined; chain = queue.pop(context.memory)) {
      for (let offset = 0; offset < chain.readableLength; offset += TRANSMIT_CHUNK) {
        const piece = new Uint8Array(Math.min(TRANSMIT_CHUNK, chain.readableLength - offset));
        readFromChain(context.memory, chain, offset, piece);
        port.options.backend.write(piece);
      }
      queue.push(context.memory, chain.head, 0);
    }
    context.signalQueue(index);
  }

  /** Messages from the driver on the control transmit queue. */
  private readControl(): void {
    const context = this.context!;
    const queue = context.queues[3]!;
    for (let chain = queue.pop(context.memory); chain !== undefined; chain = queue.pop(context.memory)) {
      const message = new Uint8Array(Math.min(CONTROL_BYTES, chain.readableLength));
      readFromChain(context.memory, chain, 0, message);
      queue.push(context.memory, chain.head, 0);
      if (message.length === CONTROL_BYTES) this.handleControl(message);
    }
    context.signalQueue(3);
    this.fillControl();
  }

  private handleControl(message: Uint8Array): void {
    const view = new DataView(message.buffer);
    const id = view.getUint32(0, true);
    const event = view.getUint16(4, true);
    const value = view.getUint16(6, true);
    switch (event) {
      case Control.DeviceReady:
        // The driver is ready: announce every port (Linux then sends PORT_READY for each).
        if (value === 1) for (const port of this.ports) this.sendControl(port.index, Control.DeviceAdd, 1);
        return;
      case Control.PortReady: {
        const port = this.ports[id];
        if (port === undefined || value !== 1) return;
        port.ready = true;
        if (port.options.console === true) this.sendControl(id, Control.ConsolePort, 1);
        if (port.options.name !== undefined) this.sendControl(id, Control.PortName, 1, new TextEncoder().encode(port.options.name));
        // The host side is connected from the start (the back end exists).
        this.sendControl(id, Control.PortOpen, 1);
        port.options.backend.notifyReceiveReady();
        return;
      }
      case Control.PortOpen: {
        const port = this.ports[id];
        if (port !== undefined) port.guestOpen = value === 1;
        return;
      }
      default:
        return;
    }
  }

  private sendControl(id: number, event: Control, value: number, payload?: Uint8Array): void {
    const message = new Uint8Array(CONTROL_BYTES + (payload?.length ?? 0));
    const view = new DataView(message.buffer);
    view.setUint32(0, id, true);
    view.setUint16(4, event, true);
    view.setUint16(6, value, true);
    if (payload !== undefined) message.set(payload, CONTROL_BYTES);
    this.controlOut.push(message);
  }

  /** Puts waiting control messages into the driver's control receive buffers. */
  private fillControl(): void {
    const context = this.context;
    if (context === undefined || this.controlOut.length === 0) return;
    const queue: SplitQueue = context.queues[2]!;
    let sent = 0;
    try {
      while (this.controlOut.length > 0) {
        const chain = queue.pop(context.memory);
        if (chain === undefined) break;
        const message = this.controlOut.shift()!;
        queue.push(context.memory, chain.head, writeToChain(context.memory, chain, 0, message));
        sent++;
      }
    } catch (error) {
      this.queueFailed(error);
      return;
    }
    if (sent > 0) context.signalQueue(2);
  }

  private queueFailed(error: unknown): void {
    if (!(error instanceof QueueError)) throw error;
    this.context?.fail(error.message);
  }
}

/** Port 0 uses queues 0 and 1; port n ≥ 1 uses 2(n + 1) and 2(n + 1) + 1 (queues 2 and 3 are control). */
function receiveQueue(port: number): number {
  return port === 0 ? 0 : 2 * (port + 1);
}

function queuePort(queue: number): number {
  return queue < 2 ? 0 : Math.floor(queue / 2) - 1;
}
