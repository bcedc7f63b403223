import { PAGE_SIZE } from '@tsvirt/interfaces';

/** Where a dirtying guest writes: anywhere, in a small hot set, or sweeping memory in order. */
export type DirtyPattern = 'uniform' | 'hot-set' | 'sequential';

export interface DirtyWorkload {
  /** Page writes per second of guest time at 0 % throttle. */
  readonly writesPerSecond: number;
  readonly pattern: DirtyPattern;
  /** Pages in the hot set (pattern `hot-set`; default 1/16 of memory). */
  readonly hotSetPages?: number;
}

/** xorshift32: tiny, deterministic, and its whole state is one number (so it migrates with the device state). */
export function nextRandom(state: number): number {
  let x = state >>> 0 || 0x9e3779b9;
  x ^= x << 13;
  x >>>= 0;
  x ^= x >>> 17;
  x ^= x << 5;
  return x >>> 0;
}

/** The guest address written by the `writeIndex`-th write, given the random value drawn for it. */
export function workloadTarget(workload: DirtyWorkload, pageCount: number, writeIndex: number, random: number): number {
  let page: number;
  switch (workload.pattern) {
    case 'uniform':
      page = random % pageCount;
      break;
    case 'hot-set': {
      const hot = Math.max(1, Math.min(pageCount, workload.hotSetPages ?? Math.ceil(pageCount / 16)));
      page = random % hot;
      break;
    }
    case 'sequential':
      page = writeIndex % pageCount;
      break;
  }
  const slot = (random >>> 8) % (PAGE_SIZE / 4);
  return page * PAGE_SIZE + slot * 4;
}
