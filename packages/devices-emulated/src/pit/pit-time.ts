/** The PC's PIT input clock: 14.31818 MHz / 12. */
export const PIT_FREQUENCY_HZ = 1_193_182;

const NS_PER_S = 1_000_000_000;

/**
 * PIT clock edges up to `ns`: floor(ns · f / 1e9), split so every product
 * stays below 2^53 for any virtual time a machine can reach.
 */
export function ticksAt(ns: number): number {
  const seconds = Math.floor(ns / NS_PER_S);
  return seconds * PIT_FREQUENCY_HZ + Math.floor(((ns - seconds * NS_PER_S) * PIT_FREQUENCY_HZ) / NS_PER_S);
}

/** The first time (ns) at which `ticksAt` reaches `ticks`. */
export function timeOfTick(ticks: number): number {
  const seconds = Math.floor(ticks / PIT_FREQUENCY_HZ);
  return seconds * NS_PER_S + Math.ceil(((ticks - seconds * PIT_FREQUENCY_HZ) * NS_PER_S) / PIT_FREQUENCY_HZ);
}
