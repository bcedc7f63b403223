import { PAGE_SIZE, guestAddress, type GuestMemory } from '@tsvirt/interfaces';
import { MigrationStreamError } from '../errors.js';
import { FRAME_HEADER_SIZE, PAGE_RECORD_HEADER, PageRecord } from './format.js';
import { FrameWriter } from './frame-writer.js';
import { xbzrleDecode } from './xbzrle.js';

/** The most a single page record can take (a normal page). */
export const MAX_PAGE_RECORD = PAGE_RECORD_HEADER + PAGE_SIZE;

/**
 * Builds one RamPages frame in place: records are appended after the frame
 * header so sealing the frame copies nothing.
 */
export class RamPageBatch {
  private buffer: Uint8Array;
  private view: DataView;
  private length = 0;
  count = 0;

  constructor(private readonly capacity: number) {
    this.buffer = FrameWriter.allocate(capacity);
    this.view = new DataView(this.buffer.buffer);
  }

  /** True when another normal page might not fit. */
  get full(): boolean {
    return this.length + MAX_PAGE_RECORD > this.capacity;
  }

  get empty(): boolean {
    return this.count === 0;
  }

  get payloadLength(): number {
    return this.length;
  }

  addNormal(page: number, bytes: Uint8Array): void {
    const at = this.record(PageRecord.Normal, page, PAGE_SIZE);
    this.buffer.set(bytes.subarray(0, PAGE_SIZE), at);
  }

  addZero(page: number): void {
    this.record(PageRecord.Zero, page, 0);
  }

  /** Appends an XBZRLE record whose delta is `delta` (at most 65535 bytes). */
  addXbzrle(page: number, delta: Uint8Array): void {
    const at = this.record(PageRecord.Xbzrle, page, 2 + delta.length);
    this.view.setUint16(at, delta.length, true);
    this.buffer.set(delta, at + 2);
  }

  /** Hands the filled buffer over (for {@link FrameWriter.writeBuilt}) and starts a fresh one. */
  take(): { buffer: Uint8Array; payloadLength: number } {
    const taken = { buffer: this.buffer, payloadLength: this.length };
    this.buffer = FrameWriter.allocate(this.capacity);
    this.view = new DataView(this.buffer.buffer);
    this.length = 0;
    this.count = 0;
    return taken;
  }

  private record(kind: PageRecord, page: number, dataLength: number): number {
    if (this.length + PAGE_RECORD_HEADER + dataLength > this.capacity) throw new RangeError('page batch overflow');
    const at = FRAME_HEADER_SIZE + this.length;
    this.view.setUint8(at, kind);
    this.view.setUint32(at + 1, page, true);
    this.length += PAGE_RECORD_HEADER + dataLength;
    this.count++;
    return at + PAGE_RECORD_HEADER;
  }
}

export interface AppliedPages {
  normal: number;
  zero: number;
  xbzrle: number;
}

/**
 * Checks and applies the records of one RamPages frame to `memory`. A bad
 * record (unknown kind, page outside RAM, short data, malformed delta)
 * throws {@link MigrationStreamError}; records before it may have been
 * written, which is harmless because a destination that saw a bad stream
 * never runs.
 */
export function applyRamPages(payload: Uint8Array, memory: GuestMemory, scratch: Uint8Array, counts: AppliedPages, missing?: Uint32Array): void {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const pageCount = Math.floor(memory.size / PAGE_SIZE);
  let offset = 0;
  while (offset < payload.length) {
    if (offset + PAGE_RECORD_HEADER > payload.length) throw malformed(`page record header cut short at byte ${offset}`);
    const kind = view.getUint8(offset);
    const page = view.getUint32(offset + 1, true);
    offset += PAGE_RECORD_HEADER;
    if (page >= pageCount) throw malformed(`page ${page} is beyond the destination's ${pageCount} pages`);
    const address = guestAddress(page * PAGE_SIZE);
    if (!memory.isRam(address, PAGE_SIZE)) throw malformed(`page ${page} is not RAM on the destination`);
    // Post-copy: a page that already arrived may have been written by the running guest since; a second copy is stale.
    const wanted = missing === undefined || (missing[page >>> 5]! & (1 << (page & 31))) !== 0;
    if (missing !== undefined && wanted) missing[page >>> 5]! &= ~(1 << (page & 31));
    switch (kind) {
      case PageRecord.Normal:
        if (offset + PAGE_SIZE > payload.length) throw malformed(`page ${page}: data cut short`);
        if (wanted) memory.write(address, payload.subarray(offset, offset + PAGE_SIZE));
        offset += PAGE_SIZE;
        counts.normal++;
        break;
      case PageRecord.Zero:
        if (wanted) memory.fill(address, PAGE_SIZE, 0);
        counts.zero++;
        break;
      case PageRecord.Xbzrle: {
        if (offset + 2 > payload.length) throw malformed(`page ${page}: delta length cut short`);
        const length = view.getUint16(offset, true);
        offset += 2;
        if (offset + length > payload.length) throw malformed(`page ${page}: delta cut short`);
        memory.read(address, scratch);
        const problem = xbzrleDecode(payload.subarray(offset, offset + length), scratch);
        if (problem !== undefined) throw malformed(`page ${page}: bad XBZRLE delta (${problem})`);
        if (wanted) memory.write(address, scratch);
        offset += length;
        counts.xbzrle++;
        break;
      }
      default:
        throw malformed(`unknown page record kind ${kind} at byte ${offset - PAGE_RECORD_HEADER}`);
    }
  }
}

function malformed(message: string): MigrationStreamError {
  return new MigrationStreamError('malformed', message);
}
