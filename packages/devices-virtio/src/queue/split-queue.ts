import { type GuestMemory, guestAddress, GuestMemoryError, StateReader, TsvirtError } from '@tsvirt/interfaces';
import { AVAILABLE_NO_INTERRUPT, DescriptorFlag } from '../spec.js';

/** One guest buffer of a descriptor chain. */
export interface DescriptorBuffer {
  readonly address: number;
  readonly length: number;
}

/** A request from the driver: the head index it is returned under, and its buffers by direction. */
export interface DescriptorChain {
  readonly head: number;
  /** Buffers the device reads (driver → device), in order. */
  readonly readable: readonly DescriptorBuffer[];
  /** Buffers the device writes (device → driver), in order. */
  readonly writable: readonly DescriptorBuffer[];
  readonly readableLength: number;
  readonly writableLength: number;
}

/**
 * The driver broke the queue's rules (a loop, an index past the ring, a
 * buffer outside RAM, …). The device stops using the queue and asks for a
 * reset (DEVICE_NEEDS_RESET), as the specification lets it.
 */
export class QueueError extends TsvirtError {
  constructor(message: string) {
    super('VIRTIO_QUEUE', message);
  }
}

export interface SplitQueueState {
  readonly version: 1;
  readonly size: number;
  readonly ready: boolean;
  readonly descriptorTable: number;
  readonly availableRing: number;
  readonly usedRing: number;
  readonly nextAvailable: number;
  readonly nextUsed: number;
  readonly signalledUsed: number;
}

const DESCRIPTOR_BYTES = 16;
/** The longest chain followed: a chain longer than its table loops, and indirect tables are bounded by this too. */
const MAX_INDIRECT_DESCRIPTORS = 1024;
const MAX_ADDRESS = Number.MAX_SAFE_INTEGER;

/**
 * A split virtqueue (virtio 1.2, 2.7) as the device sees it. Guest memory is
 * passed to every call and nothing read from it is cached between calls, so
 * a DMA invalidation or a balloon discard never leaves a stale pointer, and
 * every write goes through the memory's dirty log.
 *
 * Everything the driver controls is checked before use: ring addresses and
 * size when the queue is enabled, the available index, every descriptor
 * index, chain length, indirect table, direction order and buffer bounds. A
 * violation throws `QueueError`; the caller then sets DEVICE_NEEDS_RESET.
 */
export class SplitQueue {
  /** Queue size the driver chose (a power of two up to `maxSize`). */
  size: number;
  ready = false;
  descriptorTable = 0;
  availableRing = 0;
  usedRing = 0;
  /** The device's position in the available ring (its last_avail_idx). */
  nextAvailable = 0;
  /** The used index the device last published. */
  nextUsed = 0;
  /** Negotiated features that change the ring layout and rules. */
  eventIndex = false;
  indirect = false;
  /** The used index at the last interrupt decision (EVENT_IDX's old index). */
  private signalledUsed = 0;
  private readonly scratch = new Uint8Array(DESCRIPTOR_BYTES);
  private readonly view = new DataView(this.scratch.buffer);

  constructor(readonly maxSize: number) {
    if (!Number.isInteger(Math.log2(maxSize)) || maxSize < 1 || maxSize > 32768) throw new RangeError(`queue size ${maxSize} must be a power of two up to 32768`);
    this.size = maxSize;
  }

  reset(): void {
    this.size = this.maxSize;
    this.ready = false;
    this.descriptorTable = 0;
    this.availableRing = 0;
    this.usedRing = 0;
    this.nextAvailable = 0;
    this.nextUsed = 0;
    this.signalledUsed = 0;
    this.eventIndex = false;
    this.indirect = false;
  }

  /** Why the driver's configuration cannot work, or undefined when the queue is usable. */
  problem(memory: GuestMemory): string | undefined {
    const size = this.size;
    if (size < 1 || size > this.maxSize || (size & (size - 1)) !== 0) return `queue size ${size} is not a power of two up to ${this.maxSize}`;
    const areas: Array<[string, number, number, number]> = [
      ['descriptor table', this.descriptorTable, DESCRIPTOR_BYTES * size, 16],
      ['available ring', this.availableRing, 6 + 2 * size, 2],
      ['used ring', this.usedRing, 6 + 8 * size, 4],
    ];
    for (const [what, address, length, alignment] of areas) {
      if (address % alignment !== 0) return `${what} at 0x${address.toString(16)} is not ${alignment}-byte aligned`;
      if (!inRam(memory, address, length)) return `${what} at 0x${address.toString(16)} is not in guest RAM`;
    }
    return undefined;
  }

