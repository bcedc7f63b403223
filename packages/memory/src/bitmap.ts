/** A bitmap of pages: bit `p & 31` of word `p >>> 5` is page `p`. */
export function createPageBitmap(pageCount: number): Uint32Array {
  return new Uint32Array(Math.ceil(pageCount / 32));
}

export function testBit(bitmap: Uint32Array, page: number): boolean {
  return (bitmap[page >>> 5]! & (1 << (page & 31))) !== 0;
}

export function setBit(bitmap: Uint32Array, page: number): void {
  bitmap[page >>> 5]! |= 1 << (page & 31);
}

export function clearBit(bitmap: Uint32Array, page: number): void {
  bitmap[page >>> 5]! &= ~(1 << (page & 31));
}

/** Calls `visit` with each run of consecutive set bits, in order. */
export function forEachRun(bitmap: Uint32Array, visit: (first: number, count: number) => void): void {
  let runStart = -1;
  for (let word = 0; word < bitmap.length; word++) {
    const bits = bitmap[word]!;
    if (bits === 0 && runStart < 0) continue;
    if (bits === 0xffff_ffff && runStart >= 0) continue;
    for (let bit = 0; bit < 32; bit++) {
      const page = word * 32 + bit;
      if ((bits & (1 << bit)) !== 0) {
        if (runStart < 0) runStart = page;
      } else if (runStart >= 0) {
        visit(runStart, page - runStart);
        runStart = -1;
      }
    }
  }
  if (runStart >= 0) visit(runStart, bitmap.length * 32 - runStart);
}

/** Number of set bits. */
export function countBits(bitmap: Uint32Array): number {
  let count = 0;
  for (let word = 0; word < bitmap.length; word++) {
    let bits = bitmap[word]!;
    bits -= (bits >>> 1) & 0x5555_5555;
    bits = (bits & 0x3333_3333) + ((bits >>> 2) & 0x3333_3333);
    count += (((bits + (bits >>> 4)) & 0x0f0f_0f0f) * 0x0101_0101) >>> 24;
  }
  return count;
}
