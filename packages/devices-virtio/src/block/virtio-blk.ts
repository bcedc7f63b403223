import { type BlockBackend, canDiscard, type GuestMemory, StateReader } from '@tsvirt/interfaces';
import type { VirtioDevice, VirtioDeviceContext } from '../device.js';
import { type DescriptorChain, QueueError, readFromChain, writeToChain } from '../queue/split-queue.js';
import { DeviceType, featureMask } from '../spec.js';

/** virtio-blk feature bits (5.2.3). */
export enum BlockFeature {
  SegMax = 2,
  Geometry = 4,
  ReadOnly = 5,
  BlockSize = 6,
  Flush = 9,
  Topology = 10,
  MultiQueue = 12,
  Discard = 13,
  WriteZeroes = 14,
}

/** Request types and status codes (5.2.6). */
enum RequestType {
  In = 0,
  Out = 1,
  Flush = 4,
  GetId = 8,
  Discard = 11,
  WriteZeroes = 13,
}
enum Status {
  Ok = 0,
  IoError = 1,
  Unsupported = 2,
}

const SECTOR = 512;
const HEADER_BYTES = 16;
const SEGMENT_BYTES = 16;
/** Data moves between the backend and guest memory in pieces of this size, whatever a request claims. */
const CHUNK = 1 << 20;
/** Discard and write-zeroes: segments per request, and sectors per segment (QEMU's limits). */
const MAX_SEGMENTS = 1;
const MAX_DISCARD_SECTORS = (1 << 30) / SECTOR;
const SERIAL_BYTES = 20;
const QUEUE_SIZE = 256;

export interface VirtioBlkOptions {
  readonly backend: BlockBackend;
  /** Refuse writes (VIRTIO_BLK_F_RO) even if the backend would take them. */
  readonly readOnly?: boolean;
  /** Up to 20 bytes, what /sys/block/vda/serial shows. */
  readonly serial?: string;
  /** Request queues (default 1); more than one offers VIRTIO_BLK_F_MQ. */
  readonly queues?: number;
}

interface InFlight {
  readonly queue: number;
  readonly head: number;
}

/**
 * virtio-blk (virtio 1.2, 5.2) on any `BlockBackend`: reads, writes, flush,
 * GET_ID (serial), discard and write-zeroes where the backend can, read-only
 * disks, geometry and topology, and several queues. Requests run
 * asynchronously on the backend and complete in a later turn of the event
 * loop, in any order. Every length and sector from the guest is checked: a
 * request outside the disk, misaligned or malformed gets IOERR, never a host
 * exception; data moves in 1 MiB pieces whatever size a request claims.
 */
export class VirtioBlk implements VirtioDevice {
  readonly deviceType = DeviceType.Block;
  readonly queueMaxSizes: readonly number[];
  readonly features: bigint;
  readonly configSize = 60;
  private readonly backend: BlockBackend;
  private readonly readOnly: boolean;
  private readonly serial: Uint8Array;
  private context: VirtioDeviceContext | undefined;
  /** Bumped by every reset: a completion from an older generation is dropped. */
  private generation = 0;
  private readonly inFlight = new Set<InFlight>();
  private writeback = 1;

  constructor(options: VirtioBlkOptions) {
    this.backend = options.backend;
    this.readOnly = options.readOnly === true || options.backend.readOnly;
    const queues = options.queues ?? 1;
    if (!Number.isInteger(queues) || queues < 1 || queues > 64) throw new RangeError(`virtio-blk queues must be 1 to 64, not ${queues}`);
    this.queueMaxSizes = Array.from({ length: queues }, () => QUEUE_SIZE);
    this.serial = new Uint8Array(SERIAL_BYTES);
    this.serial.set(new TextEncoder().encode(options.serial ?? '').subarray(0, SERIAL_BYTES));
    const bits = [BlockFeature.SegMax, BlockFeature.Geometry, BlockFeature.BlockSize, BlockFeature.Flush, BlockFeature.Topology];
    if (queues > 1) bits.push(BlockFeature.MultiQueue);
    if (this.readOnly) bits.push(BlockFeature.ReadOnly);
    else if (canDiscard(this.backend)) bits.push(BlockFeature.Discard, BlockFeature.WriteZeroes);
    this.features = featureMask(...bits);
  }

  /** Sectors of 512 bytes (a partial last sector is not addressable, as in QEMU). */
  private get capacity(): number {
    return Math.floor(this.backend.size / SECTOR);
  }

