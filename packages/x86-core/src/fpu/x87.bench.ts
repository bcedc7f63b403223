import { guestAddress } from '@tsvirt/interfaces';
import type { BenchmarkReport } from '@tsvirt/interfaces/testing';
import { assemble } from '../testing/assemble.js';
import { Cr4 } from '../state/registers.js';
import { createFlatMachine, TEST_CODE_ADDRESS } from '../testing/flat-machine.js';

/*
 * Guest floating-point throughput: a dot product and a degree-8 Horner
 * polynomial over 256 doubles, in x87 code and in scalar SSE2 code (32-bit
 * flat mode), counted in floating-point operations (one per add or multiply).
 */

const POINTS = 256;
const DEGREE = 8;
const A = 0x200000;
const B = A + POINTS * 8;
const C = B + POINTS * 8;
const COEFFICIENTS = C + POINTS * 8;
/** Adds and multiplies per outer iteration: the dot product and the polynomial. */
const FLOPS_PER_ITERATION = POINTS * 2 + POINTS * DEGREE * 2;

/** The instructions one workload uses for each step of the shared loop structure. */
interface WorkloadSteps {
  readonly setup: string;
  readonly dotStart: string;
  /** Adds [esi] × [edi] to the running dot product. */
  readonly dotStep: string;
  readonly dotStore: string;
  /** Loads x = [esi] and the leading coefficient. */
  readonly polyStart: string;
  /** acc = acc × x + coefficient at `address`. */
  readonly hornerStep: (address: number) => string;
  /** Stores acc to [esi + (C - A)] and cleans up. */
  readonly polyStore: string;
}

/** The dot product and the Horner polynomial, `iterations` times, with the given instructions. */
function workload(iterations: number, steps: WorkloadSteps): string {
  const horner = Array.from({ length: DEGREE }, (_, index) => steps.hornerStep(COEFFICIENTS + (DEGREE - 1 - index) * 8)).join('\n');
  return `bits 32
org ${TEST_CODE_ADDRESS}
${steps.setup}
    mov ebp, ${iterations}
outer:
${steps.dotStart}
    mov esi, ${A}
    mov edi, ${B}
    mov ecx, ${POINTS}
.dot:
${steps.dotStep}
    add esi, 8
    add edi, 8
    dec ecx
    jnz .dot
${steps.dotStore}
    mov esi, ${A}
    mov ecx, ${POINTS}
.poly:
${steps.polyStart}
${horner}
${steps.polyStore}
    add esi, 8
    dec ecx
    jnz .poly
    dec ebp
    jnz outer
    hlt
`;
}

const X87_STEPS: WorkloadSteps = {
  setup: '    finit',
  dotStart: '    fldz',
  dotStep: '    fld qword [esi]\n    fmul qword [edi]\n    faddp st1, st0',
  dotStore: `    fstp qword [${C}]`,
  polyStart: `    fld qword [esi]\n    fld qword [${COEFFICIENTS + DEGREE * 8}]`,
  hornerStep: (address) => `    fmul st0, st1\n    fadd qword [${address}]`,
  polyStore: `    fstp qword [esi + ${C - A}]\n    fstp st0`,
};

/** The same work in scalar SSE2 (rounded to double at every step, where the x87 keeps 64-bit significands). */
const SSE2_STEPS: WorkloadSteps = {
  setup: '',
  dotStart: '    xorpd xmm0, xmm0',
  dotStep: '    movsd xmm1, [esi]\n    mulsd xmm1, [edi]\n    addsd xmm0, xmm1',
  dotStore: `    movsd [${C}], xmm0`,
  polyStart: `    movsd xmm2, [esi]\n    movsd xmm1, [${COEFFICIENTS + DEGREE * 8}]`,
  hornerStep: (address) => `    mulsd xmm1, xmm2\n    addsd xmm1, [${address}]`,
  polyStore: `    movsd [esi + ${C - A}], xmm1`,
};

/** A workload that computes the wrong thing measures nothing: the stored polynomial values must match. */
function checkPolynomial(machine: ReturnType<typeof createFlatMachine>, data: Float64Array): void {
  const stored = new Uint8Array(POINTS * 8);
  machine.memory.read(guestAddress(C), stored);
  const values = new Float64Array(stored.buffer);
  for (let index = 0; index < POINTS; index++) {
    let expected = data[POINTS * 3 + DEGREE]!;
    for (let power = DEGREE - 1; power >= 0; power--) expected = expected * data[index]! + data[POINTS * 3 + power]!;
    if (Math.abs(values[index]! - expected) > 1e-12 * Math.abs(expected)) throw new Error(`polynomial at point ${index}: ${values[index]} instead of ${expected}`);
  }
}

function measure(source: string, iterations: number): { seconds: number; mflops: number } {
  const machine = createFlatMachine({ bits: 32, memorySize: 32 * 1024 * 1024 });
  // SSE enabled as an operating system leaves it (the x87 workload does not care).
  machine.cpu.setControlRegister(4, machine.cpu.getControlRegister(4) | BigInt(Cr4.OSFXSR));
  const data = new Float64Array(POINTS * 3 + DEGREE + 1);
  for (let index = 0; index < POINTS; index++) {
    data[index] = index / POINTS;
    data[POINTS + index] = 1 - index / POINTS;
  }
  for (let index = 0; index <= DEGREE; index++) data[POINTS * 3 + index] = 1 / (index + 1);
  machine.load(A, new Uint8Array(data.buffer));
  machine.load(TEST_CODE_ADDRESS, assemble(source));
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 4; round++) {
    // The first round warms up the JIT and the decoded-instruction cache.
    machine.cpu.setRip(TEST_CODE_ADDRESS);
    const started = performance.now();
    const result = machine.cpu.run(Number.MAX_SAFE_INTEGER);
    const seconds = (performance.now() - started) / 1000;
    if (result.reason !== 'halted') throw new Error(`workload stopped early: ${result.reason}`);
    if (round > 0) best = Math.min(best, seconds);
  }
  checkPolynomial(machine, data);
  return { seconds: best, mflops: (iterations * FLOPS_PER_ITERATION) / best / 1e6 };
}

export default async function bench(): Promise<BenchmarkReport[]> {
  const iterations = 400;
  const x87 = measure(workload(iterations, X87_STEPS), iterations);
  const sse2 = measure(workload(iterations, SSE2_STEPS), iterations);
  return [
    {
      title: 'x86-core interpreter: guest MFLOPS',
      description: `Dot product and degree-${DEGREE} Horner polynomial over ${POINTS} doubles (${FLOPS_PER_ITERATION} adds and multiplies per iteration, ${iterations} iterations), assembled with NASM, in flat 32-bit mode; best of three runs after a warm-up.`,
      columns: ['workload', 'guest flops', 'seconds', 'MFLOPS'],
      rows: [
        ['x87 (FLD/FMUL/FADD m64, 80-bit soft-float)', iterations * FLOPS_PER_ITERATION, x87.seconds, x87.mflops],
        ['SSE2 (MOVSD/MULSD/ADDSD, 64-bit soft-float under MXCSR)', iterations * FLOPS_PER_ITERATION, sse2.seconds, sse2.mflops],
      ],
    },
  ];
}
