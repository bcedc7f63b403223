import { BINARY_OPERATION_INDEX as OP, type BinaryOperationName, ShiftKind } from '../simd/integer-lanes.js';
import { EntryFlag as F, byMod, entry, type Feature, group, mandatory, type OpcodeEntry, type Slot } from './opcode-entry.js';

const A = F.Aligned;
const M = F.MemoryOnly;

/** `sub` bit of an MMX lane operation whose memory source is 32 bits (PUNPCKLBW/WD/DQ mm, m32). */
export const HALF_SOURCE = 0x100;
/** `sub` bit of a SIMD integer handler that works on an MMX register rather than an XMM register. */
export const MMX_FORM = 0x200;
/** Selectors of the `simdMove` handler. */
export enum SimdMove {
  /** MOVD/MOVQ mm or xmm ← r/m32/64 (zero-extended into an XMM register). */
  fromGeneral = 0,
  /** MOVD/MOVQ r/m32/64 ← mm or xmm. */
  toGeneral = 1,
  /** MOVQ mm ← mm/m64 and mm/m64 ← mm (MOVNTQ). */
  mmx = 2,
  /** MOVQ xmm ← xmm/m64 (F3 0F 7E): the high quadword cleared. */
  loadQuadword = 3,
  /** MOVQ xmm/m64 ← xmm (66 0F D6): a register destination has its high quadword cleared. */
  storeQuadword = 4,
  /** MOVQ2DQ xmm ← mm. */
  mmxToXmm = 5,
  /** MOVDQ2Q mm ← xmm. */
  xmmToMmx = 6,
}
/** Selectors of the `simdSpecial` handler (SSE4.1). */
export enum SimdSpecial { blendVariableBytes = 0, blendWords = 1, test = 2, minimumPosition = 3, multipleSumAbsoluteDifferences = 4 }
/** Selectors of the `simdShuffle` handler; bits 3:0 pick the form. */
export enum SimdShuffle { words = 0, dwords = 1, highWords = 2, lowWords = 3, alignRight = 4, shiftBytesLeft = 5, shiftBytesRight = 6 }

/** An MMX (no prefix) and an SSE2 (66) lane operation of one opcode; `mmxFeature` undefined for XMM-only opcodes. */
function lanes(mnemonic: string, operation: BinaryOperationName, mmxFeature: Feature | undefined, xmmFeature: Feature = 'sse2', mmxSub = 0): Slot {
  return mandatory({
    none: mmxFeature === undefined ? undefined : entry(mnemonic, mmxSub === HALF_SOURCE ? 'Pq,Qd' : 'Pq,Qq', 'simdInteger', { sub: OP[operation] | MMX_FORM | mmxSub, feature: mmxFeature }),
    operandSize: entry(mnemonic, 'Vdq,Wdq', 'simdInteger', { sub: OP[operation], feature: xmmFeature, flags: A }),
  });
}

/** An XMM-only (66) lane operation of SSE4.1 or SSE4.2. */
function xmmLanes(mnemonic: string, operation: BinaryOperationName, feature: Feature = 'sse4_1'): Slot {
  return mandatory({ operandSize: entry(mnemonic, 'Vdq,Wdq', 'simdInteger', { sub: OP[operation], feature, flags: A }) });
}

/** `sub` of the `simdShift` handler: the shift kind and the lane size in bytes. */
function shiftSub(kind: number, laneBytes: number): number {
  return kind | (laneBytes << 4);
}

/** PSRL/PSRA/PSLL by a register or memory count. */
function shiftByRegister(mnemonic: string, kind: number, laneBytes: number): Slot {
  const sub = shiftSub(kind, laneBytes);
  return mandatory({
    none: entry(mnemonic, 'Pq,Qq', 'simdShift', { sub: sub | MMX_FORM, feature: 'mmx' }),
    operandSize: entry(mnemonic, 'Vdq,Wdq', 'simdShift', { sub, feature: 'sse2', flags: A }),
  });
}

/** PSRL/PSRA/PSLL by an immediate (groups 12–14: 0F 71–73 /r ib on a register). */
function shiftByImmediate(mnemonic: string, kind: number, laneBytes: number): Slot {
  const sub = shiftSub(kind, laneBytes);
  return mandatory({
    none: entry(mnemonic, 'Nq,Ib', 'simdShift', { sub: sub | MMX_FORM, feature: 'mmx' }),
    operandSize: entry(mnemonic, 'Udq,Ib', 'simdShift', { sub, feature: 'sse2' }),
  });
}