  readConfig(offset: number, size: 1 | 2 | 4): number {
    const config = new Uint8Array(this.configSize);
    const view = new DataView(config.buffer);
    const capacity = this.capacity;
    view.setUint32(0, capacity % 0x1_0000_0000, true);
    view.setUint32(4, Math.floor(capacity / 0x1_0000_0000), true);
    view.setUint32(12, QUEUE_SIZE - 2, true); // seg_max
    // The geometry QEMU guesses for a disk without one: 16 heads, 63 sectors.
    view.setUint16(16, Math.min(65535, Math.floor(capacity / (16 * 63))), true);
    config[18] = 16;
    config[19] = 63;
    view.setUint32(20, SECTOR, true); // blk_size
    view.setUint16(26, 1, true); // min_io_size in blocks
    config[32] = this.writeback;
    view.setUint16(34, this.queueMaxSizes.length, true);
    view.setUint32(36, MAX_DISCARD_SECTORS, true);
    view.setUint32(40, MAX_SEGMENTS, true);
    view.setUint32(44, 1, true);
    view.setUint32(48, MAX_DISCARD_SECTORS, true);
    view.setUint32(52, MAX_SEGMENTS, true);
    config[56] = 1; // write_zeroes_may_unmap
    let value = 0;
    for (let i = 0; i < size; i++) value |= (config[offset + i] ?? 0) << (8 * i);
    return value >>> 0;
  }

  writeConfig(offset: number, size: 1 | 2 | 4, value: number): void {
    // Only the cache mode is writable (VIRTIO_BLK_F_CONFIG_WCE is not offered, so drivers leave it).
    if (offset === 32 && size === 1) this.writeback = value & 1;
  }

  activate(context: VirtioDeviceContext): void {
    this.context = context;
  }

  notify(index: number): void {
    const context = this.context;
    if (context === undefined) return;
    const queue = context.queues[index]!;
    for (let chain = queue.pop(context.memory); chain !== undefined; chain = queue.pop(context.memory)) this.start(index, chain);
  }

  reset(): void {
    this.context = undefined;
    this.generation++;
    this.inFlight.clear();
    this.writeback = 1;
  }

  /** Requests in flight are saved by their head; a restored device runs them again (reads and writes are idempotent). */
  save(): { version: 1; writeback: number; inFlight: Array<{ queue: number; head: number }> } {
    return { version: 1, writeback: this.writeback, inFlight: [...this.inFlight].map(({ queue, head }) => ({ queue, head })) };
  }

  restore(state: unknown, context: VirtioDeviceContext | undefined): void {
    const reader = StateReader.open(state, 'virtio-blk', 1);
    const writeback = reader.uint('writeback', 1);
    const requests = reader.children('inFlight', 64 * QUEUE_SIZE).map((entry) => ({ queue: entry.uint('queue', this.queueMaxSizes.length - 1), head: entry.uint('head', QUEUE_SIZE - 1) }));
    this.reset();
    this.writeback = writeback;
    if (context === undefined) return;
    this.context = context;
    for (const { queue, head } of requests) {
      try {
        this.start(queue, context.queues[queue]!.chainAt(context.memory, head));
      } catch (error) {
        if (!(error instanceof QueueError)) throw error;
        context.fail(error.message);
        return;
      }
    }
  }

  private start(queue: number, chain: DescriptorChain): void {
    const request: InFlight = { queue, head: chain.head };
    const generation = this.generation;
    this.inFlight.add(request);
    const memory = this.context!.memory;
    this.serve(memory, chain)
      // A host failure while serving (the backend's I/O error) is an I/O error for the guest.
      .catch((error: unknown) => {
        if (error instanceof QueueError || generation !== this.generation) throw error;
        return this.finish(memory, chain, Status.IoError, 0);
      })
      .then(
        (written) => this.complete(request, generation, written),
        (error: unknown) => {
          // The driver broke the chain's rules while the request ran (or the device was reset meanwhile).
          if (generation !== this.generation) return;
          this.inFlight.delete(request);
          this.context?.fail(error instanceof Error ? error.message : String(error));
        },
      );
  }

  private complete(request: InFlight, generation: number, written: number): void {
    const context = this.context;
    if (generation !== this.generation || context === undefined || !this.inFlight.delete(request)) return;
    try {
      context.queues[request.queue]!.push(context.memory, request.head, written);
    } catch (error) {
      if (error instanceof QueueError) {
        context.fail(error.message);
        return;
      }
      throw error;
    }
    context.signalQueue(request.queue);
  }

