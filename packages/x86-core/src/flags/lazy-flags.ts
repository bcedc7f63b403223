import { ARITHMETIC_FLAGS, Flag } from '../state/registers.js';
import { multiplyUnsigned64 } from '../instructions/wide-math.js';

/**
 * How the arithmetic flags were last produced. Only the operands and result
 * are kept; CF/PF/AF/ZF/SF/OF are worked out when somebody asks, since most
 * flag results are overwritten before they are read.
 */
export enum FlagOp {
  /** `bits` holds every flag. */
  None = 0,
  Add = 1,
  /** Add with a carry-in of one. */
  Adc = 2,
  Sub = 3,
  /** Subtract with a borrow-in of one. */
  Sbb = 4,
  /** AND/OR/XOR/TEST: CF = OF = AF = 0. */
  Logic = 5,
  /** INC: CF kept in `bits`. */
  Inc = 6,
  Dec = 7,
  /** SF/ZF/PF from the result, CF/OF/AF from `bits` (shifts, multiplies). */
  Result = 8,
  /** Truncating signed multiply (IMUL r, r/m[, imm]): CF = OF = the product did not fit, worked out from the operands. */
  Multiply = 9,
}

const PARITY = new Uint8Array(256);
for (let value = 0; value < 256; value++) {
  let ones = 0;
  for (let bit = 0; bit < 8; bit++) ones += (value >> bit) & 1;
  PARITY[value] = ones % 2 === 0 ? Flag.PF : 0;
}

/** Mask of an operand of `size` bytes (1, 2, 4); 8-byte operands keep the high half separately. */
export function sizeMask(size: number): number {
  return size === 1 ? 0xff : size === 2 ? 0xffff : 0xffffffff;
}

/**
 * RFLAGS with lazily computed arithmetic flags. Operands and results are
 * stored as 32-bit halves; sizes 1, 2, 4 use only the low half (masked).
 */
export class LazyFlags {
  /** Every RFLAGS bit; the arithmetic ones are stale unless `op` is None (or as `op` documents). */
  bits = 2;
  op: FlagOp = FlagOp.None;
  size = 4;
  result = 0;
  resultHigh = 0;
  left = 0;
  leftHigh = 0;
  right = 0;
  rightHigh = 0;

  /** Records an arithmetic result of `size` bytes (lows masked to the size by the caller). */
  set(op: FlagOp, size: number, result: number, left: number, right: number): void {
    this.op = op;
    this.size = size;
    this.result = result;
    this.left = left;
    this.right = right;
  }

  set64(op: FlagOp, result: number, resultHigh: number, left: number, leftHigh: number, right: number, rightHigh: number): void {
    this.op = op;
    this.size = 8;
    this.result = result;
    this.resultHigh = resultHigh;
    this.left = left;
    this.leftHigh = leftHigh;
    this.right = right;
    this.rightHigh = rightHigh;
  }

  /** A result whose CF/OF/AF are given now and SF/ZF/PF come from `result`. */
  setResult(size: number, result: number, resultHigh: number, carryOverflowAdjust: number): void {
    this.bits = (this.bits & ~(Flag.CF | Flag.OF | Flag.AF)) | (carryOverflowAdjust & (Flag.CF | Flag.OF | Flag.AF));
    this.op = FlagOp.Result;
    this.size = size;
    this.result = result;
    this.resultHigh = resultHigh;
  }

  /** INC/DEC keep CF: fix it in `bits` before the new record replaces the old one. */
  setIncDec(op: FlagOp, size: number, result: number, resultHigh: number): void {
    const carry = this.cf();
    this.bits = (this.bits & ~Flag.CF) | carry;
    this.op = op;
    this.size = size;
    this.result = result;
    this.resultHigh = resultHigh;
  }