/** The CRC32 r, r/m16/32/64 form: its source follows the operand size (66, REX.W) while the destination is r32 or r64. */
function crc32Word(): OpcodeEntry {
  const form = entry('crc32', 'Gy,Ev', 'crc32', { sub: 1, feature: 'sse4_2' });
  // `Gy` alone would make the operand size 32/64 and lose the 66 prefix the source needs.
  return { ...form, flags: form.flags & ~F.SizeY };
}

/**
 * MOVD/MOVQ between a general register or memory and an MMX/XMM register.
 * The memory form is written with a SIMD operand so it prints without a
 * size (NASM assembles `movq mm0, [m]` as 0F 6F, which disassembles the
 * same); `SizeY` keeps the operand size 32 or 64 (REX.W).
 */
function generalMove(registerOperands: string, memoryOperands: string, sub: number, feature: Feature): Slot {
  return byMod(entry('movd', memoryOperands, 'simdMove', { sub, feature, flags: F.SizeY | M }), entry('movd', registerOperands, 'simdMove', { sub, feature }));
}

/**
 * The integer MMX, SSE2, SSSE3, SSE4.1 and SSE4.2 instructions of the 0F map
 * (Intel SDM vol. 2, table A-3): the no-prefix forms work on MMX registers,
 * the 66 forms on XMM registers.
 */