  /** Runs one request; resolves to the bytes written into the chain (data and status). */
  private async serve(memory: GuestMemory, chain: DescriptorChain): Promise<number> {
    // The status byte is the last writable byte; a chain without one cannot be answered.
    if (chain.writableLength < 1 || chain.readableLength < HEADER_BYTES) throw new QueueError('a virtio-blk request without a header or a status byte');
    const header = new Uint8Array(HEADER_BYTES);
    readFromChain(memory, chain, 0, header);
    const view = new DataView(header.buffer);
    const type = view.getUint32(0, true);
    const sector = view.getUint32(8, true) + view.getUint32(12, true) * 0x1_0000_0000;
    const dataIn = chain.writableLength - 1;
    const dataOut = chain.readableLength - HEADER_BYTES;
    switch (type) {
      case RequestType.In: {
        if (!this.inDisk(sector, dataIn)) return this.finish(memory, chain, Status.IoError, 0);
        for (let done = 0; done < dataIn; ) {
          const piece = new Uint8Array(Math.min(CHUNK, dataIn - done));
          await this.backend.readAt(sector * SECTOR + done, piece);
          writeToChain(memory, chain, done, piece);
          done += piece.length;
        }
        return this.finish(memory, chain, Status.Ok, dataIn);
      }
      case RequestType.Out: {
        if (this.readOnly || !this.inDisk(sector, dataOut)) return this.finish(memory, chain, Status.IoError, 0);
        for (let done = 0; done < dataOut; ) {
          const piece = new Uint8Array(Math.min(CHUNK, dataOut - done));
          readFromChain(memory, chain, HEADER_BYTES + done, piece);
          await this.backend.writeAt(sector * SECTOR + done, piece);
          done += piece.length;
        }
        return this.finish(memory, chain, Status.Ok, 0);
      }
      case RequestType.Flush:
        await this.backend.flush();
        return this.finish(memory, chain, Status.Ok, 0);
      case RequestType.GetId: {
        const written = writeToChain(memory, chain, 0, this.serial.subarray(0, Math.min(SERIAL_BYTES, dataIn)));
        return this.finish(memory, chain, Status.Ok, written);
      }
      case RequestType.Discard:
      case RequestType.WriteZeroes:
        return this.finish(memory, chain, await this.discardOrZero(memory, chain, type, dataOut), 0);
      default:
        return this.finish(memory, chain, Status.Unsupported, 0);
    }
  }

  private async discardOrZero(memory: GuestMemory, chain: DescriptorChain, type: RequestType, dataOut: number): Promise<Status> {
    const backend = this.backend;
    if (this.readOnly || !canDiscard(backend)) return Status.Unsupported;
    if (dataOut === 0 || dataOut % SEGMENT_BYTES !== 0 || dataOut / SEGMENT_BYTES > MAX_SEGMENTS) return Status.IoError;
    const segments = new Uint8Array(dataOut);
    readFromChain(memory, chain, HEADER_BYTES, segments);
    const view = new DataView(segments.buffer);
    for (let at = 0; at < dataOut; at += SEGMENT_BYTES) {
      const sector = view.getUint32(at, true) + view.getUint32(at + 4, true) * 0x1_0000_0000;
      const sectors = view.getUint32(at + 8, true);
      const flags = view.getUint32(at + 12, true);
      // Bit 0 is "unmap", only meaningful for write-zeroes; anything else is reserved.
      if ((flags & ~1) !== 0 || (type === RequestType.Discard && flags !== 0)) return Status.Unsupported;
      if (sectors > MAX_DISCARD_SECTORS || !this.inDisk(sector, sectors * SECTOR)) return Status.IoError;
      if (type === RequestType.Discard) await backend.discard(sector * SECTOR, sectors * SECTOR);
      else await backend.writeZeroes(sector * SECTOR, sectors * SECTOR, { mayUnmap: (flags & 1) === 1 });
    }
    return Status.Ok;
  }

  /** Whether `length` bytes from `sector` lie in the disk and are whole sectors. */
  private inDisk(sector: number, length: number): boolean {
    return length % SECTOR === 0 && sector <= this.capacity && length / SECTOR <= this.capacity - sector;
  }

  /** Writes the status byte after `dataWritten` bytes of data; returns the used length. */
  private finish(memory: GuestMemory, chain: DescriptorChain, status: Status, dataWritten: number): number {
    writeToChain(memory, chain, chain.writableLength - 1, Uint8Array.of(status));
    return dataWritten + 1;
  }
}
