import {
  FrameAccess,
  GuestMemoryError,
  PAGE_SIZE,
  StateReader,
  encodeStateBytes,
  type FrameInvalidationListener,
  type GuestAddress,
  type GuestMemory,
  type MemoryFrame,
  type SavedState,
  type Stateful,
} from '@tsvirt/interfaces';
import { clearBit, createPageBitmap, forEachRun, setBit, testBit } from './bitmap.js';
import { FRAMES_PER_SLAB, FramePool, SLAB_SHIFT } from './frame-pool.js';

/** A run of RAM in the guest-physical address space; both fields are multiples of 4096. */
export interface RamRegion {
  readonly start: number;
  readonly size: number;
}

export interface GuestRamOptions {
  /** RAM from 0 to `size` with no holes. Give this or `regions`. */
  readonly size?: number;
  /** RAM regions; the gaps between them are holes (MMIO). */
  readonly regions?: readonly RamRegion[];
  /** The frame pool to draw from; memories that share a pool can share frames (same-page merging). */
  readonly pool?: FramePool;
}

/** Per-memory figures, exact at the moment of the call. */
export interface GuestRamStats {
  /** Pages of RAM the guest can address. */
  readonly ramPages: number;
  /** Pages backed by a frame (the rest read as zeros and cost nothing). */
  readonly pagesMapped: number;
  /** Mapped pages whose frame is also mapped elsewhere (in this memory or another). */
  readonly pagesShared: number;
  /** Frames this memory alone holds: `(pagesMapped - pagesShared) * 4096` bytes. */
  readonly bytesPrivate: number;
}

export interface GuestRamState extends SavedState {
  readonly version: 1;
  readonly regions: RamRegion[];
  /** Each distinct frame once, with the guest pages that map it. */
  readonly frames: Array<{ pages: number[]; data: string }>;
}

const UNALLOCATED = -1;
const HOLE = -2;
const PAGE_MASK = PAGE_SIZE - 1;
const SAFE_PAGES = Math.floor(Number.MAX_SAFE_INTEGER / PAGE_SIZE);

/**
 * Guest RAM made of 4 KiB frames from a {@link FramePool}. A page gets a frame
 * on its first write; until then it reads as zeros and costs nothing. Frames
 * shared between pages are copied on the first write through any of them.
 *
 * @example
 * ```ts
 * const pool = new FramePool();
 * const ram = new GuestRam({ regions: [{ start: 0, size: 0xa_0000 }, { start: 0x10_0000, size: 0x10_0000 }], pool });
 * assert.equal(ram.isRam(guestAddress(0xb_8000)), false);   // the VGA hole: route it to MMIO
 * ram.writeU32(guestAddress(0x10_0000), 1);
 * assert.equal(pool.stats().framesHeld, 1);                 // one page written, one frame held
 * ```
 */
export class GuestRam implements GuestMemory, Stateful<GuestRamState> {
  readonly size: number;
  readonly pool: FramePool;
  readonly regions: readonly RamRegion[];
  private readonly pageCount: number;
  private readonly ramPages: number;
  /** Frame id per page, or UNALLOCATED / HOLE. */
  private readonly pageFrame: Int32Array;
  /** Pages whose frame was handed out by `frameOf` since their last invalidation. */
  private readonly exported: Uint32Array;
  private dirty: Uint32Array | undefined;
  private readonly listeners: FrameInvalidationListener[] = [];
  private readonly zeroFrame: MemoryFrame;
  private readonly lastU16: number;
  private readonly lastU32: number;
  private readonly slabBytes: Uint8Array[];
  private readonly slabWords: Uint32Array[];
  private readonly slabViews: DataView[];

