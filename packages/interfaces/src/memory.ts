import type { GuestAddress } from './address.js';

/** Guest pages are 4 KiB, and so are the frames that back them. */
export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;

/**
 * Direct access to the host frame behind one guest page, for fast paths such
 * as a CPU's TLB. The typed arrays view a whole slab; the frame is the 4 KiB
 * at `byteOffset` (so `u32[(byteOffset + pageOffset) >> 2]` is an aligned
 * 32-bit load). Host and guest are both little-endian.
 *
 * A frame handed out by {@link GuestMemory.frameOf} stays valid until the
 * memory calls its invalidation listeners for that page; after that the
 * holder must ask again.
 */
export interface MemoryFrame {
  readonly u8: Uint8Array;
  readonly u16: Uint16Array;
  readonly u32: Uint32Array;
  readonly view: DataView;
  /** Where the frame starts inside the views (a multiple of 4096). */
  readonly byteOffset: number;
}

/** What the holder of a frame will do with it. */
export const FrameAccess = {
  /** Only read it. Never-written pages come back as a shared all-zero frame. */
  Read: 0,
  /** Read and write it: the page gets a frame of its own (allocated, or copied if shared) and is marked dirty. */
  Write: 1,
} as const;
export type FrameAccess = (typeof FrameAccess)[keyof typeof FrameAccess];

/**
 * Called with a run of guest pages whose frames, as handed out by `frameOf`,
 * must no longer be used: the page got a different frame, lost write
 * permission (dirty-log reset, sharing), or was written through another path
 * (device DMA) so that anything derived from its bytes, such as decoded
 * instructions, is stale.
 */
export type FrameInvalidationListener = (firstPage: number, pageCount: number) => void;

/**
 * Guest-physical memory as its users see it: the CPU, devices doing DMA,
 * migration and the balloon. How the memory is built is the implementation's
 * business (`@tsvirt/memory`).
 *
 * Edge cases, the same for every method:
 * - A zero-length access is valid at any address up to `size` and does nothing.
 * - Any access that is not wholly RAM (past `size`, or touching a hole) throws
 *   {@link GuestMemoryError} before reading or writing anything; callers that
 *   route holes to MMIO ask {@link GuestMemory.isRam} first.
 * - Accesses may be unaligned and may cross page boundaries.
 * - Never-written memory reads as zeros.
 *
 * @example
 * ```ts
 * // given: memory (a 1 MiB GuestMemory, all RAM)
 * const at = guestAddress(0x1ffe);
 * memory.writeU32(at, 0xdeadbeef);           // crosses a page boundary
 * assert.equal(memory.readU32(at), 0xdeadbeef);
 * assert.equal(memory.readU8(guestAddress(0x2001)), 0xde);
 * const bytes = new Uint8Array(4);
 * memory.read(guestAddress(0x8_0000), bytes);  // never written: zeros
 * assert.deepEqual([...bytes], [0, 0, 0, 0]);
 * memory.read(guestAddress(memory.size), new Uint8Array(0)); // zero length at the end: fine
 * assert.throws(() => memory.readU8(guestAddress(memory.size)), GuestMemoryError);
 * ```
 */
export interface GuestMemory {
  /** One past the highest guest-physical address the memory covers (RAM and holes). */
  readonly size: number;

  /** True when every byte of `[address, address + length)` is RAM. `length` defaults to 1. */
  isRam(address: GuestAddress, length?: number): boolean;

  /** Copies `into.length` bytes from guest memory. */
  read(address: GuestAddress, into: Uint8Array): void;
  /** Copies `from` into guest memory. */
  write(address: GuestAddress, from: Uint8Array): void;
  /** Sets `length` bytes to `value` (0 by default); zeroing whole never-written pages allocates nothing. */
  fill(address: GuestAddress, length: number, value?: number): void;

  readU8(address: GuestAddress): number;
  readU16(address: GuestAddress): number;
  /** Unsigned 32-bit little-endian load. */
  readU32(address: GuestAddress): number;
  /** 64-bit little-endian load as a BigInt (for devices; hot paths use `frameOf`). */
  readU64(address: GuestAddress): bigint;
  writeU8(address: GuestAddress, value: number): void;
  writeU16(address: GuestAddress, value: number): void;
  writeU32(address: GuestAddress, value: number): void;
  writeU64(address: GuestAddress, value: bigint): void;

  /**
   * The frame behind the page holding `address`, or `undefined` when that
   * page is not RAM. See {@link MemoryFrame} for how long it may be kept.
   */
  frameOf(address: GuestAddress, access: FrameAccess): MemoryFrame | undefined;

  /** Registers a listener; returns the function that removes it. */
  onInvalidate(listener: FrameInvalidationListener): () => void;

  /** Starts recording which pages are written; every page starts clean. */
  startDirtyLog(): void;
  stopDirtyLog(): void;
  readonly dirtyLogging: boolean;
  /**
   * The pages written since dirty logging started or since the last call, as a
   * bitmap (bit `p % 32` of word `p >> 5` is page `p`), and marks them clean.
   * Throws when dirty logging is off.
   */
  fetchAndClearDirty(): Uint32Array;

  /**
   * Gives back the frames behind whole pages of `[address, address + length)`
   * (a balloon inflating, free page reporting); they read as zeros afterwards.
   * Partial pages at either end are zeroed instead. Discarded pages count as
   * written for the dirty log.
   */
  discard(address: GuestAddress, length: number): void;
}