export function addSimdInteger(twoByte: Array<Slot | undefined>): void {
  // The lane operations: opcode, mnemonic, operation, the MMX form's feature (undefined: XMM only), MMX source size.
  const LANES: Array<[number, string, BinaryOperationName, Feature | undefined, number?]> = [
    [0x60, 'punpcklbw', 'unpackLowBytes', 'mmx', HALF_SOURCE],
    [0x61, 'punpcklwd', 'unpackLowWords', 'mmx', HALF_SOURCE],
    [0x62, 'punpckldq', 'unpackLowDwords', 'mmx', HALF_SOURCE],
    [0x63, 'packsswb', 'packSignedWordsToBytes', 'mmx'],
    [0x64, 'pcmpgtb', 'greaterBytes', 'mmx'],
    [0x65, 'pcmpgtw', 'greaterWords', 'mmx'],
    [0x66, 'pcmpgtd', 'greaterDwords', 'mmx'],
    [0x67, 'packuswb', 'packUnsignedWordsToBytes', 'mmx'],
    [0x68, 'punpckhbw', 'unpackHighBytes', 'mmx'],
    [0x69, 'punpckhwd', 'unpackHighWords', 'mmx'],
    [0x6a, 'punpckhdq', 'unpackHighDwords', 'mmx'],
    [0x6b, 'packssdw', 'packSignedDwordsToWords', 'mmx'],
    [0x6c, 'punpcklqdq', 'unpackLowQuadwords', undefined],
    [0x6d, 'punpckhqdq', 'unpackHighQuadwords', undefined],
    [0x74, 'pcmpeqb', 'equalBytes', 'mmx'],
    [0x75, 'pcmpeqw', 'equalWords', 'mmx'],
    [0x76, 'pcmpeqd', 'equalDwords', 'mmx'],
    [0xd4, 'paddq', 'addQuadwords', 'sse2'],
    [0xd5, 'pmullw', 'multiplyLowWords', 'mmx'],
    [0xd8, 'psubusb', 'subtractUnsignedSaturateBytes', 'mmx'],
    [0xd9, 'psubusw', 'subtractUnsignedSaturateWords', 'mmx'],
    [0xda, 'pminub', 'minimumUnsignedBytes', 'sse'],
    [0xdb, 'pand', 'and', 'mmx'],
    [0xdc, 'paddusb', 'addUnsignedSaturateBytes', 'mmx'],
    [0xdd, 'paddusw', 'addUnsignedSaturateWords', 'mmx'],
    [0xde, 'pmaxub', 'maximumUnsignedBytes', 'sse'],
    [0xdf, 'pandn', 'andNot', 'mmx'],
    [0xe0, 'pavgb', 'averageBytes', 'sse'],
    [0xe3, 'pavgw', 'averageWords', 'sse'],
    [0xe4, 'pmulhuw', 'multiplyHighUnsignedWords', 'sse'],
    [0xe5, 'pmulhw', 'multiplyHighWords', 'mmx'],
    [0xe8, 'psubsb', 'subtractSignedSaturateBytes', 'mmx'],
    [0xe9, 'psubsw', 'subtractSignedSaturateWords', 'mmx'],
    [0xea, 'pminsw', 'minimumSignedWords', 'sse'],
    [0xeb, 'por', 'or', 'mmx'],
    [0xec, 'paddsb', 'addSignedSaturateBytes', 'mmx'],
    [0xed, 'paddsw', 'addSignedSaturateWords', 'mmx'],
    [0xee, 'pmaxsw', 'maximumSignedWords', 'sse'],
    [0xef, 'pxor', 'xor', 'mmx'],
    [0xf4, 'pmuludq', 'multiplyUnsignedDwords', 'sse2'],
    [0xf5, 'pmaddwd', 'multiplyAddWords', 'mmx'],
    [0xf6, 'psadbw', 'sumAbsoluteDifferences', 'sse'],
    [0xf8, 'psubb', 'subtractBytes', 'mmx'],
    [0xf9, 'psubw', 'subtractWords', 'mmx'],
    [0xfa, 'psubd', 'subtractDwords', 'mmx'],
    [0xfb, 'psubq', 'subtractQuadwords', 'sse2'],
    [0xfc, 'paddb', 'addBytes', 'mmx'],
    [0xfd, 'paddw', 'addWords', 'mmx'],
    [0xfe, 'paddd', 'addDwords', 'mmx'],
  ];
  for (const [opcode, mnemonic, operation, mmxFeature, mmxSub] of LANES) twoByte[opcode] = lanes(mnemonic, operation, mmxFeature, 'sse2', mmxSub);
  twoByte[0x6e] = mandatory({
    none: generalMove('Pq,Ey', 'Pq,Qq', SimdMove.fromGeneral | MMX_FORM, 'mmx'),
    operandSize: generalMove('Vdq,Ey', 'Vdq,Wq', SimdMove.fromGeneral, 'sse2'),
  });
  twoByte[0x6f] = mandatory({
    none: entry('movq', 'Pq,Qq', 'simdMove', { sub: SimdMove.mmx | MMX_FORM, feature: 'mmx' }),
    operandSize: entry('movdqa', 'Vdq,Wdq', 'sseMove', { feature: 'sse2', flags: A }),
    repeat: entry('movdqu', 'Vdq,Wdq', 'sseMove', { feature: 'sse2' }),
  });
  twoByte[0x70] = mandatory({
    none: entry('pshufw', 'Pq,Qq,Ib', 'simdShuffle', { sub: SimdShuffle.words | MMX_FORM, feature: 'sse' }),
    operandSize: entry('pshufd', 'Vdq,Wdq,Ib', 'simdShuffle', { sub: SimdShuffle.dwords, feature: 'sse2', flags: A }),
    repeat: entry('pshufhw', 'Vdq,Wdq,Ib', 'simdShuffle', { sub: SimdShuffle.highWords, feature: 'sse2', flags: A }),
    repeatNot: entry('pshuflw', 'Vdq,Wdq,Ib', 'simdShuffle', { sub: SimdShuffle.lowWords, feature: 'sse2', flags: A }),
  });
  const { leftLogical: LEFT, rightLogical: RIGHT, rightArithmetic: ARITHMETIC } = ShiftKind;
  twoByte[0x71] = group([], [undefined, undefined, shiftByImmediate('psrlw', RIGHT, 2), undefined, shiftByImmediate('psraw', ARITHMETIC, 2), undefined, shiftByImmediate('psllw', LEFT, 2)]);
  twoByte[0x72] = group([], [undefined, undefined, shiftByImmediate('psrld', RIGHT, 4), undefined, shiftByImmediate('psrad', ARITHMETIC, 4), undefined, shiftByImmediate('pslld', LEFT, 4)]);
  twoByte[0x73] = group([], [
    undefined,
    undefined,
    shiftByImmediate('psrlq', RIGHT, 8),
    mandatory({ operandSize: entry('psrldq', 'Udq,Ib', 'simdShuffle', { sub: SimdShuffle.shiftBytesRight, feature: 'sse2' }) }),
    undefined,
    undefined,
    shiftByImmediate('psllq', LEFT, 8),
    mandatory({ operandSize: entry('pslldq', 'Udq,Ib', 'simdShuffle', { sub: SimdShuffle.shiftBytesLeft, feature: 'sse2' }) }),
  ]);
  twoByte[0x77] = mandatory({ none: entry('emms', '', 'emms', { feature: 'mmx' }) });
  twoByte[0x7e] = mandatory({
    none: generalMove('Ey,Pq', 'Qq,Pq', SimdMove.toGeneral | MMX_FORM, 'mmx'),
    operandSize: generalMove('Ey,Vdq', 'Wq,Vdq', SimdMove.toGeneral, 'sse2'),
    repeat: entry('movq', 'Vdq,Wq', 'simdMove', { sub: SimdMove.loadQuadword, feature: 'sse2' }),
  });
  twoByte[0x7f] = mandatory({
    none: entry('movq', 'Qq,Pq', 'simdMove', { sub: SimdMove.mmx | MMX_FORM, feature: 'mmx' }),
    operandSize: entry('movdqa', 'Wdq,Vdq', 'sseMove', { feature: 'sse2', flags: A }),
    repeat: entry('movdqu', 'Wdq,Vdq', 'sseMove', { feature: 'sse2' }),
  });
  twoByte[0xc4] = mandatory({
    none: byMod(entry('pinsrw', 'Pq,Mw,Ib', 'simdInsert', { sub: 2 | MMX_FORM, feature: 'sse', flags: M }), entry('pinsrw', 'Pq,Ed,Ib', 'simdInsert', { sub: 2 | MMX_FORM, feature: 'sse' })),
    operandSize: byMod(entry('pinsrw', 'Vdq,Mw,Ib', 'simdInsert', { sub: 2, feature: 'sse2', flags: M }), entry('pinsrw', 'Vdq,Ed,Ib', 'simdInsert', { sub: 2, feature: 'sse2' })),
  });
  twoByte[0xc5] = mandatory({
    none: entry('pextrw', 'Gd,Nq,Ib', 'simdExtract', { sub: 2 | MMX_FORM, feature: 'sse' }),
    operandSize: entry('pextrw', 'Gd,Udq,Ib', 'simdExtract', { sub: 2, feature: 'sse2' }),
  });
  twoByte[0xd1] = shiftByRegister('psrlw', RIGHT, 2);
  twoByte[0xd2] = shiftByRegister('psrld', RIGHT, 4);
  twoByte[0xd3] = shiftByRegister('psrlq', RIGHT, 8);
  twoByte[0xd6] = mandatory({
    operandSize: entry('movq', 'Wq,Vq', 'simdMove', { sub: SimdMove.storeQuadword, feature: 'sse2' }),
    repeat: entry('movq2dq', 'Vdq,Nq', 'simdMove', { sub: SimdMove.mmxToXmm, feature: 'sse2' }),
    repeatNot: entry('movdq2q', 'Pq,Uq', 'simdMove', { sub: SimdMove.xmmToMmx, feature: 'sse2' }),
  });
  twoByte[0xd7] = mandatory({
    none: entry('pmovmskb', 'Gd,Nq', 'simdExtract', { sub: 0 | MMX_FORM, feature: 'sse' }),
    operandSize: entry('pmovmskb', 'Gd,Udq', 'simdExtract', { sub: 0, feature: 'sse2' }),
  });
  twoByte[0xe1] = shiftByRegister('psraw', ARITHMETIC, 2);
  twoByte[0xe2] = shiftByRegister('psrad', ARITHMETIC, 4);
  twoByte[0xe7] = mandatory({
    none: entry('movntq', 'Mq,Pq', 'simdMove', { sub: SimdMove.mmx | MMX_FORM, feature: 'sse', flags: M }),
    operandSize: entry('movntdq', 'Mdq,Vdq', 'sseMove', { feature: 'sse2', flags: A | M }),
  });
  twoByte[0xf1] = shiftByRegister('psllw', LEFT, 2);
  twoByte[0xf2] = shiftByRegister('pslld', LEFT, 4);
  twoByte[0xf3] = shiftByRegister('psllq', LEFT, 8);
  twoByte[0xf7] = mandatory({
    none: entry('maskmovq', 'Pq,Nq', 'maskedMove', { sub: MMX_FORM, feature: 'sse' }),
    operandSize: entry('maskmovdqu', 'Vdq,Udq', 'maskedMove', { feature: 'sse2' }),
  });
}