  cf(): number {
    switch (this.op) {
      case FlagOp.Multiply:
        return this.multiplyOverflows() ? 1 : 0;
      case FlagOp.Add:
        return this.size === 8 ? below64(this.result, this.resultHigh, this.left, this.leftHigh) : (this.result >>> 0) < (this.left >>> 0) ? 1 : 0;
      case FlagOp.Adc:
        return this.size === 8 ? 1 - below64(this.left, this.leftHigh, this.result, this.resultHigh) : (this.result >>> 0) <= (this.left >>> 0) ? 1 : 0;
      case FlagOp.Sub:
        return this.size === 8 ? below64(this.left, this.leftHigh, this.right, this.rightHigh) : (this.left >>> 0) < (this.right >>> 0) ? 1 : 0;
      case FlagOp.Sbb:
        return this.size === 8 ? 1 - below64(this.right, this.rightHigh, this.left, this.leftHigh) : (this.left >>> 0) <= (this.right >>> 0) ? 1 : 0;
      case FlagOp.Logic:
        return 0;
      default:
        return this.bits & Flag.CF;
    }
  }

  zf(): number {
    if (this.op === FlagOp.None) return this.bits & Flag.ZF;
    const zero = this.size === 8 ? (this.result | this.resultHigh) === 0 : this.result === 0;
    return zero ? Flag.ZF : 0;
  }

  sf(): number {
    if (this.op === FlagOp.None) return this.bits & Flag.SF;
    return this.signOf(this.result, this.resultHigh) ? Flag.SF : 0;
  }

  pf(): number {
    if (this.op === FlagOp.None) return this.bits & Flag.PF;
    return PARITY[this.result & 0xff]!;
  }

  af(): number {
    switch (this.op) {
      case FlagOp.Add:
      case FlagOp.Adc:
      case FlagOp.Sub:
      case FlagOp.Sbb:
        return (this.left ^ this.right ^ this.result) & Flag.AF;
      case FlagOp.Inc:
        return (this.result & 0xf) === 0 ? Flag.AF : 0;
      case FlagOp.Dec:
        return (this.result & 0xf) === 0xf ? Flag.AF : 0;
      case FlagOp.Logic:
      case FlagOp.Multiply:
        return 0;
      default:
        return this.bits & Flag.AF;
    }
  }

  of(): number {
    switch (this.op) {
      case FlagOp.Add:
      case FlagOp.Adc:
        return this.signOf((this.left ^ this.result) & (this.right ^ this.result), (this.leftHigh ^ this.resultHigh) & (this.rightHigh ^ this.resultHigh)) ? Flag.OF : 0;
      case FlagOp.Sub:
      case FlagOp.Sbb:
        return this.signOf((this.left ^ this.right) & (this.left ^ this.result), (this.leftHigh ^ this.rightHigh) & (this.leftHigh ^ this.resultHigh)) ? Flag.OF : 0;
      case FlagOp.Inc:
        return this.isSignMinimum() ? Flag.OF : 0;
      case FlagOp.Multiply:
        return this.multiplyOverflows() ? Flag.OF : 0;
      case FlagOp.Dec:
        return this.isSignMaximum() ? Flag.OF : 0;
      case FlagOp.Logic:
        return 0;
      default:
        return this.bits & Flag.OF;
    }
  }

  /** Full RFLAGS with the arithmetic flags worked out. */
  get(): number {
    if (this.op === FlagOp.None) return this.bits;
    return (this.bits & ~ARITHMETIC_FLAGS) | this.cf() | this.pf() | this.af() | this.zf() | this.sf() | this.of();
  }

  /** Replaces every flag bit (the caller applies reserved-bit rules). */
  setAll(value: number): void {
    this.bits = value;
    this.op = FlagOp.None;
  }

  /** Makes `bits` authoritative, so single flags can be changed in place. */
  materialize(): void {
    if (this.op !== FlagOp.None) {
      this.bits = this.get();
      this.op = FlagOp.None;
    }
  }

