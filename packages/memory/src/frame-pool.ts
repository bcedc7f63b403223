import { PAGE_SIZE, type MemoryFrame } from '@tsvirt/interfaces';

/** 1024 frames of 4 KiB: slabs of 4 MiB, so a large guest costs few host allocations. */
export const FRAMES_PER_SLAB = 1024;
export const SLAB_SHIFT = 10;
const SLAB_BYTES = FRAMES_PER_SLAB * PAGE_SIZE;
const EMPTY_BYTES = new Uint8Array(0);
const EMPTY_WORDS = new Uint32Array(0);
const EMPTY_VIEW = new DataView(new ArrayBuffer(0));

/** Host memory figures of a pool, exact at the moment of the call. */
export interface FramePoolStats {
  /** Frames holding guest data. */
  readonly framesHeld: number;
  /** `framesHeld * 4096`. */
  readonly bytesHeld: number;
  /** Host bytes in slabs (held frames plus free frames kept for reuse). */
  readonly slabBytes: number;
  /** Frames mapped at more than one guest page. */
  readonly framesShared: number;
  /** Guest pages mapped, across every memory of the pool (sum of reference counts). */
  readonly pagesMapped: number;
  /** Bytes that sharing saves: `(pagesMapped - framesHeld) * 4096`. */
  readonly bytesSaved: number;
}

interface Slab {
  readonly u8: Uint8Array;
  readonly u16: Uint16Array;
  readonly u32: Uint32Array;
  readonly view: DataView;
  /** Free frame indices inside this slab, a stack. */
  readonly free: Int32Array;
  freeCount: number;
}

/**
 * The host memory behind one or more guest memories: 4 KiB frames carved
 * from 4 MiB slabs, with a reference count per frame so a frame can back
 * several guest pages (in one guest or in several: same-page merging).
 *
 * Free frames are zeroed when released, so a fresh frame is always zero.
 * A slab whose frames are all free is handed back to the host unless it is
 * the only slab with free frames left (to avoid churn at the boundary).
 */
export class FramePool {
  private slabs: (Slab | undefined)[] = [];
  /**
   * Per-slab views for hot paths, indexed by `frameId >>> 10`. The arrays are
   * mutated in place and never replaced, so a memory may keep a reference.
   */
  readonly slabBytes: Uint8Array[] = [];
  readonly slabWords: Uint32Array[] = [];
  readonly slabViews: DataView[] = [];
  /** Indices of slabs with at least one free frame. */
  private partialSlabs: number[] = [];
  private refcounts = new Uint32Array(FRAMES_PER_SLAB);
  private frameObjects: (MemoryFrame | undefined)[] = [];
  private held = 0;
  private mapped = 0;
  private shared = 0;

  /** Allocates a zeroed frame with reference count 1 and returns its id. */
  allocate(): number {
    let slabIndex = this.partialSlabs[this.partialSlabs.length - 1];
    if (slabIndex === undefined) slabIndex = this.addSlab();
    const slab = this.slabs[slabIndex]!;
    const index = slab.free[--slab.freeCount]!;
    if (slab.freeCount === 0) this.partialSlabs.pop();
    const id = (slabIndex << SLAB_SHIFT) | index;
    this.refcounts[id] = 1;
    this.held++;
    this.mapped++;
    return id;
  }

  /** Adds a mapping of frame `id`. */
  retain(id: number): void {
    const count = this.refcounts[id]!;
    if (count === 0) throw new Error(`frame ${id} is not allocated`);
    if (count === 1) this.shared++;
    this.refcounts[id] = count + 1;
    this.mapped++;
  }