/** `sub` of the `simdExtend` handler: source and result lane sizes and the signedness. */
function extendSub(fromBytes: number, toBytes: number, signed: boolean): number {
  return fromBytes | (toBytes << 4) | (signed ? 0x100 : 0);
}

/** The SSSE3, SSE4.1 and SSE4.2 integer instructions and CRC32 of the 0F 38 map (SDM vol. 2, table A-4). */
export function addSimdInteger38(map: Array<Slot | undefined>): void {
  const SSSE3: Array<[number, string, BinaryOperationName]> = [
    [0x00, 'pshufb', 'shuffleBytes'], [0x01, 'phaddw', 'horizontalAddWords'], [0x02, 'phaddd', 'horizontalAddDwords'],
    [0x03, 'phaddsw', 'horizontalAddSaturateWords'], [0x04, 'pmaddubsw', 'multiplyAddUnsignedSignedBytes'], [0x05, 'phsubw', 'horizontalSubtractWords'],
    [0x06, 'phsubd', 'horizontalSubtractDwords'], [0x07, 'phsubsw', 'horizontalSubtractSaturateWords'], [0x08, 'psignb', 'signBytes'],
    [0x09, 'psignw', 'signWords'], [0x0a, 'psignd', 'signDwords'], [0x0b, 'pmulhrsw', 'multiplyHighRoundScaleWords'],
    [0x1c, 'pabsb', 'absoluteBytes'], [0x1d, 'pabsw', 'absoluteWords'], [0x1e, 'pabsd', 'absoluteDwords'],
  ];
  for (const [opcode, mnemonic, operation] of SSSE3) map[opcode] = lanes(mnemonic, operation, 'ssse3', 'ssse3');
  map[0x10] = mandatory({ operandSize: entry('pblendvb', 'Vdq,Wdq,xmm0', 'simdSpecial', { sub: SimdSpecial.blendVariableBytes, feature: 'sse4_1', flags: A }) });
  map[0x17] = mandatory({ operandSize: entry('ptest', 'Vdq,Wdq', 'simdSpecial', { sub: SimdSpecial.test, feature: 'sse4_1', flags: A }) });
  const EXTENSIONS: Array<[number, string, number, number, string]> = [
    [0x0, 'bw', 1, 2, 'q'], [0x1, 'bd', 1, 4, 'd'], [0x2, 'bq', 1, 8, 'w'], [0x3, 'wd', 2, 4, 'q'], [0x4, 'wq', 2, 8, 'd'], [0x5, 'dq', 4, 8, 'q'],
  ];
  for (const [low, suffix, fromBytes, toBytes, source] of EXTENSIONS) {
    map[0x20 + low] = mandatory({ operandSize: entry(`pmovsx${suffix}`, `Vdq,W${source}`, 'simdExtend', { sub: extendSub(fromBytes, toBytes, true), feature: 'sse4_1' }) });
    map[0x30 + low] = mandatory({ operandSize: entry(`pmovzx${suffix}`, `Vdq,W${source}`, 'simdExtend', { sub: extendSub(fromBytes, toBytes, false), feature: 'sse4_1' }) });
  }
  const SSE41: Array<[number, string, BinaryOperationName, Feature?]> = [
    [0x28, 'pmuldq', 'multiplySignedDwords'],
    [0x29, 'pcmpeqq', 'equalQuadwords'],
    [0x2b, 'packusdw', 'packUnsignedDwordsToWords'],
    [0x37, 'pcmpgtq', 'greaterQuadwords', 'sse4_2'],
    [0x38, 'pminsb', 'minimumSignedBytes'],
    [0x39, 'pminsd', 'minimumSignedDwords'],
    [0x3a, 'pminuw', 'minimumUnsignedWords'],
    [0x3b, 'pminud', 'minimumUnsignedDwords'],
    [0x3c, 'pmaxsb', 'maximumSignedBytes'],
    [0x3d, 'pmaxsd', 'maximumSignedDwords'],
    [0x3e, 'pmaxuw', 'maximumUnsignedWords'],
    [0x3f, 'pmaxud', 'maximumUnsignedDwords'],
    [0x40, 'pmulld', 'multiplyLowDwords'],
  ];
  for (const [opcode, mnemonic, operation, feature] of SSE41) map[opcode] = xmmLanes(mnemonic, operation, feature);
  map[0x2a] = mandatory({ operandSize: entry('movntdqa', 'Vdq,Mdq', 'sseMove', { feature: 'sse4_1', flags: A | M }) });
  map[0x41] = mandatory({ operandSize: entry('phminposuw', 'Vdq,Wdq', 'simdSpecial', { sub: SimdSpecial.minimumPosition, feature: 'sse4_1', flags: A }) });
  // F2 0F 38 F0/F1 is CRC32 beside MOVBE (no prefix or 66); a 66 with F2 sizes CRC32's source.
  const movbe = map[0xf0];
  const movbeStore = map[0xf1];
  if (movbe?.kind === 'prefix' && movbeStore?.kind === 'prefix') {
    map[0xf0] = { ...movbe, repeatNot: entry('crc32', 'Gy,Eb', 'crc32', { sub: 0, feature: 'sse4_2' }) };
    map[0xf1] = { ...movbeStore, repeatNot: crc32Word() };
  }
}

