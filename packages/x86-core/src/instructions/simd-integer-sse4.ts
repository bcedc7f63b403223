import type { CpuCore as Cpu } from '../cpu-core.js';
import { type Instruction, OperandKind } from '../decoder/instruction.js';
import { MMX_FORM, SimdSpecial } from '../decoder/table-simd-integer.js';
import { crc32cUpdate } from '../simd/crc32c.js';
import { byteSignMask } from '../simd/integer-lanes.js';
import { blendBytes, blendWords, extendLanes, minimumPosition, multipleSumAbsoluteDifferences, testFlags } from '../simd/integer-shuffle.js';
import {
  explicitLength, implicitLength, stringCompareFlags, stringCompareIndex, stringCompareMask, stringCompareMaskVector,
} from '../simd/string-compare.js';
import type { SimdValue } from '../simd/simd-value.js';
import { Flag, Seg } from '../state/registers.js';
import { memoryLinear, readAddressRegister, readValue, wrapAddress } from './operands.js';
import { enterSimdInteger, loadRegister, loadSource, storeRegister } from './simd-integer.js';
import { enterSse } from './simd-support.js';

/*
 * The integer SIMD instructions that move single elements, take XMM0 or set
 * flags: PINSR*, PEXTR*, PMOVMSKB, MASKMOVQ/MASKMOVDQU, the SSE4.1 blends,
 * PTEST, PMOVSX/PMOVZX, PHMINPOSUW, MPSADBW, and SSE4.2's string compares and
 * CRC32 (Intel SDM vol. 2).
 */

const ARITHMETIC_FLAGS = Flag.CF | Flag.PF | Flag.AF | Flag.ZF | Flag.SF | Flag.OF;

/** Bytes of the element PINSRx and PEXTRx move: `sub` 1, 2, or 4 (8 with REX.W: PINSRQ/PEXTRQ). */
function elementBytes(instruction: Instruction): number {
  const bytes = instruction.sub & 0xf;
  return bytes === 4 && instruction.operandSize === 8 ? 8 : bytes;
}

/** Writes element `index` of `bytes` bytes of `value` from `low` (and `high` for 8 bytes). */
function setElement(value: SimdValue, bytes: number, index: number, low: number, high: number): void {
  switch (bytes) {
    case 1: value.bytes[index] = low; return;
    case 2: value.words[index] = low; return;
    case 4: value.dwords[index] = low; return;
    default:
      value.dwords[2 * index] = low;
      value.dwords[2 * index + 1] = high;
  }
}

/** PINSRW (MMX and XMM), PINSRB, PINSRD, PINSRQ: a general register or memory element into the lane the immediate selects. */
export function simdInsert(cpu: Cpu, instruction: Instruction): void {
  const mmx = (instruction.sub & MMX_FORM) !== 0;
  const length = enterSimdInteger(cpu, mmx);
  const bytes = elementBytes(instruction);
  const linear = instruction.kind1 === OperandKind.Memory ? memoryLinear(cpu, instruction, bytes, false) : 0;
  // A register source is read whole (PINSRB/PINSRW use its low byte or word).
  const low = readValue(cpu, instruction, instruction.kind1, instruction.register1, bytes === 8 ? 8 : instruction.kind1 === OperandKind.Memory ? bytes : 4, linear);
  const high = bytes === 8 ? cpu.valueHigh : 0;
  const value = cpu.sse.vectors.destination;
  loadRegister(cpu, instruction.register0, value, mmx);
  setElement(value, bytes, instruction.immediate & (length / bytes - 1), low, high);
  storeRegister(cpu, instruction.register0, value, mmx);
}

/** PMOVMSKB (`sub` 0), PEXTRW (MMX and XMM), PEXTRB, PEXTRD, PEXTRQ into a general register or memory. */
export function simdExtract(cpu: Cpu, instruction: Instruction): void {
  const mmx = (instruction.sub & MMX_FORM) !== 0;
  const length = enterSimdInteger(cpu, mmx);
  const value = cpu.sse.vectors.source;
  loadRegister(cpu, instruction.register1, value, mmx);
  const bytes = elementBytes(instruction);
  if (bytes === 0) {
    cpu.writeRegister(instruction.register0, 4, byteSignMask(value, length), 0);
    return;
  }
  const index = instruction.immediate & (length / bytes - 1);
  let low: number;
  let high = 0;
  switch (bytes) {
    case 1: low = value.bytes[index]!; break;
    case 2: low = value.words[index]!; break;
    case 4: low = value.dwords[index]! | 0; break;
    default:
      low = value.dwords[2 * index]! | 0;
      high = value.dwords[2 * index + 1]! | 0;
  }
  if (instruction.kind0 === OperandKind.Memory) cpu.writeLinear(memoryLinear(cpu, instruction, bytes, true), bytes, low, high);
  // Register destinations are written whole: the element zero-extended to 32 (or 64) bits.
  else cpu.writeRegister(instruction.register0, bytes === 8 ? 8 : 4, low, high);
}

/**
 * MASKMOVQ / MASKMOVDQU: the bytes of operand 0 whose mask byte (operand 1)
 * has its top bit set are stored at DS:rDI (segment override allowed). The
 * whole operand's span is checked first so a fault stores nothing.
 */