  /** Available chains not yet taken. */
  pending(memory: GuestMemory): number {
    return (this.availableIndex(memory) - this.nextAvailable) & 0xffff;
  }

  /** Takes the next available chain, or undefined when there is none. */
  pop(memory: GuestMemory): DescriptorChain | undefined {
    const pending = this.pending(memory);
    if (pending === 0) return undefined;
    if (pending > this.size) throw new QueueError(`the driver moved the available index ${pending} entries ahead of a ring of ${this.size}`);
    const head = this.readU16(memory, this.availableRing + 4 + 2 * (this.nextAvailable % this.size));
    const chain = this.chainAt(memory, head);
    this.nextAvailable = (this.nextAvailable + 1) & 0xffff;
    if (this.eventIndex) this.writeU16(memory, this.usedRing + 4 + 8 * this.size, this.nextAvailable);
    return chain;
  }

  /** The chain starting at descriptor `head` (also how requests in flight are found again after a restore). */
  chainAt(memory: GuestMemory, head: number): DescriptorChain {
    if (head >= this.size) throw new QueueError(`head descriptor ${head} is past the table of ${this.size}`);
    const readable: DescriptorBuffer[] = [];
    const writable: DescriptorBuffer[] = [];
    let readableLength = 0;
    let writableLength = 0;
    let table = this.descriptorTable;
    let tableSize = this.size;
    let index = head;
    let inIndirect = false;
    for (let followed = 0; ; followed++) {
      if (followed >= tableSize) throw new QueueError(`the descriptor chain from ${head} loops or is longer than its table`);
      this.readDescriptor(memory, table + index * DESCRIPTOR_BYTES);
      const address = this.view.getUint32(0, true) + this.view.getUint32(4, true) * 0x1_0000_0000;
      const length = this.view.getUint32(8, true);
      const flags = this.view.getUint16(12, true);
      const next = this.view.getUint16(14, true);
      if ((flags & DescriptorFlag.Indirect) !== 0) {
        if (!this.indirect) throw new QueueError('an indirect descriptor without VIRTIO_F_INDIRECT_DESC');
        if (inIndirect) throw new QueueError('an indirect descriptor inside an indirect table');
        if ((flags & DescriptorFlag.Next) !== 0) throw new QueueError('an indirect descriptor with NEXT set');
        if (length === 0 || length % DESCRIPTOR_BYTES !== 0 || length / DESCRIPTOR_BYTES > MAX_INDIRECT_DESCRIPTORS) throw new QueueError(`an indirect table of ${length} bytes`);
        if (!inRam(memory, address, length)) throw new QueueError(`an indirect table at 0x${address.toString(16)} outside guest RAM`);
        table = address;
        tableSize = length / DESCRIPTOR_BYTES;
        index = 0;
        inIndirect = true;
        followed = -1;
        continue;
      }
      if (length > 0 && !inRam(memory, address, length)) throw new QueueError(`a buffer of ${length} bytes at 0x${address.toString(16)} outside guest RAM`);
      if ((flags & DescriptorFlag.Write) !== 0) {
        writable.push({ address, length });
        writableLength += length;
      } else {
        if (writable.length > 0) throw new QueueError('a device-readable buffer after a device-writable one');
        readable.push({ address, length });
        readableLength += length;
      }
      if ((flags & DescriptorFlag.Next) === 0) break;
      if (next >= tableSize) throw new QueueError(`descriptor ${index} links to ${next}, past the table of ${tableSize}`);
      index = next;
    }
    return { head, readable, writable, readableLength, writableLength };
  }

  /** Returns a chain to the driver with `written` bytes written into its writable buffers. */
  push(memory: GuestMemory, head: number, written: number): void {
    const slot = this.usedRing + 4 + 8 * (this.nextUsed % this.size);
    this.writeU32(memory, slot, head);
    this.writeU32(memory, slot + 4, written);
    this.nextUsed = (this.nextUsed + 1) & 0xffff;
    this.writeU16(memory, this.usedRing + 2, this.nextUsed);
  }

  /**
   * Whether the driver wants an interrupt for what was pushed since the last
   * call: with EVENT_IDX when the used index passed its used_event, without
   * it unless the driver set VIRTQ_AVAIL_F_NO_INTERRUPT.
   */
  shouldSignal(memory: GuestMemory): boolean {
    const previous = this.signalledUsed;
    const current = this.nextUsed;
    this.signalledUsed = current;
    if (previous === current) return false;
    if (!this.eventIndex) return (this.readU16(memory, this.availableRing) & AVAILABLE_NO_INTERRUPT) === 0;
    const usedEvent = this.readU16(memory, this.availableRing + 4 + 2 * this.size);
    // vring_need_event: the event index lies in (previous, current].
    return ((current - usedEvent - 1) & 0xffff) < ((current - previous) & 0xffff);
  }

