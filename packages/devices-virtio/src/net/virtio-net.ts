import {
  encodeStateBytes,
  ETHERNET_HEADER_BYTES,
  ignoreEvents,
  MAX_FRAME_BYTES,
  type NetworkBackend,
  type NetworkFrontend,
  type Observer,
  StateReader,
} from '@tsvirt/interfaces';
import type { VirtioDevice, VirtioDeviceContext } from '../device.js';
import { type DescriptorChain, QueueError, readFromChain, writeToChain } from '../queue/split-queue.js';
import { DeviceType, Feature, featureMask, hasFeature } from '../spec.js';
import { RxFilter, type RxFilterState } from './rx-filter.js';

/** virtio-net feature bits (5.1.3). */
export enum NetFeature {
  /** The device completes partial checksums of frames the driver sends. */
  Csum = 0,
  GuestCsum = 1,
  Mtu = 3,
  Mac = 5,
  MergeableRxBuffers = 15,
  Status = 16,
  ControlQueue = 17,
  ControlRx = 18,
  ControlVlan = 19,
  ControlRxExtra = 20,
  GuestAnnounce = 21,
  Multiqueue = 22,
  ControlMacAddress = 23,
}

/** virtio_net_hdr flags and gso types (5.1.6). */
const HEADER_NEEDS_CSUM = 1;
const GSO_NONE = 0;
/** The configuration's status bit: the link is up. */
const STATUS_LINK_UP = 1;
/** Control queue: classes, commands and acknowledgements (5.1.6.5). */
const CONTROL_CLASS_RX = 0;
const CONTROL_CLASS_MAC = 1;
const CONTROL_MAC_TABLE_SET = 0;
const CONTROL_MAC_ADDRESS_SET = 1;
const CONTROL_OK = 0;
const CONTROL_ERROR = 1;
/** A control command is a few bytes, a MAC table a few hundred; anything much longer is not one. */
const MAX_CONTROL_BYTES = 64 * 1024;
/** The first MAC QEMU gives a NIC. */
const DEFAULT_MAC = Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, 0x56);

const RX_QUEUE = 0;
const TX_QUEUE = 1;
const CONTROL_QUEUE = 2;

/** What the NIC counts (the guest's own counters are in /proc/net/dev). */
export interface VirtioNetStatistics {
  /** Frames taken from the guest and passed to the back end. */
  transmitted: number;
  /** Frames from the back end written into the guest's buffers. */
  received: number;
  /** Guest frames dropped as malformed: a chain shorter than its header, a runt, an oversized or unsupported GSO frame, a bad checksum offset. */
  transmitErrors: number;
  /** Frames from the back end the receive filter (RX mode, MAC table) turned away. */
  filtered: number;
  /** Frames from the back end that did not fit a receive buffer (without mergeable buffers). */
  receiveErrors: number;
}

/** What the NIC reports to an observer: the guest breaking the rules in a way that does not reset the device. */
export type VirtioNetEvent = { readonly kind: 'dropped'; readonly direction: 'transmit' | 'receive'; readonly reason: string; readonly bytes: number };

export interface VirtioNetOptions {
  /** The host end: passt, a stream or dgram socket, an in-memory link. */
  readonly backend: NetworkBackend;
  /** Six bytes (default 52:54:00:12:34:56, QEMU's first). */
  readonly mac?: Uint8Array;
  /** Largest size of each queue (default 256, as QEMU). */
  readonly queueSize?: number;
  readonly observer?: Observer<VirtioNetEvent>;
}

/**
 * virtio-net (virtio 1.2, 5.1), one queue pair and the control queue, as
 * QEMU's `virtio-net-pci`: the MAC in the configuration, the link status
 * from the back end (a configuration-change interrupt when it changes),
 * mergeable receive buffers, checksum completion for frames the guest sends
 * with a partial checksum (CSUM; no segmentation offloads are offered, so
 * every frame is at most one IP packet), and the control queue's RX mode
 * (promiscuous, all-multicast) and MAC table and address commands.
 *
 * Backpressure both ways: a frame arriving with no receive buffers for it
 * is refused (`receive` returns false) and the back end holds it until the
 * guest adds buffers; when the back end's output is full the device stops
 * taking frames from the transmit queue until `transmitReady`.
 *
 * A driver that breaks the queue rules gets DEVICE_NEEDS_RESET; a frame the
 * driver describes wrongly (shorter than its header, longer than any frame,
 * a checksum offset outside it) is dropped and counted, as hardware drops a
 * bad frame.
 *
 * @example
 * ```ts
 * const nic = new VirtioPci(new VirtioNet({ backend: await PasstNetworkBackend.open(), mac: parseMacAddress('52:54:00:12:34:56') }));
 * pciBus.plug(nic, 3);
 * ```
 */
