/*
 * The `sub` codes the x87 entries of the opcode table (decoder/table-x87.ts)
 * pass to their handlers (instructions/x87-*.ts), shared so the two cannot
 * drift apart.
 */

/** No-wait forms (FNINIT, FNSTSW, …): no check for pending exceptions. */
export const NO_WAIT = 0x100;
/** Control instructions leave FIP/FDP/FOP alone (SDM vol. 1, 8.1.8). */
export const CONTROL = 0x200;

/** `x87Control` (low byte). */
export enum X87Control {
  init = 0, clearExceptions = 1, storeStatusMemory = 2, storeStatusAx = 3, storeControl = 4, loadControl = 5,
  nop = 6, incrementTop = 7, decrementTop = 8, free = 9,
}

/** `x87Load` sources (low byte); `constant + n` loads constant n (FLD1, FLDL2T, FLDL2E, FLDPI, FLDLG2, FLDLN2, FLDZ). */
export enum X87Load { float32 = 0, float64 = 1, extended = 2, register = 3, int16 = 4, int32 = 5, int64 = 6, bcd = 7, constant = 8 }
/** `x87Store` destinations (bits 3:0); STORE_POP pops afterwards. */
export enum X87Store { float32 = 0, float64 = 1, extended = 2, register = 3, int16 = 4, int32 = 5, int64 = 6, bcd = 7 }
export const STORE_POP = 0x10;
/** FISTTP: the integer store truncates whatever the rounding control says (it always pops too). */
export const STORE_TRUNCATE = 0x20;

/** `x87Exchange`: FXCH; any other value is the FCMOVcc condition code. */
export const EXCHANGE = 16;

/** `x87Arithmetic` operations (bits 2:0, as ModRM.reg numbers them in D8). */
export enum X87Operation { add = 0, multiply = 1, compare = 2, comparePop = 3, subtract = 4, subtractReverse = 5, divide = 6, divideReverse = 7 }
/** `x87Arithmetic` operand forms (bits 6:4). */
export enum X87Form { float32 = 0, float64 = 1, int32 = 2, int16 = 3, stackTopFirst = 4, stackTopSecond = 5, stackTopSecondPop = 6 }
/** FUCOM/FUCOMP/FUCOMPP and FUCOMI/FUCOMIP (`x87CompareRegister` and `x87CompareFlags`). */
export const UNORDERED = 0x80;

/** `x87Unary` (low byte). */
export enum X87Unary {
  changeSign = 0, absolute = 1, test = 2, examine = 3, squareRoot = 4, roundToInteger = 5, scale = 6, extract = 7, remainder = 8, remainderNearest = 9,
}

/** `x87Environment` (low byte). */
export enum X87Environment { load = 0, store = 1, restore = 2, save = 3 }

/** `x87Transcendental` (low byte): the first four are `Trigonometric` operations of softfloat. */
export enum X87Transcendental {
  sine = 0, cosine = 1, tangent = 2, sineCosine = 3, powerMinusOne = 4, arcTangent = 5, logarithm = 6, logarithmPlusOne = 7,
}
