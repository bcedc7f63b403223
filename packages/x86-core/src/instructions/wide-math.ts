/**
 * Exact multiply and divide on 32- and 64-bit values held as 32-bit halves,
 * using 16-bit digits so every intermediate stays below 2^53. Results go
 * into the caller's `out` array (no allocation).
 */

/** High 32 bits of the unsigned product of two 32-bit values (exact: each partial product stays below 2^48). */
export function highOf32(a: number, b: number): number {
  const unsignedB = b >>> 0;
  const cross = (a >>> 16) * unsignedB;
  const rest = (cross % 65536) * 65536 + (a & 0xffff) * unsignedB;
  return (Math.floor(cross / 65536) + Math.floor(rest / 4294967296)) >>> 0;
}

/** Unsigned 64×64 → 128: `out` receives four 32-bit words, least significant first. */
export function multiplyUnsigned64(aLow: number, aHigh: number, bLow: number, bHigh: number, _digits: Float64Array, out: Int32Array): void {
  // Four 32×32 partial products, summed column by column (each column sum stays below 2^53).
  const lowLowHigh = highOf32(aLow, bLow);
  const crossA = Math.imul(aLow, bHigh) >>> 0;
  const crossAHigh = highOf32(aLow, bHigh);
  const crossB = Math.imul(aHigh, bLow) >>> 0;
  const crossBHigh = highOf32(aHigh, bLow);
  const highLow = Math.imul(aHigh, bHigh) >>> 0;
  const highHigh = highOf32(aHigh, bHigh);
  const column1 = lowLowHigh + crossA + crossB;
  const column2 = Math.floor(column1 / 4294967296) + crossAHigh + crossBHigh + highLow;
  const column3 = Math.floor(column2 / 4294967296) + highHigh;
  out[0] = Math.imul(aLow, bLow);
  out[1] = column1 | 0;
  out[2] = column2 | 0;
  out[3] = column3 | 0;
}

/** Unsigned 32×32 → 64: low in out[0], high in out[1]. */
export function multiplyUnsigned32(a: number, b: number, out: Int32Array): void {
  // a * b = (aHigh * b) * 2^16 + aLow * b, each part below 2^48 and so exact.
  const unsignedB = b >>> 0;
  const cross = (a >>> 16) * unsignedB;
  const rest = (cross % 65536) * 65536 + (a & 0xffff) * unsignedB;
  out[0] = Math.imul(a, b);
  out[1] = (Math.floor(cross / 65536) + Math.floor(rest / 4294967296)) | 0;
}

/**
 * Unsigned division of the 128-bit value (n3:n2:n1:n0) by the 64-bit value
 * (dHigh:dLow), which must not be zero. Quotient words go to out[0..3],
 * remainder to out[4] (low) and out[5] (high).
 */
export function divideUnsigned128(n0: number, n1: number, n2: number, n3: number, dLow: number, dHigh: number, out: Int32Array): void {
  if (dHigh === 0) {
    // Long division by 16-bit digits: remainder < d < 2^32, so r * 65536 + digit < 2^48.
    const divisor = dLow >>> 0;
    let remainder = 0;
    for (let w = 0; w < 4; w++) {
      const word = (w === 0 ? n3 : w === 1 ? n2 : w === 2 ? n1 : n0) >>> 0;
      const upper = remainder * 65536 + (word >>> 16);
      const q1 = Math.floor(upper / divisor);
      remainder = upper - q1 * divisor;
      const lower = remainder * 65536 + (word & 0xffff);
      const q0 = Math.floor(lower / divisor);
      remainder = lower - q0 * divisor;
      out[3 - w] = (q1 << 16) | q0;
    }
    out[4] = remainder | 0;
    out[5] = 0;
    return;
  }
  // Divisor of 2^32 or more: restoring division bit by bit on 32-bit words (the remainder needs 65 bits).
  let r0 = 0, r1 = 0, r2 = 0;
  out[0] = 0; out[1] = 0; out[2] = 0; out[3] = 0;
  const d0 = dLow >>> 0, d1 = dHigh >>> 0;
  for (let bit = 127; bit >= 0; bit--) {
    r2 = ((r2 << 1) | (r1 >>> 31)) >>> 0;
    r1 = ((r1 << 1) | (r0 >>> 31)) >>> 0;
    const word = bit >= 96 ? n3 : bit >= 64 ? n2 : bit >= 32 ? n1 : n0;
    r0 = ((r0 << 1) | ((word >>> (bit & 31)) & 1)) >>> 0;
    const geq = r2 !== 0 || r1 > d1 || (r1 === d1 && r0 >= d0);
    if (geq) {
      const low = r0 - d0;
      r0 = low >>> 0;
      const high = r1 - d1 - (low < 0 ? 1 : 0);
      r1 = high >>> 0;
      r2 = (r2 - (high < 0 ? 1 : 0)) >>> 0;
      out[bit >> 5] = out[bit >> 5]! | (1 << (bit & 31));
    }
  }
  out[4] = r0 | 0;
  out[5] = r1 | 0;
}

/** Two's-complement negation of the 128-bit value in words[0..3], in place. */
export function negate128(words: Int32Array): void {
  let carry = 1;
  for (let i = 0; i < 4; i++) {
    const value = (~words[i]! >>> 0) + carry;
    words[i] = value | 0;
    carry = value > 0xffffffff ? 1 : 0;
  }
}