export class VirtioNet implements VirtioDevice, NetworkFrontend {
  readonly deviceType = DeviceType.Network;
  readonly queueMaxSizes: readonly number[];
  readonly features = featureMask(
    NetFeature.Csum,
    NetFeature.Mac,
    NetFeature.MergeableRxBuffers,
    NetFeature.Status,
    NetFeature.ControlQueue,
    NetFeature.ControlRx,
    NetFeature.ControlMacAddress,
  );
  /** mac[6], status, max_virtqueue_pairs. */
  readonly configSize = 10;
  readonly statistics: VirtioNetStatistics = { transmitted: 0, received: 0, transmitErrors: 0, filtered: 0, receiveErrors: 0 };
  private readonly backend: NetworkBackend;
  private readonly observer: Observer<VirtioNetEvent>;
  private readonly initialMac: Uint8Array;
  private readonly filter: RxFilter;
  private context: VirtioDeviceContext | undefined;
  private linkUp = false;
  /** Receive chains taken from the ring and not yet filled, oldest first. */
  private readonly rxBuffers: DescriptorChain[] = [];
  /** The back end asked the device to stop transmitting. */
  private transmitBlocked = false;

  constructor(options: VirtioNetOptions) {
    const mac = options.mac ?? DEFAULT_MAC;
    if (mac.length !== 6) throw new RangeError(`a MAC address has 6 bytes, not ${mac.length}`);
    if ((mac[0]! & 1) !== 0) throw new RangeError('a NIC cannot have a multicast MAC address');
    const size = options.queueSize ?? 256;
    this.queueMaxSizes = [size, size, 64];
    this.initialMac = mac.slice();
    this.filter = new RxFilter(mac);
    this.backend = options.backend;
    this.observer = options.observer ?? ignoreEvents;
    this.backend.connect(this);
  }

  /** The MAC the guest uses now (the driver may set another with the control queue). */
  get mac(): Uint8Array {
    return this.filter.mac.slice();
  }

  readConfig(offset: number, size: 1 | 2 | 4): number {
    const config = new Uint8Array(this.configSize);
    config.set(this.filter.mac, 0);
    config[6] = this.linkUp ? STATUS_LINK_UP : 0;
    config[8] = 1; // max_virtqueue_pairs
    let value = 0;
    for (let i = 0; i < size; i++) value |= (config[offset + i] ?? 0) << (8 * i);
    return value >>> 0;
  }

  writeConfig(offset: number, size: 1 | 2 | 4, value: number): void {
    // A legacy driver without CTRL_MAC_ADDR sets the MAC by writing it here (virtio 1.2, 5.1.4.2).
    if (offset >= 6) return;
    for (let i = 0; i < size && offset + i < 6; i++) this.filter.mac[offset + i] = (value >>> (8 * i)) & 0xff;
  }

  activate(context: VirtioDeviceContext): void {
    this.context = context;
    this.backend.notifyReceiveReady();
  }

  notify(index: number): void {
    if (this.context === undefined) return;
    if (index === RX_QUEUE) this.backend.notifyReceiveReady();
    else if (index === TX_QUEUE) this.transmit();
    else if (index === CONTROL_QUEUE) this.control();
  }

  reset(): void {
    this.context = undefined;
    this.rxBuffers.length = 0;
    this.transmitBlocked = false;
    this.filter.reset(this.initialMac);
  }

  save(): unknown {
    return { version: 1, filter: this.filter.save(), rxBuffers: this.rxBuffers.map((chain) => chain.head), transmitBlocked: this.transmitBlocked, mac: encodeStateBytes(this.filter.mac) };
  }

  restore(state: unknown, context: VirtioDeviceContext | undefined): void {
    const reader = StateReader.open(state, 'virtio-net', 1);
    const filter: RxFilterState = RxFilter.read(reader.child('filter'));
    const mac = reader.bytes('mac', 6, 6);
    const rxBuffers = reader.uintArray('rxBuffers', this.queueMaxSizes[RX_QUEUE]!, this.queueMaxSizes[RX_QUEUE]! - 1);
    const transmitBlocked = reader.boolean('transmitBlocked');
    this.reset();
    this.filter.apply(filter, mac);
    if (context === undefined) return;
    this.context = context;
    const queue = context.queues[RX_QUEUE]!;
    try {
      for (const head of rxBuffers) this.rxBuffers.push(queue.chainAt(context.memory, head));
    } catch (error) {
      this.queueFailed(error);
      return;
    }
    this.transmitBlocked = transmitBlocked;
    this.backend.notifyReceiveReady();
    if (!transmitBlocked) this.transmit();
  }