export function maskedMove(cpu: Cpu, instruction: Instruction): void {
  const mmx = (instruction.sub & MMX_FORM) !== 0;
  const length = enterSimdInteger(cpu, mmx);
  const { source: data, mask } = cpu.sse.vectors;
  loadRegister(cpu, instruction.register0, data, mmx);
  loadRegister(cpu, instruction.register1, mask, mmx);
  let any = 0;
  for (let i = 0; i < length; i++) any |= mask.bytes[i]!;
  if ((any & 0x80) === 0) return;
  const segment = instruction.segmentOverride >= 0 ? instruction.segmentOverride : Seg.DS;
  const addressSize = instruction.addressSize;
  const offset = readAddressRegister(cpu, 7 /* rDI */, addressSize);
  cpu.mmu.probeWrite(cpu.linear(segment, offset, length, true), length);
  for (let i = 0; i < length; i++) {
    if ((mask.bytes[i]! & 0x80) !== 0) cpu.writeLinear(cpu.linear(segment, wrapAddress(offset + i, addressSize), 1, true), 1, data.bytes[i]!, 0);
  }
}

/** PBLENDVB, PBLENDW, PTEST, PHMINPOSUW and MPSADBW (see `SimdSpecial`). */
export function simdSpecial(cpu: Cpu, instruction: Instruction): void {
  enterSse(cpu);
  const { source, destination, result, mask } = cpu.sse.vectors;
  loadSource(cpu, instruction, source, false, 16);
  loadRegister(cpu, instruction.register0, destination, false);
  const control = instruction.immediate & 0xff;
  switch (instruction.sub) {
    case SimdSpecial.blendVariableBytes:
      loadRegister(cpu, 0, mask, false);
      blendBytes(result, destination, source, mask);
      break;
    case SimdSpecial.blendWords: blendWords(result, destination, source, control); break;
    case SimdSpecial.minimumPosition: minimumPosition(result, source); break;
    case SimdSpecial.multipleSumAbsoluteDifferences: multipleSumAbsoluteDifferences(result, destination, source, control); break;
    default:
      // PTEST sets ZF and CF and clears the other arithmetic flags; no register changes.
      cpu.flags.setAll((cpu.flags.get() & ~ARITHMETIC_FLAGS) | testFlags(destination, source));
      return;
  }
  storeRegister(cpu, instruction.register0, result, false);
}

/** PMOVSXxx and PMOVZXxx: `sub` = source lane bytes | result lane bytes << 4 | signed << 8; the memory source is 16 × from / to bytes. */
export function simdExtend(cpu: Cpu, instruction: Instruction): void {
  enterSse(cpu);
  const sub = instruction.sub;
  const from = sub & 0xf;
  const to = (sub >>> 4) & 0xf;
  const { source, result } = cpu.sse.vectors;
  loadSource(cpu, instruction, source, false, (16 * from) / to);
  extendLanes(result, source, from, to, (sub & 0x100) !== 0);
  storeRegister(cpu, instruction.register0, result, false);
}

/**
 * PCMPESTRM, PCMPESTRI, PCMPISTRM, PCMPISTRI (`sub` bit 0: index result,
 * bit 1: implicit lengths). Explicit lengths come from EAX/EDX (RAX/RDX with
 * REX.W); the index goes to ECX, the mask to XMM0.
 */
export function stringCompare(cpu: Cpu, instruction: Instruction): void {
  enterSse(cpu);
  const { source, destination, result } = cpu.sse.vectors;
  loadSource(cpu, instruction, source, false, 16);
  loadRegister(cpu, instruction.register0, destination, false);
  const control = instruction.immediate & 0xff;
  const sub = instruction.sub;
  let lengthA: number;
  let lengthB: number;
  if ((sub & 2) !== 0) {
    lengthA = implicitLength(destination, control);
    lengthB = implicitLength(source, control);
  } else {
    const wide = instruction.operandSize === 8;
    const rax = cpu.low[0]!;
    const rdx = cpu.low[2]!;
    lengthA = explicitLength(rax, wide ? cpu.high[0]! : rax >> 31, control);
    lengthB = explicitLength(rdx, wide ? cpu.high[2]! : rdx >> 31, control);
  }
  const mask = stringCompareMask(destination, source, control, lengthA, lengthB);
  if ((sub & 1) !== 0) cpu.writeRegister(1 /* ECX */, 4, stringCompareIndex(mask, control), 0);
  else {
    stringCompareMaskVector(result, mask, control);
    storeRegister(cpu, 0, result, false);
  }
  cpu.flags.setAll((cpu.flags.get() & ~ARITHMETIC_FLAGS) | stringCompareFlags(mask, control, lengthA, lengthB));
}

/** CRC32 r32/r64, r/m8 (`sub` 0) or r/m16/32/64 (`sub` 1): the Castagnoli CRC of the source folded into the destination's low 32 bits. */
export function crc32(cpu: Cpu, instruction: Instruction): void {
  const size = instruction.sub === 0 ? 1 : instruction.operandSize;
  const linear = instruction.kind1 === OperandKind.Memory ? memoryLinear(cpu, instruction, size, false) : 0;
  const low = readValue(cpu, instruction, instruction.kind1, instruction.register1, size, linear);
  let crc = crc32cUpdate(cpu.low[instruction.register0]!, low, size === 8 ? 4 : size);
  if (size === 8) crc = crc32cUpdate(crc, cpu.valueHigh, 4);
  cpu.writeRegister(instruction.register0, 4, crc | 0, 0);
}
