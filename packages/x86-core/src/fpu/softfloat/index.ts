export { ControlWord, EXTENDED_BIAS, Exception, type ExtendedBits, INDEFINITE_HIGH, INDEFINITE_SIGN_EXPONENT, Mxcsr, Precision, Rounding, SoftFloatResult, WRAP_BIAS } from './types.js';
export { classifyExtended, ExtendedClass } from './extended-classify.js';
export { extendedAdd, extendedDivide, extendedMultiply, extendedSquareRoot, extendedSubtract } from './extended-arithmetic.js';
export { extendedToIeee, extendedToInteger, ieeeToExtended, integerToExtended, writeDefaultNaN } from './conversions.js';
export { CompareResult, Condition, EXAMINE_EMPTY, extendedCompare, extendedExamine } from './compare.js';
export { FLOAT32, FLOAT64, type IeeeFormat, Target } from './round.js';
export { ComparePredicate, createSseScratch, sseArithmetic, sseReportedFlags, sseCompareFlags, sseComparePredicate, sseConvertFloat, sseFloatToInteger, sseIntegerToFloat, SseOperation, sseRelation } from './sse.js';
export { extendedExtract, extendedRemainder, extendedRoundToInteger, extendedScale, x87ReportedFlags } from './extended-misc.js';
export { bcdToExtended, extendedToBcd } from './bcd.js';
