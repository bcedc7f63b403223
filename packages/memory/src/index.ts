export { FramePool, FRAMES_PER_SLAB, type FramePoolStats } from './frame-pool.js';
export { GuestRam, type GuestRamOptions, type GuestRamState, type GuestRamStats, type RamRegion } from './guest-ram.js';
export { countBits, forEachRun } from './bitmap.js';
