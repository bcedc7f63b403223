import { createSseScratch, Mxcsr, SoftFloatResult, type SseScratch } from './softfloat/index.js';
import { SimdScratch } from '../simd/simd-value.js';

/** Lane index (in `SseState.lanes`) of the scratch slot a memory source operand is read into. */
export const MEMORY_LANES = 64;
/** Lane index of the scratch slot a packed result is built in before it is committed. */
export const RESULT_LANES = 68;
/** Lane index of a second scratch slot (a copied source when source and destination overlap). */
export const COPY_LANES = 72;

/**
 * The MXCSR bits software may set, as FXSAVE reports them in MXCSR_MASK: the
 * flags, DAZ, the masks, RC and FTZ (bits 0–15). Writing any other bit raises #GP(0).
 */
export const MXCSR_MASK = 0xffff;

/** XCR0 bits this core supports: x87 (0) and SSE (1); no AVX. */
export const XCR0_SUPPORTED = 0b11;

/**
 * The SSE register file: XMM0–XMM15 as 32-bit lanes (`xmm[register * 4 + lane]`,
 * lane 0 holds bits 31:0) and MXCSR, plus the per-CPU scratch the SIMD
 * handlers use so that nothing is allocated while executing.
 */
export class SseState {
  /** XMM0–XMM15 (lanes 0–63) followed by the scratch slots at MEMORY_LANES, RESULT_LANES and COPY_LANES. */
  readonly lanes = new Uint32Array(76);
  /** XMM0–XMM15 only: a view of the first 64 lanes. */
  readonly xmm = this.lanes.subarray(0, 64);
  mxcsr: number = Mxcsr.default;
  /** XCR0, the XSAVE feature set's enabled state components: 1 (x87 only) at power-up; INIT keeps it. */
  xcr0 = 1;
  /** Softfloat result slot and widened-operand scratch for the SSE arithmetic. */
  readonly result = new SoftFloatResult();
  readonly scratch: SseScratch = createSseScratch();
  /** Lane-typed operand and result values for the integer SIMD handlers (MMX and XMM). */
  readonly vectors = new SimdScratch();
  /** FXRSTOR reads the XMM image here before changing anything. */
  readonly restoreScratch = new Uint32Array(64);

  /** RESET (the CPU does not call this at INIT): XMM registers zero, MXCSR 0x1F80, XCR0 1 (SDM vol. 3, table 9-1). */
  reset(): void {
    this.lanes.fill(0);
    this.mxcsr = Mxcsr.default;
    this.xcr0 = 1;
  }
}