  /** Evaluates condition code `cc` (0–15, as in Jcc/SETcc/CMOVcc). */
  condition(cc: number): boolean {
    if (this.op !== FlagOp.None && this.size !== 8) {
      // JE/JNE after anything: ZF is whether the result is zero.
      if ((cc & 14) === 4) return (this.result === 0) !== (cc === 5);
      // CMP/SUB: compare the operands directly, the common case of every loop.
      if (this.op === FlagOp.Sub) {
        const left = this.left >>> 0;
        const right = this.right >>> 0;
        // Most frequent first: a switch is a chain of tests.
        switch (cc) {
          case 2: return left < right;
          case 7: return left > right;
          case 3: return left >= right;
          case 6: return left <= right;
          case 12: return this.signed(left) < this.signed(right);
          case 13: return this.signed(left) >= this.signed(right);
          case 14: return this.signed(left) <= this.signed(right);
          case 15: return this.signed(left) > this.signed(right);
          default: break;
        }
      }
    }
    return this.conditionFromFlags(cc);
  }

  private conditionFromFlags(cc: number): boolean {
    let value: boolean;
    switch (cc >> 1) {
      case 0: value = this.of() !== 0; break;
      case 1: value = this.cf() !== 0; break;
      case 2: value = this.zf() !== 0; break;
      case 3: value = (this.cf() | this.zf()) !== 0; break;
      case 4: value = this.sf() !== 0; break;
      case 5: value = this.pf() !== 0; break;
      case 6: value = (this.sf() !== 0) !== (this.of() !== 0); break;
      default: value = this.zf() !== 0 || (this.sf() !== 0) !== (this.of() !== 0); break;
    }
    return (cc & 1) === 0 ? value : !value;
  }

  private readonly product = new Int32Array(4);
  private readonly digits = new Float64Array(8);

  /** Whether the signed product of `left` and `right` overflowed the operand size (sizes 2, 4, 8). */
  private multiplyOverflows(): boolean {
    if (this.size <= 4) {
      const a = this.signed(this.left);
      const b = this.signed(this.right);
      // Exact below 2^53; anything larger overflows every size anyway.
      const product = a * b;
      return product !== this.signed(product | 0) || Math.abs(product) >= 2 ** 53;
    }
    const words = this.product;
    multiplyUnsigned64(this.left, this.leftHigh, this.right, this.rightHigh, this.digits, words);
    let high = words[2]! >>> 0;
    let top = words[3]!;
    if (this.leftHigh < 0) {
      const difference = high - (this.right >>> 0);
      high = difference >>> 0;
      top = (top - this.rightHigh - (difference < 0 ? 1 : 0)) | 0;
    }
    if (this.rightHigh < 0) {
      const difference = high - (this.left >>> 0);
      high = difference >>> 0;
      top = (top - this.leftHigh - (difference < 0 ? 1 : 0)) | 0;
    }
    const sign = this.resultHigh >> 31;
    return (high | 0) !== sign || top !== sign;
  }

  private signed(value: number): number {
    return this.size === 1 ? (value << 24) >> 24 : this.size === 2 ? (value << 16) >> 16 : value | 0;
  }

  private signOf(low: number, high: number): boolean {
    switch (this.size) {
      case 1: return (low & 0x80) !== 0;
      case 2: return (low & 0x8000) !== 0;
      case 4: return (low | 0) < 0;
      default: return (high | 0) < 0;
    }
  }

  private isSignMinimum(): boolean {
    switch (this.size) {
      case 1: return (this.result & 0xff) === 0x80;
      case 2: return (this.result & 0xffff) === 0x8000;
      case 4: return (this.result | 0) === -0x80000000;
      default: return (this.resultHigh | 0) === -0x80000000 && this.result === 0;
    }
  }

  private isSignMaximum(): boolean {
    switch (this.size) {
      case 1: return (this.result & 0xff) === 0x7f;
      case 2: return (this.result & 0xffff) === 0x7fff;
      case 4: return (this.result | 0) === 0x7fffffff;
      default: return (this.resultHigh | 0) === 0x7fffffff && (this.result | 0) === -1;
    }
  }
}

/** 1 when the unsigned 64-bit pair (aLow, aHigh) is below (bLow, bHigh). */
function below64(aLow: number, aHigh: number, bLow: number, bHigh: number): number {
  const ah = aHigh >>> 0;
  const bh = bHigh >>> 0;
  return ah < bh || (ah === bh && aLow >>> 0 < bLow >>> 0) ? 1 : 0;
}