/** The SSSE3, SSE4.1 and SSE4.2 integer instructions of the 0F 3A map (all take an Ib; SDM vol. 2, table A-5). */
export function addSimdInteger3A(map: Array<Slot | undefined>): void {
  const sse41 = (slot: Slot): Slot => mandatory({ operandSize: slot });
  map[0x0e] = sse41(entry('pblendw', 'Vdq,Wdq,Ib', 'simdSpecial', { sub: SimdSpecial.blendWords, feature: 'sse4_1', flags: A }));
  map[0x0f] = mandatory({
    none: entry('palignr', 'Pq,Qq,Ib', 'simdShuffle', { sub: SimdShuffle.alignRight | MMX_FORM, feature: 'ssse3' }),
    operandSize: entry('palignr', 'Vdq,Wdq,Ib', 'simdShuffle', { sub: SimdShuffle.alignRight, feature: 'ssse3', flags: A }),
  });
  map[0x14] = sse41(byMod(entry('pextrb', 'Mb,Vdq,Ib', 'simdExtract', { sub: 1, feature: 'sse4_1', flags: M }), entry('pextrb', 'Ed,Vdq,Ib', 'simdExtract', { sub: 1, feature: 'sse4_1' })));
  map[0x15] = sse41(byMod(entry('pextrw', 'Mw,Vdq,Ib', 'simdExtract', { sub: 2, feature: 'sse4_1', flags: M }), entry('pextrw', 'Ed,Vdq,Ib', 'simdExtract', { sub: 2, feature: 'sse4_1' })));
  map[0x16] = sse41(entry('pextrd', 'Ey,Vdq,Ib', 'simdExtract', { sub: 4, feature: 'sse4_1' }));
  map[0x20] = sse41(byMod(entry('pinsrb', 'Vdq,Mb,Ib', 'simdInsert', { sub: 1, feature: 'sse4_1', flags: M }), entry('pinsrb', 'Vdq,Ed,Ib', 'simdInsert', { sub: 1, feature: 'sse4_1' })));
  map[0x22] = sse41(entry('pinsrd', 'Vdq,Ey,Ib', 'simdInsert', { sub: 4, feature: 'sse4_1' }));
  map[0x42] = sse41(entry('mpsadbw', 'Vdq,Wdq,Ib', 'simdSpecial', { sub: SimdSpecial.multipleSumAbsoluteDifferences, feature: 'sse4_1', flags: A }));
  // PCMPESTRM, PCMPESTRI, PCMPISTRM, PCMPISTRI: `sub` bit 0 = index result, bit 1 = implicit lengths. No alignment check.
  const NAMES = ['pcmpestrm', 'pcmpestri', 'pcmpistrm', 'pcmpistri'];
  NAMES.forEach((name, index) => {
    map[0x60 + index] = mandatory({ operandSize: entry(name, 'Vdq,Wdq,Ib', 'stringCompare', { sub: index, feature: 'sse4_2' }) });
  });
}
