/* The `sub` codes the SSE opcode table passes to the SSE handlers. */

/** The half moves and duplications of `ssePartialMove`, by `sub`. */
export enum PartialMove {
  /** MOVLPS/MOVLPD xmm, m64 = the low quadword. */
  loadLow = 0,
  /** MOVLPS/MOVLPD m64, xmm. */
  storeLow = 1,
  /** MOVHPS/MOVHPD xmm, m64 = the high quadword. */
  loadHigh = 2,
  /** MOVHPS/MOVHPD m64, xmm. */
  storeHigh = 3,
  /** MOVHLPS: the source's high quadword into the destination's low one. */
  highToLow = 4,
  /** MOVLHPS: the source's low quadword into the destination's high one. */
  lowToHigh = 5,
  /** MOVDDUP: the source's low quadword (m64) into both halves. */
  duplicateLow = 6,
  /** MOVSLDUP: elements 0 and 2 duplicated. */
  duplicateEven = 7,
  /** MOVSHDUP: elements 1 and 3 duplicated. */
  duplicateOdd = 8,
}

/**
 * The element format bits of an SSE floating-point `sub`: float64 elements
 * (else float32) and packed (else scalar). The low 3 bits carry the operation
 * (softfloat's SseOperation for the arithmetic, Horizontal for SSE3, …).
 */
export enum SseForm { double = 8, packed = 16 }

/** SSE3 operations of `sseHorizontal`. */
export enum Horizontal { addSubtract = 0, add = 1, subtract = 2 }

/** Lane-wise bit operations of `sseLogic`. */
export enum Logic { and = 0, andNot = 1, or = 2, xor = 3 }

/** Element rearrangements of `sseShuffle`. */
export enum Shuffle {
  unpackLowSingle = 0, unpackHighSingle = 1, unpackLowDouble = 2, unpackHighDouble = 3, shuffleSingle = 4, shuffleDouble = 5,
  blendSingle = 6, blendDouble = 7, blendVariableSingle = 8, blendVariableDouble = 9, insertSingle = 10,
}

/** Conversions of `sseConvert`. */
export enum Conversion {
  /** CVTPI2PS xmm, mm/m64. */
  int32PairToSingle = 0,
  /** CVTPS2PI / CVTTPS2PI mm, xmm/m64. */
  singlePairToInt32 = 1,
  /** CVTPI2PD xmm, mm/m64. */
  int32PairToDouble = 2,
  /** CVTPD2PI / CVTTPD2PI mm, xmm/m128. */
  doubleToInt32Pair = 3,
  /** CVTSI2SS xmm, r/m32/64. */
  integerToSingle = 4,
  /** CVTSI2SD xmm, r/m32/64. */
  integerToDouble = 5,
  /** CVTSS2SI / CVTTSS2SI r32/64, xmm/m32. */
  singleToInteger = 6,
  /** CVTSD2SI / CVTTSD2SI r32/64, xmm/m64. */
  doubleToInteger = 7,
  /** CVTPS2PD xmm, xmm/m64. */
  singlesToDoubles = 8,
  /** CVTPD2PS xmm, xmm/m128. */
  doublesToSingles = 9,
  /** CVTSS2SD xmm, xmm/m32. */
  singleToDouble = 10,
  /** CVTSD2SS xmm, xmm/m64. */
  doubleToSingle = 11,
  /** CVTDQ2PS xmm, xmm/m128. */
  int32sToSingles = 12,
  /** CVTPS2DQ / CVTTPS2DQ xmm, xmm/m128. */
  singlesToInt32s = 13,
  /** CVTDQ2PD xmm, xmm/m64. */
  int32sToDoubles = 14,
  /** CVTPD2DQ / CVTTPD2DQ xmm, xmm/m128. */
  doublesToInt32s = 15,
  /** Added to a float-to-integer conversion: truncate (CVTT…) instead of rounding under MXCSR. */
  truncate = 16,
}
