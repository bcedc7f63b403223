import { EntryFlag as F, byMod, entry, mandatory, type Slot } from './opcode-entry.js';
import { Conversion as C, Horizontal, Logic, PartialMove, SseForm, Shuffle } from '../fpu/sse-codes.js';
import { SseOperation } from '../fpu/softfloat/index.js';

const A = F.Aligned;
const M = F.MemoryOnly;
const D = SseForm.double;
const PACKED = SseForm.packed;

/** The PS (none), PD (66), SS (F3) and SD (F2) forms of an arithmetic opcode. */
function arithmetic(name: string, operation: number): Slot {
  return mandatory({
    none: entry(`${name}ps`, 'Vps,Wps', 'sseArithmetic', { sub: operation | PACKED, feature: 'sse', flags: A }),
    operandSize: entry(`${name}pd`, 'Vpd,Wpd', 'sseArithmetic', { sub: operation | PACKED | D, feature: 'sse2', flags: A }),
    repeat: entry(`${name}ss`, 'Vss,Wss', 'sseArithmetic', { sub: operation, feature: 'sse' }),
    repeatNot: entry(`${name}sd`, 'Vsd,Wsd', 'sseArithmetic', { sub: operation | D, feature: 'sse2' }),
  });
}

/** The PS (none) and PD (66) forms of a packed opcode (`immediate`: a third operand Ib). */
function packedPair(name: string, handler: 'sseLogic' | 'sseShuffle', single: number, double: number, immediate = false): Slot {
  const tail = immediate ? ',Ib' : '';
  return mandatory({
    none: entry(`${name}ps`, `Vps,Wps${tail}`, handler, { sub: single, feature: 'sse', flags: A }),
    operandSize: entry(`${name}pd`, `Vpd,Wpd${tail}`, handler, { sub: double, feature: 'sse2', flags: A }),
  });
}

/**
 * The SSE, SSE2, SSE3 and SSE4.1 floating-point instructions of the 0F,
 * 0F 38 and 0F 3A maps (Intel SDM vol. 2, tables ). Operands use the
 * SDM's notation: V/W/U for XMM registers (W also memory), P/Q/N for MMX, with
 * size suffixes ps/pd/ss/sd/dq/q/d.
 */