  /** Asks the driver to notify on the next buffer it adds (EVENT_IDX's avail_event, or the used flags). */
  armNotification(memory: GuestMemory): void {
    if (this.eventIndex) this.writeU16(memory, this.usedRing + 4 + 8 * this.size, this.nextAvailable);
    else this.writeU16(memory, this.usedRing, 0);
  }

  save(): SplitQueueState {
    return {
      version: 1,
      size: this.size,
      ready: this.ready,
      descriptorTable: this.descriptorTable,
      availableRing: this.availableRing,
      usedRing: this.usedRing,
      nextAvailable: this.nextAvailable,
      nextUsed: this.nextUsed,
      signalledUsed: this.signalledUsed,
    };
  }

  /** Validates everything before applying it; features (`eventIndex`, `indirect`) come from the transport. */
  restore(state: unknown): void {
    const reader = StateReader.open(state, 'virtqueue', 1);
    const size = reader.int('size', 1, this.maxSize);
    if ((size & (size - 1)) !== 0) reader.fail('size', 'must be a power of two');
    const values = {
      ready: reader.boolean('ready'),
      descriptorTable: reader.uint('descriptorTable', MAX_ADDRESS),
      availableRing: reader.uint('availableRing', MAX_ADDRESS),
      usedRing: reader.uint('usedRing', MAX_ADDRESS),
      nextAvailable: reader.uint('nextAvailable', 0xffff),
      nextUsed: reader.uint('nextUsed', 0xffff),
      signalledUsed: reader.uint('signalledUsed', 0xffff),
    };
    this.size = size;
    Object.assign(this, values);
  }

  private availableIndex(memory: GuestMemory): number {
    return this.readU16(memory, this.availableRing + 2);
  }

  private readDescriptor(memory: GuestMemory, address: number): void {
    guarded(() => memory.read(guestAddress(address), this.scratch));
  }

  private readU16(memory: GuestMemory, address: number): number {
    return guarded(() => memory.readU16(guestAddress(address)));
  }

  private writeU16(memory: GuestMemory, address: number, value: number): void {
    guarded(() => memory.writeU16(guestAddress(address), value));
  }

  private writeU32(memory: GuestMemory, address: number, value: number): void {
    guarded(() => memory.writeU32(guestAddress(address), value >>> 0));
  }
}

function inRam(memory: GuestMemory, address: number, length: number): boolean {
  return address + length <= MAX_ADDRESS && memory.isRam(guestAddress(address), length);
}

/** Guest memory that vanished under the queue (a balloon, a hot-unplug) is the driver's fault, not the host's. */
function guarded<T>(access: () => T): T {
  try {
    return access();
  } catch (error) {
    if (error instanceof GuestMemoryError) throw new QueueError(error.message);
    throw error;
  }
}

/** Copies up to `into.length` bytes from the chain's readable buffers, starting `offset` bytes in; returns the count copied. */
export function readFromChain(memory: GuestMemory, chain: DescriptorChain, offset: number, into: Uint8Array): number {
  let skip = offset;
  let copied = 0;
  for (const buffer of chain.readable) {
    if (copied === into.length) break;
    if (skip >= buffer.length) {
      skip -= buffer.length;
      continue;
    }
    const length = Math.min(buffer.length - skip, into.length - copied);
    guarded(() => memory.read(guestAddress(buffer.address + skip), into.subarray(copied, copied + length)));
    copied += length;
    skip = 0;
  }
  return copied;
}

/** Copies `from` into the chain's writable buffers, starting `offset` bytes in; returns the count copied (less when they are too small). */
export function writeToChain(memory: GuestMemory, chain: DescriptorChain, offset: number, from: Uint8Array): number {
  let skip = offset;
  let copied = 0;
  for (const buffer of chain.writable) {
    if (copied === from.length) break;
    if (skip >= buffer.length) {
      skip -= buffer.length;
      continue;
    }
    const length = Math.min(buffer.length - skip, from.length - copied);
    guarded(() => memory.write(guestAddress(buffer.address + skip), from.subarray(copied, copied + length)));
    copied += length;
    skip = 0;
  }
  return copied;
}