  constructor(options: GuestRamOptions) {
    this.regions = normaliseRegions(options);
    this.pool = options.pool ?? new FramePool();
    const last = this.regions[this.regions.length - 1]!;
    this.size = last.start + last.size;
    this.pageCount = this.size / PAGE_SIZE;
    this.pageFrame = new Int32Array(this.pageCount).fill(HOLE);
    let ramPages = 0;
    for (const region of this.regions) {
      this.pageFrame.fill(UNALLOCATED, region.start / PAGE_SIZE, (region.start + region.size) / PAGE_SIZE);
      ramPages += region.size / PAGE_SIZE;
    }
    this.ramPages = ramPages;
    this.exported = createPageBitmap(this.pageCount);
    const zero = new ArrayBuffer(PAGE_SIZE);
    this.zeroFrame = { u8: new Uint8Array(zero), u16: new Uint16Array(zero), u32: new Uint32Array(zero), view: new DataView(zero), byteOffset: 0 };
    this.lastU16 = Math.min(this.size - 2, 0xffff_ffff);
    this.lastU32 = Math.min(this.size - 4, 0xffff_ffff);
    this.slabBytes = this.pool.slabBytes;
    this.slabWords = this.pool.slabWords;
    this.slabViews = this.pool.slabViews;
  }

  isRam(address: GuestAddress, length = 1): boolean {
    if (!isIndex(address) || !isIndex(length) || address + length > this.size) return false;
    if (length === 0) return true;
    const last = pageOf(address + length - 1);
    for (let page = pageOf(address); page <= last; page++) if (this.pageFrame[page] === HOLE) return false;
    return true;
  }

  read(address: GuestAddress, into: Uint8Array): void {
    this.checkRam(address, into.length);
    let done = 0;
    while (done < into.length) {
      const at = address + done;
      const page = pageOf(at);
      const offset = at - page * PAGE_SIZE;
      const frame = this.pageFrame[page]!;
      // Consecutive frames of one slab are copied in one go.
      const count = this.runLength(page, frame, offset, into.length - done, false);
      if (frame < 0) into.fill(0, done, done + count);
      else {
        const start = frameOffset(frame) + offset;
        into.set(this.slabBytes[frame >>> SLAB_SHIFT]!.subarray(start, start + count), done);
      }
      done += count;
    }
  }

  write(address: GuestAddress, from: Uint8Array): void {
    this.checkRam(address, from.length);
    let done = 0;
    while (done < from.length) {
      const at = address + done;
      const page = pageOf(at);
      const offset = at - page * PAGE_SIZE;
      const frame = this.writableFrame(page);
      this.revokeIfExported(page);
      const count = this.runLength(page, frame, offset, from.length - done, true);
      this.slabBytes[frame >>> SLAB_SHIFT]!.set(from.subarray(done, done + count), frameOffset(frame) + offset);
      done += count;
    }
  }

  /**
   * How many bytes from `offset` in `page` (backed by `frame`) can be copied
   * as one block: the rest of the page, extended over following pages whose
   * frames come next in the same slab (and, for writes, are private — those
   * pages get their dirty bit and invalidation here).
   */
  private runLength(page: number, frame: number, offset: number, remaining: number, forWrite: boolean): number {
    let count = Math.min(PAGE_SIZE - offset, remaining);
    if (frame < 0) {
      while (count < remaining && this.pageFrame[page + 1] === UNALLOCATED) {
        page++;
        count += Math.min(PAGE_SIZE, remaining - count);
      }
      return count;
    }
    while (count < remaining) {
      const next = this.pageFrame[page + 1]!;
      if (next !== frame + 1 || (next & (FRAMES_PER_SLAB - 1)) === 0) break;
      if (forWrite) {
        if (this.pool.referenceCount(next) !== 1) break;
        if (this.dirty !== undefined) setBit(this.dirty, page + 1);
        this.revokeIfExported(page + 1);
      }
      page++;
      frame = next;
      count += Math.min(PAGE_SIZE, remaining - count);
    }
    return count;
  }

  fill(address: GuestAddress, length: number, value = 0): void {
    this.checkRam(address, length);
    const byte = value & 0xff;
    let done = 0;
    while (done < length) {
      const at = address + done;
      const page = pageOf(at);
      const offset = at - page * PAGE_SIZE;
      const count = Math.min(PAGE_SIZE - offset, length - done);
      // Zeroing a page that was never written changes nothing: keep it frameless.
      if (!(byte === 0 && this.pageFrame[page] === UNALLOCATED)) {
        this.pool.bytesOf(this.writableFrame(page)).fill(byte, offset, offset + count);
        this.revokeIfExported(page);
      }
      done += count;
    }
  }