  // ---- NetworkFrontend: the back end's side ----

  /** A frame from the host: into the guest's receive buffers, or refused (false) until it adds some. */
  receive(frame: Uint8Array): boolean {
    const context = this.context;
    if (context === undefined || !context.queues[RX_QUEUE]!.ready) return false;
    if (!this.filter.accepts(frame)) {
      this.statistics.filtered++;
      return true;
    }
    try {
      return this.deliver(context, frame);
    } catch (error) {
      this.queueFailed(error);
      // The device now waits for a reset; the frame is lost with the rest of its state.
      return true;
    }
  }

  transmitReady(): void {
    if (!this.transmitBlocked) return;
    this.transmitBlocked = false;
    this.transmit();
  }

  linkChanged(up: boolean): void {
    if (up === this.linkUp) return;
    this.linkUp = up;
    if (this.context !== undefined && hasFeature(this.context.driverFeatures, NetFeature.Status)) this.context.signalConfigChange();
  }

  // ---- receive ----

  private deliver(context: VirtioDeviceContext, frame: Uint8Array): boolean {
    const queue = context.queues[RX_QUEUE]!;
    const mergeable = hasFeature(context.driverFeatures, NetFeature.MergeableRxBuffers);
    const headerBytes = this.headerBytes(context);
    const needed = headerBytes + frame.length;
    // Take buffers from the ring until the frame fits (mergeable) or one buffer is there (not).
    for (;;) {
      if (mergeable ? totalRoom(this.rxBuffers) >= needed : this.rxBuffers.length > 0) break;
      if (this.rxBuffers.length >= queue.size) {
        // Every buffer the ring can hold is not enough: the frame can never fit.
        this.statistics.receiveErrors++;
        this.observer({ kind: 'dropped', direction: 'receive', reason: `a ${frame.length}-byte frame is larger than the whole receive ring`, bytes: frame.length });
        return true;
      }
      const chain = queue.pop(context.memory);
      if (chain === undefined) {
        queue.armNotification(context.memory);
        return false;
      }
      // A chain the device cannot write a header into is no receive buffer: it goes back empty.
      if (chain.writableLength < headerBytes) {
        queue.push(context.memory, chain.head, 0);
        context.signalQueue(RX_QUEUE);
        continue;
      }
      this.rxBuffers.push(chain);
    }
    const packet = new Uint8Array(needed);
    packet.set(frame, headerBytes);
    if (!mergeable) {
      const chain = this.rxBuffers[0]!;
      if (chain.writableLength < needed) {
        // The driver's buffers are smaller than the frame: hardware drops it and keeps the buffer.
        this.statistics.receiveErrors++;
        this.observer({ kind: 'dropped', direction: 'receive', reason: `a ${frame.length}-byte frame does not fit a ${chain.writableLength}-byte receive buffer`, bytes: frame.length });
        return true;
      }
      this.rxBuffers.shift();
      if (headerBytes === 12) new DataView(packet.buffer).setUint16(10, 1, true);
      queue.push(context.memory, chain.head, writeToChain(context.memory, chain, 0, packet));
    } else {
      // Count the buffers first: num_buffers goes into the header the first one carries.
      let buffers = 0;
      for (let room = 0; room < needed; buffers++) room += this.rxBuffers[buffers]!.writableLength;
      new DataView(packet.buffer).setUint16(10, buffers, true);
      let offset = 0;
      for (let i = 0; i < buffers; i++) {
        const chain = this.rxBuffers.shift()!;
        const written = writeToChain(context.memory, chain, 0, packet.subarray(offset));
        offset += written;
        queue.push(context.memory, chain.head, written);
      }
    }
    this.statistics.received++;
    context.signalQueue(RX_QUEUE);
    return true;
  }

  /** virtio_net_hdr: 12 bytes with VERSION_1 or mergeable buffers, 10 for a legacy driver without them. */
  private headerBytes(context: VirtioDeviceContext): number {
    return hasFeature(context.driverFeatures, Feature.Version1) || hasFeature(context.driverFeatures, NetFeature.MergeableRxBuffers) ? 12 : 10;
  }

  // ---- transmit ----

  private transmit(): void {
    const context = this.context;
    if (context === undefined || !context.queues[TX_QUEUE]!.ready) return;
    const queue = context.queues[TX_QUEUE]!;
    let done = 0;
    try {
      while (!this.transmitBlocked) {
        const chain = queue.pop(context.memory);
        if (chain === undefined) break;
        const frame = this.frameOf(context, chain);
        queue.push(context.memory, chain.head, 0);
        done++;
        if (frame === undefined) continue;
        this.statistics.transmitted++;
        if (!this.backend.send(frame)) this.transmitBlocked = true;
      }
    } catch (error) {
      this.queueFailed(error);
      return;
    }
    if (done > 0) context.signalQueue(TX_QUEUE);
  }

