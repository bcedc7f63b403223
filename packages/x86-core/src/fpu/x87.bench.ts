import type { BenchmarkReport } from '@tsvirt/interfaces/testing';
import { assemble } from '../testing/assemble.js';
import { createFlatMachine, TEST_CODE_ADDRESS } from '../testing/flat-machine.js';

/*
 * Guest floating-point throughput: a dot product and a degree-8 Horner
 * polynomial over 256 doubles, in x87 code (32-bit flat mode), counted in
 * floating-point operations (one per add or multiply).
 */

const POINTS = 256;
const DEGREE = 8;
const A = 0x200000;
const B = A + POINTS * 8;
const C = B + POINTS * 8;
const COEFFICIENTS = C + POINTS * 8;
/** Adds and multiplies per outer iteration: the dot product and the polynomial. */
const FLOPS_PER_ITERATION = POINTS * 2 + POINTS * DEGREE * 2;

function x87Workload(iterations: number): string {
  const horner = Array.from({ length: DEGREE }, (_, index) => `    fmul st0, st1\n    fadd qword [${COEFFICIENTS + (DEGREE - 1 - index) * 8}]`).join('\n');
  return `bits 32
org ${TEST_CODE_ADDRESS}
    finit
    mov ebp, ${iterations}
outer:
    fldz
    mov esi, ${A}
    mov edi, ${B}
    mov ecx, ${POINTS}
.dot:
    fld qword [esi]
    fmul qword [edi]
    faddp st1, st0
    add esi, 8
    add edi, 8
    dec ecx
    jnz .dot
    fstp qword [${C}]
    mov esi, ${A}
    mov ecx, ${POINTS}
.poly:
    fld qword [esi]
    fld qword [${COEFFICIENTS + DEGREE * 8}]
${horner}
    fstp qword [esi + ${C - A}]
    fstp st0
    add esi, 8
    dec ecx
    jnz .poly
    dec ebp
    jnz outer
    hlt
`;
}

// SSE2: once ADDSD/MULSD decode (the SSE work), an `sse2Workload` with the same
// dot product and polynomial in MOVSD/MULSD/ADDSD goes here and gets a row in
// the report below.

function measure(source: string, iterations: number): { seconds: number; mflops: number } {
  const machine = createFlatMachine({ bits: 32, memorySize: 32 * 1024 * 1024 });
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
  return { seconds: best, mflops: (iterations * FLOPS_PER_ITERATION) / best / 1e6 };
}

export default async function bench(): Promise<BenchmarkReport[]> {
  const iterations = 400;
  const x87 = measure(x87Workload(iterations), iterations);
  return [
    {
      title: 'x86-core interpreter: guest MFLOPS',
      description: `Dot product and degree-${DEGREE} Horner polynomial over ${POINTS} doubles (${FLOPS_PER_ITERATION} adds and multiplies per iteration, ${iterations} iterations), assembled with NASM, in flat 32-bit mode; best of three runs after a warm-up.`,
      columns: ['workload', 'guest flops', 'seconds', 'MFLOPS'],
      rows: [['x87 (FLD/FMUL/FADD m64, 80-bit soft-float)', iterations * FLOPS_PER_ITERATION, x87.seconds, x87.mflops]],
      notes: ['An SSE2 (MULSD/ADDSD) row follows once the SSE instructions decode.'],
    },
  ];
}