  readU8(address: GuestAddress): number {
    if ((address >>> 0) === address && address < this.size) {
      const frame = this.pageFrame[address >>> 12]!;
      if (frame >= 0) return this.slabBytes[frame >>> SLAB_SHIFT]![frameOffset(frame) + (address & PAGE_MASK)]!;
      if (frame === UNALLOCATED) return 0;
    }
    return Number(this.readSlow(address, 1));
  }

  readU16(address: GuestAddress): number {
    if ((address >>> 0) === address && address <= this.lastU16 && (address & PAGE_MASK) <= PAGE_SIZE - 2) {
      const frame = this.pageFrame[address >>> 12]!;
      if (frame >= 0) return this.slabViews[frame >>> SLAB_SHIFT]!.getUint16(frameOffset(frame) + (address & PAGE_MASK), true);
      if (frame === UNALLOCATED) return 0;
    }
    return Number(this.readSlow(address, 2));
  }

  readU32(address: GuestAddress): number {
    if ((address >>> 0) === address && address <= this.lastU32 && (address & PAGE_MASK) <= PAGE_SIZE - 4) {
      const frame = this.pageFrame[address >>> 12]!;
      if (frame >= 0) {
        return (address & 3) === 0
          ? this.slabWords[frame >>> SLAB_SHIFT]![(frameOffset(frame) + (address & PAGE_MASK)) >>> 2]!
          : this.slabViews[frame >>> SLAB_SHIFT]!.getUint32(frameOffset(frame) + (address & PAGE_MASK), true);
      }
      if (frame === UNALLOCATED) return 0;
    }
    return Number(this.readSlow(address, 4));
  }

  readU64(address: GuestAddress): bigint {
    return this.readSlow(address, 8);
  }

  writeU8(address: GuestAddress, value: number): void {
    this.writeSmall(address, 1, value >>> 0);
  }

  writeU16(address: GuestAddress, value: number): void {
    this.writeSmall(address, 2, value >>> 0);
  }

  writeU32(address: GuestAddress, value: number): void {
    if ((address >>> 0) === address && address <= this.lastU32 && (address & 3) === 0) {
      const page = address >>> 12;
      const frame = this.pageFrame[page]!;
      // The common case: a private frame nobody caches. Anything else takes the general path.
      if (frame >= 0 && this.pool.referenceCount(frame) === 1 && !testBit(this.exported, page)) {
        this.slabWords[frame >>> SLAB_SHIFT]![(frameOffset(frame) + (address & PAGE_MASK)) >>> 2] = value;
        if (this.dirty !== undefined) setBit(this.dirty, page);
        return;
      }
    }
    this.writeSmall(address, 4, value >>> 0);
  }

  writeU64(address: GuestAddress, value: bigint): void {
    const low = Number(BigInt.asUintN(32, value));
    const high = Number(BigInt.asUintN(32, value >> 32n));
    this.checkRam(address, 8);
    this.writeSmall(address, 4, low);
    this.writeSmall((address + 4) as GuestAddress, 4, high);
  }

  frameOf(address: GuestAddress, access: FrameAccess): MemoryFrame | undefined {
    if (!isIndex(address)) throw new GuestMemoryError('invalid', address, 1, 'address is not a non-negative integer');
    if (address >= this.size) return undefined;
    const page = pageOf(address);
    const frame = this.pageFrame[page]!;
    if (frame === HOLE) return undefined;
    if (access === FrameAccess.Write) {
      const writable = this.writableFrame(page);
      setBit(this.exported, page);
      return this.pool.frame(writable);
    }
    setBit(this.exported, page);
    return frame === UNALLOCATED ? this.zeroFrame : this.pool.frame(frame);
  }

  onInvalidate(listener: FrameInvalidationListener): () => void {
    this.listeners.push(listener);
    return () => {
      const index = this.listeners.indexOf(listener);
      if (index >= 0) this.listeners.splice(index, 1);
    };
  }