  /** Drops a mapping of frame `id`; the last one frees (and zeroes) the frame. */
  release(id: number): void {
    const count = this.refcounts[id]!;
    if (count === 0) throw new Error(`frame ${id} is not allocated`);
    this.refcounts[id] = count - 1;
    this.mapped--;
    if (count === 2) this.shared--;
    if (count > 1) return;
    this.held--;
    const slabIndex = id >>> SLAB_SHIFT;
    const slab = this.slabs[slabIndex]!;
    const index = id & (FRAMES_PER_SLAB - 1);
    slab.u8.fill(0, index * PAGE_SIZE, (index + 1) * PAGE_SIZE);
    slab.free[slab.freeCount++] = index;
    if (slab.freeCount === 1) this.partialSlabs.push(slabIndex);
    if (slab.freeCount === FRAMES_PER_SLAB && this.partialSlabs.length > 1) this.dropSlab(slabIndex);
  }

  referenceCount(id: number): number {
    return this.refcounts[id] ?? 0;
  }

  /** The frame's bytes, as a 4 KiB view. Callers inside tsvirt only; writing to a shared frame breaks every mapping's copy-on-write. */
  bytesOf(id: number): Uint8Array {
    const slab = this.slabs[id >>> SLAB_SHIFT]!;
    const start = (id & (FRAMES_PER_SLAB - 1)) * PAGE_SIZE;
    return slab.u8.subarray(start, start + PAGE_SIZE);
  }

  /** The slab views and offset of frame `id`, one object per frame, reused. */
  frame(id: number): MemoryFrame {
    let frame = this.frameObjects[id];
    if (frame === undefined) {
      const slab = this.slabs[id >>> SLAB_SHIFT]!;
      frame = { u8: slab.u8, u16: slab.u16, u32: slab.u32, view: slab.view, byteOffset: (id & (FRAMES_PER_SLAB - 1)) * PAGE_SIZE };
      this.frameObjects[id] = frame;
    }
    return frame;
  }

  stats(): FramePoolStats {
    const slabCount = this.slabs.reduce((count, slab) => count + (slab === undefined ? 0 : 1), 0);
    return {
      framesHeld: this.held,
      bytesHeld: this.held * PAGE_SIZE,
      slabBytes: slabCount * SLAB_BYTES,
      framesShared: this.shared,
      pagesMapped: this.mapped,
      bytesSaved: (this.mapped - this.held) * PAGE_SIZE,
    };
  }

  private addSlab(): number {
    let slabIndex = this.slabs.indexOf(undefined);
    if (slabIndex < 0) slabIndex = this.slabs.length;
    const buffer = new ArrayBuffer(SLAB_BYTES);
    const free = new Int32Array(FRAMES_PER_SLAB);
    // Hand out low frames first: the stack pops from the end.
    for (let i = 0; i < FRAMES_PER_SLAB; i++) free[i] = FRAMES_PER_SLAB - 1 - i;
    const slab: Slab = {
      u8: new Uint8Array(buffer),
      u16: new Uint16Array(buffer),
      u32: new Uint32Array(buffer),
      view: new DataView(buffer),
      free,
      freeCount: FRAMES_PER_SLAB,
    };
    this.slabs[slabIndex] = slab;
    this.slabBytes[slabIndex] = slab.u8;
    this.slabWords[slabIndex] = slab.u32;
    this.slabViews[slabIndex] = slab.view;
    const needed = (slabIndex + 1) * FRAMES_PER_SLAB;
    if (this.refcounts.length < needed) {
      const grown = new Uint32Array(Math.max(needed, this.refcounts.length * 2));
      grown.set(this.refcounts);
      this.refcounts = grown;
    }
    this.partialSlabs.push(slabIndex);
    return slabIndex;
  }

  private dropSlab(slabIndex: number): void {
    this.slabs[slabIndex] = undefined;
    // Keep the hot-path arrays dense (no holes) so their element kind stays fast; nothing indexes a dropped slab.
    this.slabBytes[slabIndex] = EMPTY_BYTES;
    this.slabWords[slabIndex] = EMPTY_WORDS;
    this.slabViews[slabIndex] = EMPTY_VIEW;
    this.partialSlabs.splice(this.partialSlabs.indexOf(slabIndex), 1);
    const first = slabIndex << SLAB_SHIFT;
    for (let id = first; id < first + FRAMES_PER_SLAB; id++) this.frameObjects[id] = undefined;
  }
}
