import type { Instruction, InstructionRun } from '../decoder/instruction.js';
import type { HandlerName, OpcodeEntry } from '../decoder/opcode-entry.js';
import { fastPath } from './fast-paths.js';
import { alu, cmpxchg, cmpxchgPair, dec, inc, neg, not, test, xadd } from './arithmetic.js';
import { bitTest, bsf, bsr, bswap, lzcnt, movbe, popcnt, tzcnt } from './bits.js';
import { addCarryFlag, andn, bitFieldExtract, lowestSetBit, multiplyFlagless, parallelBits, rotateFlagless, shiftFlagless, zeroHighBits } from './bmi.js';
import { call, callFar, callFarIndirect, callIndirect, int, int1, int3, into, iret, jcc, jcxz, jmp, jmpFar, jmpFarIndirect, jmpIndirect, loop, ret, retFar } from './control-flow.js';
import {
  bound, cmov, convert, convertDouble, enter, lahf, lea, leave, loadFarPointer, mov, movFromSeg, movToSeg, movsx, movsxd, movzx, pop, popSeg, popa, popf,
  push, pushSeg, pusha, pushf, sahf, setcc, xchg, xlat,
} from './data-transfer.js';
import { aaa, aad, aam, aas, daa, das, salc } from './decimal.js';
import { swapgs, syscall, sysenter, sysexit, sysret } from './fast-system-call.js';
import { inPort, outPort } from './io.js';
import { div, idiv, imul, imulOne, mul } from './multiply.js';
import { shift, shld, shrd } from './shift.js';
import { cmps, ins, lods, movs, outs, scas, stos } from './string.js';
import {
  accessFlag, arpl, clts, cpuid, protectionKeyRights, descriptorTable, flagOp, fpuEscape, hlt, invlpg, lar, lldt, lmsw, lsl, ltr, movFromCr, movFromDr, movToCr, movToDr, nop,
  privilegedNop, rdmsr, rdpmc, rdtsc, rdtscp, sldt, smsw, str, tooLong, ud, verr, verw, wrmsr,
} from './system.js';
import { x87Arithmetic, x87CompareFlags, x87CompareRegister } from './x87-arithmetic.js';
import { x87Control, x87Wait } from './x87-control.js';
import { x87Environment } from './x87-environment.js';
import { fxsave } from './x87-fxsave.js';
import { xgetbv, xsave, xsetbv } from './xsave.js';
import { emms, simdInteger, simdMove, simdShift, simdShuffle } from './simd-integer.js';
import { crc32, maskedMove, simdExtend, simdExtract, simdInsert, simdSpecial, stringCompare } from './simd-integer-sse4.js';
import { mxcsr } from './sse-control.js';
import { sseMove, sseMoveScalar, ssePartialMove } from './sse-move.js';
import { sseApproximate, sseArithmetic, sseCompare, sseCompareFlags, sseHorizontal } from './sse-arithmetic.js';
import { sseDotProduct, sseRound } from './sse4-float.js';
import { sseConvert } from './sse-convert.js';
import { sseExtract, sseLogic, sseMoveMask, sseShuffle } from './sse-shuffle.js';
import { x87Exchange, x87Load, x87Store } from './x87-load-store.js';
import { x87Transcendental } from './x87-transcendental.js';
import { x87Unary } from './x87-unary.js';

/** Every handler the opcode table names. */
export const HANDLERS: Readonly<Record<HandlerName, InstructionRun>> = {
  alu, test, inc, dec, not, neg, mul, imulOne, imul, div, idiv, shift, shld, shrd, mov, movFromSeg, movToSeg, lea, movzx, movsx, movsxd,
  cmov, setcc, xchg, xadd, cmpxchg, cmpxchgPair, bswap, convert, convertDouble, push, pop, pushSeg, popSeg, pusha, popa, pushf, popf, enter,
  leave, lahf, sahf, jcc, jmp, jmpIndirect, call, callIndirect, ret, jmpFar, jmpFarIndirect, callFar, callFarIndirect, retFar, loop, jcxz,
  int3, int, into, int1, iret, hlt, flagOp, nop, ud, movs, cmps, stos, lods, scas, ins, outs, in: inPort, out: outPort, xlat, daa, das, aaa,
  aas, aam, aad, salc, bitTest, bsf, bsr, popcnt, lzcnt, tzcnt, cpuid, rdtsc, rdtscp, rdmsr, wrmsr, rdpmc, descriptorTable, lldt, sldt,
  ltr, str, lmsw, smsw, invlpg, clts, movFromCr, movToCr, movFromDr, movToDr, lar, lsl, verr, verw, arpl, syscall, sysret, sysenter,
  sysexit, swapgs, loadFarPointer, bound, fpuEscape, movbe, privilegedNop, tooLong,
  x87Wait, x87Control, x87Load, x87Store, x87Exchange, x87Arithmetic, x87CompareRegister, x87CompareFlags, x87Unary, x87Transcendental, x87Environment, fxsave,
  xgetbv, xsetbv, xsave, accessFlag, protectionKeyRights,
  mxcsr, sseMove, sseMoveScalar, ssePartialMove, sseArithmetic, sseCompare, sseCompareFlags, sseHorizontal, sseApproximate, sseLogic,
  sseShuffle, sseMoveMask, sseExtract, sseConvert, sseRound, sseDotProduct,
  simdInteger, simdShift, simdShuffle, simdMove, simdInsert, simdExtract, simdSpecial, simdExtend, maskedMove, emms, stringCompare, crc32,
  andn, bitFieldExtract, lowestSetBit, zeroHighBits, multiplyFlagless, parallelBits, rotateFlagless, shiftFlagless, addCarryFlag,
};

/** The routine for a decoded instruction: a specialised fast path when there is one, else the table's handler. */
export function selectHandler(entry: OpcodeEntry, instruction: Instruction): InstructionRun {
  return fastPath(entry, instruction) ?? HANDLERS[entry.handler];
}