  get dirtyLogging(): boolean {
    return this.dirty !== undefined;
  }

  startDirtyLog(): void {
    this.dirty = createPageBitmap(this.pageCount);
    // Frames handed out for writing would bypass the log: take them back.
    this.revokeAll(this.exported);
  }

  stopDirtyLog(): void {
    this.dirty = undefined;
  }

  fetchAndClearDirty(): Uint32Array {
    if (this.dirty === undefined) throw new Error('fetchAndClearDirty: dirty logging is off (call startDirtyLog first)');
    const written = this.dirty.slice();
    this.dirty.fill(0);
    const stillCached = written.map((bits, word) => bits & this.exported[word]!);
    this.revokeAll(stillCached);
    return written;
  }

  discard(address: GuestAddress, length: number): void {
    this.checkRam(address, length);
    const end = address + length;
    const firstWhole = Math.ceil(address / PAGE_SIZE);
    const endWhole = Math.floor(end / PAGE_SIZE);
    if (firstWhole >= endWhole) {
      this.fill(address, length, 0);
      return;
    }
    if (address < firstWhole * PAGE_SIZE) this.fill(address, firstWhole * PAGE_SIZE - address, 0);
    if (end > endWhole * PAGE_SIZE) this.fill((endWhole * PAGE_SIZE) as GuestAddress, end - endWhole * PAGE_SIZE, 0);
    for (let page = firstWhole; page < endWhole; page++) {
      const frame = this.pageFrame[page]!;
      if (frame < 0) continue;
      this.pool.release(frame);
      this.pageFrame[page] = UNALLOCATED;
      if (this.dirty !== undefined) setBit(this.dirty, page);
      this.revokeIfExported(page);
    }
  }

  // ---- Same-page merging (used by @tsvirt/ksm) ----

  /** The id of the frame behind the page at `address`: -1 for a never-written page, -2 for a hole. */
  frameIdOf(address: GuestAddress): number {
    this.checkIndex(address);
    return address < this.size ? this.pageFrame[pageOf(address)]! : HOLE;
  }

  /**
   * The bytes of the page at `address` without handing out the frame, or
   * `undefined` for a never-written page or a hole. Read only: writing through
   * it would bypass copy-on-write and the dirty log.
   */
  pageBytes(address: GuestAddress): Uint8Array | undefined {
    const frame = this.frameIdOf(address);
    return frame >= 0 ? this.pool.bytesOf(frame) : undefined;
  }

  /**
   * Makes the page at `address` map the frame behind `sourceAddress` in
   * `source` (which must use the same pool), if both pages hold identical
   * bytes; both become copy-on-write. Returns false, changing nothing, when
   * the bytes differ or either page has no frame.
   */
  mergeFrom(address: GuestAddress, source: GuestRam, sourceAddress: GuestAddress): boolean {
    if (source.pool !== this.pool) throw new Error('mergeFrom: the two memories use different frame pools');
    const target = this.frameIdOf(address);
    const shared = source.frameIdOf(sourceAddress);
    if (target < 0 || shared < 0) return false;
    if (target === shared) return true;
    if (!equalBytes(this.pool.bytesOf(target), this.pool.bytesOf(shared))) return false;
    const page = pageOf(address);
    this.pool.retain(shared);
    this.pageFrame[page] = shared;
    this.pool.release(target);
    this.revokeIfExported(page);
    source.revokeIfExported(pageOf(sourceAddress));
    return true;
  }

  /** Gives the page at `address` a private copy of a shared frame. Returns false when it was not shared. */
  unshare(address: GuestAddress): boolean {
    const frame = this.frameIdOf(address);
    if (frame < 0 || this.pool.referenceCount(frame) < 2) return false;
    const page = pageOf(address);
    const copy = this.pool.allocate();
    this.pool.bytesOf(copy).set(this.pool.bytesOf(frame));
    this.pool.release(frame);
    this.pageFrame[page] = copy;
    this.revokeIfExported(page);
    return true;
  }

