/**
 * A 128-bit SIMD value (an XMM register's contents, or an MMX value in its low
 * 8 bytes) with typed views of every lane width over one buffer. The views
 * use the host's byte order, which is little-endian on every platform Node
 * runs on, so lane i of each view is the guest's lane i.
 *
 * Handlers keep a few of these per CPU as scratch: operands are copied in,
 * computed on, and copied out, so nothing is allocated per instruction.
 */
export class SimdValue {
  readonly bytes: Uint8Array;
  readonly signedBytes: Int8Array;
  readonly words: Uint16Array;
  readonly signedWords: Int16Array;
  readonly dwords: Uint32Array;
  readonly signedDwords: Int32Array;

  constructor() {
    const buffer = new ArrayBuffer(16);
    this.bytes = new Uint8Array(buffer);
    this.signedBytes = new Int8Array(buffer);
    this.words = new Uint16Array(buffer);
    this.signedWords = new Int16Array(buffer);
    this.dwords = new Uint32Array(buffer);
    this.signedDwords = new Int32Array(buffer);
  }

  /** Copies `length` bytes (8 or 16) from `source`. */
  copyFrom(source: SimdValue, length: number): void {
    const from = source.dwords;
    const to = this.dwords;
    to[0] = from[0]!;
    to[1] = from[1]!;
    if (length === 16) {
      to[2] = from[2]!;
      to[3] = from[3]!;
    }
  }

  clear(): void {
    this.dwords.fill(0);
  }
}

/** The lane views of a `SimdValue`, by name. */
export type LaneView = 'bytes' | 'signedBytes' | 'words' | 'signedWords' | 'dwords' | 'signedDwords';

/** Bytes per lane of each view. */
export const LANE_BYTES: Readonly<Record<LaneView, number>> = { bytes: 1, signedBytes: 1, words: 2, signedWords: 2, dwords: 4, signedDwords: 4 };

/** The per-CPU values an integer SIMD handler computes in: both operands, the result, and a mask (XMM0). */
export class SimdScratch {
  readonly destination = new SimdValue();
  readonly source = new SimdValue();
  readonly result = new SimdValue();
  readonly mask = new SimdValue();
}