export function addSseFloat(twoByte: Array<Slot | undefined>): void {
  // Moves.
  twoByte[0x10] = mandatory({
    none: entry('movups', 'Vps,Wps', 'sseMove', { feature: 'sse' }),
    operandSize: entry('movupd', 'Vpd,Wpd', 'sseMove', { feature: 'sse2' }),
    repeat: entry('movss', 'Vss,Wss', 'sseMoveScalar', { sub: 4, feature: 'sse' }),
    repeatNot: entry('movsd', 'Vsd,Wsd', 'sseMoveScalar', { sub: 8, feature: 'sse2' }),
  });
  twoByte[0x11] = mandatory({
    none: entry('movups', 'Wps,Vps', 'sseMove', { feature: 'sse' }),
    operandSize: entry('movupd', 'Wpd,Vpd', 'sseMove', { feature: 'sse2' }),
    repeat: entry('movss', 'Wss,Vss', 'sseMoveScalar', { sub: 4, feature: 'sse' }),
    repeatNot: entry('movsd', 'Wsd,Vsd', 'sseMoveScalar', { sub: 8, feature: 'sse2' }),
  });
  // 0F 12/13 (low quadword) and 0F 16/17 (high): MOVLPS/MOVHPS, their register forms MOVHLPS/MOVLHPS, the PD forms, and SSE3's duplications.
  for (const [opcode, half, load, store, registerForm, registerName, duplicate, duplicateName] of [
    [0x12, 'l', PartialMove.loadLow, PartialMove.storeLow, PartialMove.highToLow, 'movhlps', PartialMove.duplicateEven, 'movsldup'],
    [0x16, 'h', PartialMove.loadHigh, PartialMove.storeHigh, PartialMove.lowToHigh, 'movlhps', PartialMove.duplicateOdd, 'movshdup'],
  ] as const) {
    twoByte[opcode] = mandatory({
      none: byMod(
        entry(`mov${half}ps`, 'Vq,Mq', 'ssePartialMove', { sub: load, feature: 'sse', flags: M }),
        entry(registerName, 'Vq,Uq', 'ssePartialMove', { sub: registerForm, feature: 'sse' }),
      ),
      operandSize: entry(`mov${half}pd`, 'Vq,Mq', 'ssePartialMove', { sub: load, feature: 'sse2', flags: M }),
      repeat: entry(duplicateName, 'Vps,Wps', 'ssePartialMove', { sub: duplicate, feature: 'sse3', flags: A }),
      repeatNot: opcode === 0x12 ? entry('movddup', 'Vpd,Wq', 'ssePartialMove', { sub: PartialMove.duplicateLow, feature: 'sse3' }) : undefined,
    });
    twoByte[opcode + 1] = mandatory({
      none: entry(`mov${half}ps`, 'Mq,Vq', 'ssePartialMove', { sub: store, feature: 'sse', flags: M }),
      operandSize: entry(`mov${half}pd`, 'Mq,Vq', 'ssePartialMove', { sub: store, feature: 'sse2', flags: M }),
    });
  }
  twoByte[0x28] = mandatory({
    none: entry('movaps', 'Vps,Wps', 'sseMove', { feature: 'sse', flags: A }),
    operandSize: entry('movapd', 'Vpd,Wpd', 'sseMove', { feature: 'sse2', flags: A }),
  });
  twoByte[0x29] = mandatory({
    none: entry('movaps', 'Wps,Vps', 'sseMove', { feature: 'sse', flags: A }),
    operandSize: entry('movapd', 'Wpd,Vpd', 'sseMove', { feature: 'sse2', flags: A }),
  });
  twoByte[0x2b] = mandatory({
    none: entry('movntps', 'Mps,Vps', 'sseMove', { feature: 'sse', flags: A | M }),
    operandSize: entry('movntpd', 'Mpd,Vpd', 'sseMove', { feature: 'sse2', flags: A | M }),
  });
  twoByte[0xf0] = mandatory({ repeatNot: entry('lddqu', 'Vdq,Mdq', 'sseMove', { feature: 'sse3', flags: M }) });
  twoByte[0xc3] = mandatory({ none: entry('movnti', 'My,Gy', 'mov', { feature: 'sse2', flags: M }) });
  twoByte[0x50] = mandatory({
    none: entry('movmskps', 'Gd,Ups', 'sseMoveMask', { feature: 'sse' }),
    operandSize: entry('movmskpd', 'Gd,Upd', 'sseMoveMask', { sub: D, feature: 'sse2' }),
  });

  // Arithmetic.
  twoByte[0x51] = arithmetic('sqrt', SseOperation.squareRoot);
  twoByte[0x58] = arithmetic('add', SseOperation.add);
  twoByte[0x59] = arithmetic('mul', SseOperation.multiply);
  twoByte[0x5c] = arithmetic('sub', SseOperation.subtract);
  twoByte[0x5d] = arithmetic('min', SseOperation.minimum);
  twoByte[0x5e] = arithmetic('div', SseOperation.divide);
  twoByte[0x5f] = arithmetic('max', SseOperation.maximum);
  twoByte[0x52] = mandatory({
    none: entry('rsqrtps', 'Vps,Wps', 'sseApproximate', { sub: 1 | PACKED, feature: 'sse', flags: A }),
    repeat: entry('rsqrtss', 'Vss,Wss', 'sseApproximate', { sub: 1, feature: 'sse' }),
  });
  twoByte[0x53] = mandatory({
    none: entry('rcpps', 'Vps,Wps', 'sseApproximate', { sub: PACKED, feature: 'sse', flags: A }),
    repeat: entry('rcpss', 'Vss,Wss', 'sseApproximate', { sub: 0, feature: 'sse' }),
  });
  twoByte[0xc2] = mandatory({
    none: entry('cmpps', 'Vps,Wps,Ib', 'sseCompare', { sub: PACKED, feature: 'sse', flags: A }),
    operandSize: entry('cmppd', 'Vpd,Wpd,Ib', 'sseCompare', { sub: PACKED | D, feature: 'sse2', flags: A }),
    repeat: entry('cmpss', 'Vss,Wss,Ib', 'sseCompare', { sub: 0, feature: 'sse' }),
    repeatNot: entry('cmpsd', 'Vsd,Wsd,Ib', 'sseCompare', { sub: D, feature: 'sse2' }),
  });
  twoByte[0x2e] = mandatory({
    none: entry('ucomiss', 'Vss,Wss', 'sseCompareFlags', { sub: 0, feature: 'sse' }),
    operandSize: entry('ucomisd', 'Vsd,Wsd', 'sseCompareFlags', { sub: D, feature: 'sse2' }),
  });
  twoByte[0x2f] = mandatory({
    none: entry('comiss', 'Vss,Wss', 'sseCompareFlags', { sub: 1, feature: 'sse' }),
    operandSize: entry('comisd', 'Vsd,Wsd', 'sseCompareFlags', { sub: 1 | D, feature: 'sse2' }),
  });
  twoByte[0xd0] = mandatory({
    operandSize: entry('addsubpd', 'Vpd,Wpd', 'sseHorizontal', { sub: Horizontal.addSubtract | D, feature: 'sse3', flags: A }),
    repeatNot: entry('addsubps', 'Vps,Wps', 'sseHorizontal', { sub: Horizontal.addSubtract, feature: 'sse3', flags: A }),
  });
  twoByte[0x7c] = mandatory({
    operandSize: entry('haddpd', 'Vpd,Wpd', 'sseHorizontal', { sub: Horizontal.add | D, feature: 'sse3', flags: A }),
    repeatNot: entry('haddps', 'Vps,Wps', 'sseHorizontal', { sub: Horizontal.add, feature: 'sse3', flags: A }),
  });
  twoByte[0x7d] = mandatory({
    operandSize: entry('hsubpd', 'Vpd,Wpd', 'sseHorizontal', { sub: Horizontal.subtract | D, feature: 'sse3', flags: A }),
    repeatNot: entry('hsubps', 'Vps,Wps', 'sseHorizontal', { sub: Horizontal.subtract, feature: 'sse3', flags: A }),
  });

  // Bitwise and rearranging.
  twoByte[0x54] = packedPair('and', 'sseLogic', Logic.and, Logic.and);
  twoByte[0x55] = packedPair('andn', 'sseLogic', Logic.andNot, Logic.andNot);
  twoByte[0x56] = packedPair('or', 'sseLogic', Logic.or, Logic.or);
  twoByte[0x57] = packedPair('xor', 'sseLogic', Logic.xor, Logic.xor);
  twoByte[0x14] = packedPair('unpckl', 'sseShuffle', Shuffle.unpackLowSingle, Shuffle.unpackLowDouble);
  twoByte[0x15] = packedPair('unpckh', 'sseShuffle', Shuffle.unpackHighSingle, Shuffle.unpackHighDouble);
  twoByte[0xc6] = packedPair('shuf', 'sseShuffle', Shuffle.shuffleSingle, Shuffle.shuffleDouble, true);

  // Conversions.
  const T = C.truncate;
  twoByte[0x2a] = mandatory({
    none: entry('cvtpi2ps', 'Vps,Qq', 'sseConvert', { sub: C.int32PairToSingle, feature: 'sse' }),
    operandSize: entry('cvtpi2pd', 'Vpd,Qq', 'sseConvert', { sub: C.int32PairToDouble, feature: 'sse2' }),
    repeat: entry('cvtsi2ss', 'Vss,Ey', 'sseConvert', { sub: C.integerToSingle, feature: 'sse' }),
    repeatNot: entry('cvtsi2sd', 'Vsd,Ey', 'sseConvert', { sub: C.integerToDouble, feature: 'sse2' }),
  });
  for (const [opcode, truncate, prefix] of [[0x2c, T, 'cvtt'], [0x2d, 0, 'cvt']] as const) {
    twoByte[opcode] = mandatory({
      none: entry(`${prefix}ps2pi`, 'Pq,Wq', 'sseConvert', { sub: C.singlePairToInt32 | truncate, feature: 'sse' }),
      operandSize: entry(`${prefix}pd2pi`, 'Pq,Wpd', 'sseConvert', { sub: C.doubleToInt32Pair | truncate, feature: 'sse2', flags: A }),
      repeat: entry(`${prefix}ss2si`, 'Gy,Wss', 'sseConvert', { sub: C.singleToInteger | truncate, feature: 'sse' }),
      repeatNot: entry(`${prefix}sd2si`, 'Gy,Wsd', 'sseConvert', { sub: C.doubleToInteger | truncate, feature: 'sse2' }),
    });
  }
  twoByte[0x5a] = mandatory({
    none: entry('cvtps2pd', 'Vpd,Wq', 'sseConvert', { sub: C.singlesToDoubles, feature: 'sse2' }),
    operandSize: entry('cvtpd2ps', 'Vps,Wpd', 'sseConvert', { sub: C.doublesToSingles, feature: 'sse2', flags: A }),
    repeat: entry('cvtss2sd', 'Vsd,Wss', 'sseConvert', { sub: C.singleToDouble, feature: 'sse2' }),
    repeatNot: entry('cvtsd2ss', 'Vss,Wsd', 'sseConvert', { sub: C.doubleToSingle, feature: 'sse2' }),
  });
  twoByte[0x5b] = mandatory({
    none: entry('cvtdq2ps', 'Vps,Wdq', 'sseConvert', { sub: C.int32sToSingles, feature: 'sse2', flags: A }),
    operandSize: entry('cvtps2dq', 'Vdq,Wps', 'sseConvert', { sub: C.singlesToInt32s, feature: 'sse2', flags: A }),
    repeat: entry('cvttps2dq', 'Vdq,Wps', 'sseConvert', { sub: C.singlesToInt32s | T, feature: 'sse2', flags: A }),
  });
  twoByte[0xe6] = mandatory({
    operandSize: entry('cvttpd2dq', 'Vdq,Wpd', 'sseConvert', { sub: C.doublesToInt32s | T, feature: 'sse2', flags: A }),
    repeat: entry('cvtdq2pd', 'Vpd,Wq', 'sseConvert', { sub: C.int32sToDoubles, feature: 'sse2' }),
    repeatNot: entry('cvtpd2dq', 'Vdq,Wpd', 'sseConvert', { sub: C.doublesToInt32s, feature: 'sse2', flags: A }),
  });
}

