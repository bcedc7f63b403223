/** 256-bit vector sets (IRR, ISR, TMR) as eight 32-bit words, vector v at bit v % 32 of word v >> 5. */
export function setVector(words: Uint32Array, vector: number): void {
  words[vector >> 5] = (words[vector >> 5]! | (1 << (vector & 31))) >>> 0;
}

export function clearVector(words: Uint32Array, vector: number): void {
  words[vector >> 5] = (words[vector >> 5]! & ~(1 << (vector & 31))) >>> 0;
}

export function hasVector(words: Uint32Array, vector: number): boolean {
  return (words[vector >> 5]! & (1 << (vector & 31))) !== 0;
}

/** The highest vector in the set, or -1. */
export function highestVector(words: Uint32Array): number {
  for (let word = 7; word >= 0; word--) {
    const bits = words[word]!;
    if (bits !== 0) return word * 32 + 31 - Math.clz32(bits);
  }
  return -1;
}