  /** Drops the frame of a page whose bytes are all zero (it reads the same without one). */
  releaseIfZero(address: GuestAddress): boolean {
    const frame = this.frameIdOf(address);
    if (frame < 0 || !isZero(this.pool.bytesOf(frame))) return false;
    const page = pageOf(address);
    this.pool.release(frame);
    this.pageFrame[page] = UNALLOCATED;
    this.revokeIfExported(page);
    return true;
  }

  stats(): GuestRamStats {
    let mapped = 0;
    let shared = 0;
    for (let page = 0; page < this.pageCount; page++) {
      const frame = this.pageFrame[page]!;
      if (frame < 0) continue;
      mapped++;
      if (this.pool.referenceCount(frame) > 1) shared++;
    }
    return { ramPages: this.ramPages, pagesMapped: mapped, pagesShared: shared, bytesPrivate: (mapped - shared) * PAGE_SIZE };
  }

  // ---- Save and restore ----

  save(): GuestRamState {
    const byFrame = new Map<number, number[]>();
    for (let page = 0; page < this.pageCount; page++) {
      const frame = this.pageFrame[page]!;
      if (frame < 0) continue;
      const pages = byFrame.get(frame);
      if (pages === undefined) byFrame.set(frame, [page]);
      else pages.push(page);
    }
    return {
      version: 1,
      regions: this.regions.map((region) => ({ ...region })),
      frames: [...byFrame].map(([frame, pages]) => ({ pages, data: encodeStateBytes(this.pool.bytesOf(frame)) })),
    };
  }

  /** Replaces the contents (and the sharing among this memory's pages) with a saved state for the same layout. */
  restore(state: unknown): void {
    const reader = StateReader.open(state, 'ram', 1);
    const regions = reader.children('regions', this.regions.length + 1);
    const sameLayout =
      regions.length === this.regions.length &&
      regions.every((region, index) => region.uint('start', Number.MAX_SAFE_INTEGER) === this.regions[index]!.start && region.uint('size', Number.MAX_SAFE_INTEGER) === this.regions[index]!.size);
    if (!sameLayout) reader.fail('regions', 'the saved RAM layout differs from this memory\'s');
    const seen = createPageBitmap(this.pageCount);
    const frames = reader.children('frames', this.ramPages).map((entry) => {
      const pages = entry.uintArray('pages', this.ramPages, this.pageCount - 1);
      if (pages.length === 0) entry.fail('pages', 'a frame must be mapped by at least one page');
      for (const page of pages) {
        if (this.pageFrame[page] === HOLE) entry.fail('pages', `page ${page} is not RAM`);
        if (testBit(seen, page)) entry.fail('pages', `page ${page} is mapped twice`);
        setBit(seen, page);
      }
      return { pages, data: entry.bytes('data', PAGE_SIZE, PAGE_SIZE) };
    });
    // Validated: now replace everything.
    for (let page = 0; page < this.pageCount; page++) {
      const frame = this.pageFrame[page]!;
      if (frame >= 0) this.pool.release(frame);
      if (frame !== HOLE) this.pageFrame[page] = UNALLOCATED;
    }
    for (const { pages, data } of frames) {
      const frame = this.pool.allocate();
      this.pool.bytesOf(frame).set(data);
      this.pageFrame[pages[0]!] = frame;
      for (const page of pages.slice(1)) {
        this.pool.retain(frame);
        this.pageFrame[page] = frame;
      }
    }
    if (this.dirty !== undefined) {
      for (let page = 0; page < this.pageCount; page++) if (this.pageFrame[page] !== HOLE) setBit(this.dirty, page);
    }
    this.revokeAll(this.exported);
  }

  // ---- Internals ----

  /** The page's own frame, allocated or copied on demand, and marked dirty. */
  private writableFrame(page: number): number {
    let frame = this.pageFrame[page]!;
    if (frame === UNALLOCATED) {
      frame = this.pool.allocate();
      this.pageFrame[page] = frame;
      this.revokeIfExported(page);
    } else if (this.pool.referenceCount(frame) > 1) {
      const copy = this.pool.allocate();
      this.pool.bytesOf(copy).set(this.pool.bytesOf(frame));
      this.pool.release(frame);
      this.pageFrame[page] = copy;
      frame = copy;
      this.revokeIfExported(page);
    }
    if (this.dirty !== undefined) setBit(this.dirty, page);
    return frame;
  }

