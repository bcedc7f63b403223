/** Exception and condition bits, laid out as in the x87 status word (MXCSR flags use bits 0-5 too). */
export enum Exception {
  invalid = 0x01,
  denormal = 0x02,
  zeroDivide = 0x04,
  overflow = 0x08,
  underflow = 0x10,
  precision = 0x20,
  /** x87 C1: the result was rounded up in magnitude (only meaningful with precision). */
  roundedUp = 0x200,
}

/** Rounding control, as encoded in the x87 control word bits 10-11 and MXCSR bits 13-14. */
export enum Rounding { nearestEven = 0, down = 1, up = 2, towardZero = 3 }

/** x87 precision control (control word bits 8-9). */
export enum Precision { single = 0, double = 2, extended = 3 }

/** x87 control word fields. */
export enum ControlWord {
  exceptionMasks = 0x3f,
  precisionShift = 8,
  roundingShift = 10,
  /** The control word FNINIT loads: all masked, 64-bit precision, nearest. */
  default = 0x037f,
}

/** MXCSR fields. */
export enum Mxcsr {
  flags = 0x3f,
  denormalsAreZero = 0x40,
  maskShift = 7,
  roundingShift = 13,
  flushToZero = 0x8000,
  default = 0x1f80,
}

/** An 80-bit extended value: sign and 15-bit biased exponent in signExponent (16 bits), significand high and low (unsigned 32-bit). */
export interface ExtendedBits {
  signExponent: number;
  high: number;
  low: number;
}

/**
 * The caller's reusable result slot (one per CPU). Every operation writes its
 * result into signExponent/high/low: extended uses all three, float64 high:low,
 * float32 and integers up to 32 bits low, int64 high:low. The work fields are
 * scratch space so the arithmetic allocates nothing.
 */
export class SoftFloatResult implements ExtendedBits {
  signExponent = 0;
  high = 0;
  low = 0;
  /** x87 FXTRACT/FPREM second output (FXTRACT significand; FPREM quotient bits). */
  second: ExtendedBits = { signExponent: 0, high: 0, low: 0 };
  workSign = 0;
  workExponent = 0;
  workHigh = 0;
  workLow = 0;
  workExtra = 0;
}

/** The x87 QNaN "real indefinite". */
export const INDEFINITE_SIGN_EXPONENT = 0xffff;
export const INDEFINITE_HIGH = 0xc0000000;
export const EXTENDED_BIAS = 16383;
/** The exponent adjustment of x87 results delivered with overflow or underflow unmasked. */
export const WRAP_BIAS = 24576;