  /** The frame a transmit chain carries, its checksum completed; undefined (counted) when the driver described it wrongly. */
  private frameOf(context: VirtioDeviceContext, chain: DescriptorChain): Uint8Array | undefined {
    const headerBytes = this.headerBytes(context);
    const length = chain.readableLength - headerBytes;
    if (length < ETHERNET_HEADER_BYTES || length > MAX_FRAME_BYTES) return this.badFrame(`a ${chain.readableLength}-byte transmit chain (the header is ${headerBytes})`, Math.max(0, length));
    const header = new Uint8Array(headerBytes);
    readFromChain(context.memory, chain, 0, header);
    const view = new DataView(header.buffer);
    if (header[1] !== GSO_NONE) return this.badFrame(`GSO type ${header[1]}, which was not offered`, length);
    const frame = new Uint8Array(length);
    readFromChain(context.memory, chain, headerBytes, frame);
    if ((header[0]! & HEADER_NEEDS_CSUM) !== 0) {
      if (!hasFeature(context.driverFeatures, NetFeature.Csum)) return this.badFrame('NEEDS_CSUM without the CSUM feature', length);
      const start = view.getUint16(6, true);
      const at = start + view.getUint16(8, true);
      if (at + 2 > length || start >= length) return this.badFrame(`a checksum at ${at} (from ${start}) outside a ${length}-byte frame`, length);
      completeChecksum(frame, start, at);
    }
    return frame;
  }

  private badFrame(reason: string, bytes: number): undefined {
    this.statistics.transmitErrors++;
    this.observer({ kind: 'dropped', direction: 'transmit', reason, bytes });
    return undefined;
  }

  // ---- the control queue ----

  private control(): void {
    const context = this.context!;
    const queue = context.queues[CONTROL_QUEUE]!;
    let done = 0;
    try {
      for (let chain = queue.pop(context.memory); chain !== undefined; chain = queue.pop(context.memory)) {
        done++;
        if (chain.writableLength < 1 || chain.readableLength < 2 || chain.readableLength > MAX_CONTROL_BYTES) {
          queue.push(context.memory, chain.head, 0);
          continue;
        }
        const command = new Uint8Array(chain.readableLength);
        readFromChain(context.memory, chain, 0, command);
        const ack = this.command(context, command[0]!, command[1]!, command.subarray(2)) ? CONTROL_OK : CONTROL_ERROR;
        // The ack is the last writable byte (the driver may offer more).
        writeToChain(context.memory, chain, chain.writableLength - 1, Uint8Array.of(ack));
        queue.push(context.memory, chain.head, 1);
      }
    } catch (error) {
      this.queueFailed(error);
      return;
    }
    if (done > 0) context.signalQueue(CONTROL_QUEUE);
  }

  private command(context: VirtioDeviceContext, commandClass: number, command: number, data: Uint8Array): boolean {
    const features = context.driverFeatures;
    if (commandClass === CONTROL_CLASS_RX && hasFeature(features, NetFeature.ControlRx)) return this.filter.setMode(command, data, hasFeature(features, NetFeature.ControlRxExtra));
    if (commandClass === CONTROL_CLASS_MAC && command === CONTROL_MAC_TABLE_SET && hasFeature(features, NetFeature.ControlRx)) return this.filter.setTables(data);
    if (commandClass === CONTROL_CLASS_MAC && command === CONTROL_MAC_ADDRESS_SET && hasFeature(features, NetFeature.ControlMacAddress)) return this.filter.setMac(data);
    return false;
  }

  private queueFailed(error: unknown): void {
    if (!(error instanceof QueueError)) throw error;
    this.context?.fail(error.message);
  }
}

function totalRoom(chains: readonly DescriptorChain[]): number {
  let room = 0;
  for (const chain of chains) room += chain.writableLength;
  return room;
}

/**
 * Completes a partial checksum as Linux's skb_checksum_help does: the
 * ones' complement sum from `start` to the end (the driver left the
 * pseudo-header's sum in the checksum field), folded, complemented, and
 * stored big-endian at `at`.
 */
export function completeChecksum(frame: Uint8Array, start: number, at: number): void {
  let sum = 0;
  const end = frame.length;
  let i = start;
  for (; i + 1 < end; i += 2) sum += (frame[i]! << 8) | frame[i + 1]!;
  if (i < end) sum += frame[i]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  const checksum = ~sum & 0xffff;
  frame[at] = checksum >> 8;
  frame[at + 1] = checksum & 0xff;
}