  private readSlow(address: GuestAddress, size: number): bigint {
    this.checkRam(address, size);
    let value = 0n;
    for (let i = size - 1; i >= 0; i--) {
      const at = address + i;
      const frame = this.pageFrame[pageOf(at)]!;
      const byte = frame >= 0 ? this.pool.bytesOf(frame)[at % PAGE_SIZE]! : 0;
      value = (value << 8n) | BigInt(byte);
    }
    return value;
  }

  private writeSmall(address: GuestAddress, size: number, value: number): void {
    this.checkRam(address, size);
    for (let i = 0; i < size; i++) {
      const at = address + i;
      const page = pageOf(at);
      this.pool.bytesOf(this.writableFrame(page))[at % PAGE_SIZE] = (value >>> (8 * i)) & 0xff;
      this.revokeIfExported(page);
    }
  }

  private checkIndex(address: number): void {
    if (!isIndex(address)) throw new GuestMemoryError('invalid', address, 0, 'address is not a non-negative integer');
  }

  /** Throws unless `[address, address + length)` is all RAM. */
  private checkRam(address: number, length: number): void {
    if (!isIndex(address) || !isIndex(length)) {
      throw new GuestMemoryError('invalid', address, length, 'address and length must be non-negative integers');
    }
    if (address + length > this.size) {
      throw new GuestMemoryError('out-of-range', address, length, `guest memory ends at 0x${this.size.toString(16)}`);
    }
    if (length === 0) return;
    const last = pageOf(address + length - 1);
    for (let page = pageOf(address); page <= last; page++) {
      if (this.pageFrame[page] === HOLE) {
        throw new GuestMemoryError('not-ram', address, length, `0x${(page * PAGE_SIZE).toString(16)} is not RAM`);
      }
    }
  }

  private revokeIfExported(page: number): void {
    if (!testBit(this.exported, page)) return;
    clearBit(this.exported, page);
    for (const listener of this.listeners) listener(page, 1);
  }

  private revokeAll(pages: Uint32Array): void {
    const runs: Array<[number, number]> = [];
    forEachRun(pages, (first, count) => runs.push([first, Math.min(count, this.pageCount - first)]));
    for (const [first, count] of runs) {
      for (let page = first; page < first + count; page++) clearBit(this.exported, page);
      for (const listener of this.listeners) listener(first, count);
    }
  }
}

function normaliseRegions(options: GuestRamOptions): RamRegion[] {
  const regions = options.regions ?? (options.size !== undefined ? [{ start: 0, size: options.size }] : undefined);
  if (regions === undefined || regions.length === 0) throw new RangeError('GuestRam needs a size or at least one region');
  const sorted = [...regions].sort((a, b) => a.start - b.start);
  let end = 0;
  for (const { start, size } of sorted) {
    if (!isIndex(start) || !isIndex(size) || size === 0 || start % PAGE_SIZE !== 0 || size % PAGE_SIZE !== 0) {
      throw new RangeError(`RAM region {start: ${start}, size: ${size}} must have a page-aligned start and a non-zero page-multiple size`);
    }
    if (start < end) throw new RangeError(`RAM region at 0x${start.toString(16)} overlaps the one before it`);
    end = start + size;
    if (end / PAGE_SIZE > SAFE_PAGES || end > 2 ** 52) throw new RangeError('RAM must end below 2^52');
  }
  return sorted.map(({ start, size }) => ({ start, size }));
}

function isIndex(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}

function pageOf(address: number): number {
  return address <= 0xffff_ffff ? address >>> 12 : Math.floor(address / PAGE_SIZE);
}

function frameOffset(frame: number): number {
  return (frame & (FRAMES_PER_SLAB - 1)) << 12;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function isZero(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}