/** The SSE4.1 floating-point instructions of the 0F 38 map: the variable blends (XMM0 selects). */
export function addSseFloat38(map: Array<Slot | undefined>): void {
  map[0x14] = mandatory({ operandSize: entry('blendvps', 'Vps,Wps,xmm0', 'sseShuffle', { sub: Shuffle.blendVariableSingle, feature: 'sse4_1', flags: A }) });
  map[0x15] = mandatory({ operandSize: entry('blendvpd', 'Vpd,Wpd,xmm0', 'sseShuffle', { sub: Shuffle.blendVariableDouble, feature: 'sse4_1', flags: A }) });
}

/** The SSE4.1 floating-point instructions of the 0F 3A map (all take an Ib). */
export function addSseFloat3A(map: Array<Slot | undefined>): void {
  const sse41 = (name: string, operands: string, handler: 'sseRound' | 'sseShuffle' | 'sseDotProduct' | 'sseExtract', sub: number, flags = 0): Slot =>
    mandatory({ operandSize: entry(name, operands, handler, { sub, feature: 'sse4_1', flags }) });
  map[0x08] = sse41('roundps', 'Vps,Wps,Ib', 'sseRound', PACKED, A);
  map[0x09] = sse41('roundpd', 'Vpd,Wpd,Ib', 'sseRound', PACKED | D, A);
  map[0x0a] = sse41('roundss', 'Vss,Wss,Ib', 'sseRound', 0);
  map[0x0b] = sse41('roundsd', 'Vsd,Wsd,Ib', 'sseRound', D);
  map[0x0c] = sse41('blendps', 'Vps,Wps,Ib', 'sseShuffle', Shuffle.blendSingle, A);
  map[0x0d] = sse41('blendpd', 'Vpd,Wpd,Ib', 'sseShuffle', Shuffle.blendDouble, A);
  map[0x17] = sse41('extractps', 'Ed,Vdq,Ib', 'sseExtract', 0);
  map[0x21] = sse41('insertps', 'Vps,Wss,Ib', 'sseShuffle', Shuffle.insertSingle);
  map[0x40] = sse41('dpps', 'Vps,Wps,Ib', 'sseDotProduct', 0, A);
  map[0x41] = sse41('dppd', 'Vpd,Wpd,Ib', 'sseDotProduct', D, A);
}
