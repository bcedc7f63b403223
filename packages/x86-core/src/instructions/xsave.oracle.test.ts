import { readFileSync } from 'node:fs';
import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { assemble, nasmAvailable } from '../testing/assemble.js';
import { InterpreterCaseRunner } from '../testing/interpreter-case.js';
import type { HostOracle, OracleCase } from '../testing/oracle/index.js';
import { oracleForTests } from '../testing/oracle/oracle-for-tests.js';
import { mxcsrValue, simdCase, simdDifference, xmmImage } from '../testing/simd-oracle.js';

/*
 * XGETBV, XSAVE/XSAVEOPT and XRSTOR in user mode against the host CPU (Linux
 * has set CR4.OSXSAVE; the interpreter runs the cases with XCR0 = 3, as a
 * guest kernel sets it). The requested-feature bitmap stays within x87 and
 * SSE (EAX 0–3, EDX 0), which the host's XCR0 also enables, so both sides
 * see the same RFBM. Compared: the legacy region (FCW, FSW, the abridged tag,
 * MXCSR, ST(0)–ST(7), XMM0–XMM15), XSTATE_BV, the XMM registers, MXCSR and
 * the exception. FOP, FIP/FCS, FDP/FDS (AMD saves them only with an exception
 * pending) and MXCSR_MASK (the host may support more MXCSR bits) are cleared
 * by the case's code before it ends.
 */

const hostHasXsave = (() => {
  try {
    return /\bxsave\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return false;
  }
})();
const host = await oracleForTests({ suite: 'the XSAVE host-oracle tests', missing: hostHasXsave ? undefined : 'the host CPU lacks XSAVE' });
const runner = new InterpreterCaseRunner('tsvirt-max');

const AREA = 0x400;
const IMAGE = 0x800;
/** FNINIT leaves the physical registers as they were: zero them all first, so both sides start alike. */
const CLEAN_X87 = `fninit\n${'fldz\n'.repeat(8)}fninit`;

function clearUncompared(base: number, pointer: string): string {
  return [`mov word [${pointer}+${base + 6}], 0`, `mov dword [${pointer}+${base + 8}], 0`, `mov dword [${pointer}+${base + 12}], 0`, `mov dword [${pointer}+${base + 16}], 0`, `mov dword [${pointer}+${base + 20}], 0`, `mov dword [${pointer}+${base + 28}], 0`].join('\n');
}

function saveTemplate(instruction: string, bits: 64 | 32): string {
  const pointer = bits === 64 ? 'rbx' : 'ebx';
  return [CLEAN_X87, `fldcw [${pointer}+0x1f0]`, `fld tword [${pointer}+0x100]`, `fld tword [${pointer}+0x110]`, `fld tword [${pointer}+0x120]`, 'xor edx, edx',
    `${instruction} [${pointer}+${AREA}]`, clearUncompared(AREA, pointer), 'fninit'].join('\n');
}

function restoreTemplate(instruction: string): string {
  return [CLEAN_X87, 'xor edx, edx', `${instruction} [rbx+${AREA}]`, `fxsave64 [rbx+${IMAGE}]`, clearUncompared(IMAGE, 'rbx'), 'fninit'].join('\n');
}

const word16 = fc.integer({ min: 0, max: 0xffff });
/** FCW with every exception masked (nothing can become pending), any precision and rounding control. */
const controlWord = word16.map((value) => (value & 0x0f00) | 0x7f);
/** 80-bit values: random bits or the x87 oracle's kind of specials. */
const extended = fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }), fc.oneof(word16, fc.constantFrom(0, 0x7fff, 0xffff, 0x3fff, 0x8000)));

const saveCase = (code: Uint8Array, bits: 64 | 32) => fc
  .record({ xmm: xmmImage(16), mxcsr: mxcsrValue, control: controlWord, values: fc.array(extended, { minLength: 3, maxLength: 3 }), requested: fc.integer({ min: 0, max: 3 }), stateBitmap: fc.integer({ min: 0, max: 255 }) })
  .map(({ xmm, mxcsr, control, values, requested, stateBitmap }) => {
    const memory = new Uint8Array(AREA + 0x240);
    const view = new DataView(memory.buffer);
    values.forEach(([low, high, signExponent], index) => {
      view.setUint32(0x100 + index * 16, low, true);
      view.setUint32(0x104 + index * 16, high, true);
      view.setUint16(0x108 + index * 16, signExponent, true);
    });
    view.setUint16(0x1f0, control, true);
    // XSTATE_BV bits outside RFBM must survive.
    memory[AREA + 512] = stateBitmap;
    return simdCase({ code, xmm, mxcsr, memory, bits, registers: { 0: BigInt(requested) } });
  });

type HeaderKind = 'clean' | 'reserved 24–63' | 'XCOMP_BV' | 'bytes 16–23';
const restoreCase = (code: Uint8Array) => fc
  .record({
    xmm: xmmImage(16),
    mxcsr: mxcsrValue,
    area: fc.uint8Array({ minLength: 576, maxLength: 576 }),
    control: controlWord,
    status: word16,
    imageMxcsr: fc.oneof({ weight: 9, arbitrary: mxcsrValue }, { weight: 1, arbitrary: mxcsrValue.map((value) => (value | 0x80000000) >>> 0) }),
    requested: fc.integer({ min: 0, max: 3 }),
    stateBitmap: fc.integer({ min: 0, max: 3 }),
    header: fc.constantFrom<HeaderKind>('clean', 'clean', 'clean', 'clean', 'clean', 'clean', 'reserved 24–63', 'XCOMP_BV', 'bytes 16–23'),
  })
  .map(({ xmm, mxcsr, area, control, status, imageMxcsr, requested, stateBitmap, header }) => {
    const memory = new Uint8Array(IMAGE + 512);
    memory.set(area, AREA);
    const view = new DataView(memory.buffer);
    view.setUint16(AREA, control, true);
    // No ES/B: with every exception masked nothing is pending.
    view.setUint16(AREA + 2, status & 0x7f7f, true);
    memory[AREA + 5] = 0;
    view.setUint32(AREA + 24, imageMxcsr, true);
    memory.fill(0, AREA + 512, AREA + 576);
    view.setUint32(AREA + 512, stateBitmap, true);
    if (header === 'reserved 24–63') memory.set(area.subarray(0, 40), AREA + 512 + 24);
    // XCOMP_BV bit 63 stays clear: with it set the host (which has XSAVEC) would take the compacted form.
    if (header === 'XCOMP_BV') view.setUint32(AREA + 520, (area[0]! | 1) << (area[1]! & 31), true);
    if (header === 'bytes 16–23') memory[AREA + 528 + (area[2]! & 7)] = area[3]! | 1;
    return { oracleCase: simdCase({ code, xmm, mxcsr, memory, registers: { 0: BigInt(requested) } }), label: `RFBM ${requested} XSTATE_BV ${stateBitmap} header ${header} mxcsr ${imageMxcsr.toString(16)}` };
  });

function compare(batch: OracleCase[], results: Awaited<ReturnType<HostOracle['run']>>, labels: string[]): void {
  batch.forEach((oracleCase, index) => {
    expect(simdDifference(results[index]!, runner.run(oracleCase)), labels[index]).toBeUndefined();
  });
}

describe.skipIf(host.skip)('XSAVE feature set on the host CPU', () => {
  const systemCodes = nasmAvailable() ? ['xor ecx, ecx\nxgetbv\nand eax, 3', 'mov ecx, 2\nxgetbv'].map((source) => assemble(`bits 64\n${source}`)) : [];
  // XSETBV is not here: the interpreter runs these cases at CPL 0 (its #GP at CPL 3 is a unit test).
  test('XGETBV reads XCR0 bits 0–1 as 1 (x87 and SSE enabled); XCR 2 raises #GP', async () => {
    const batch = systemCodes.map((code) => simdCase({ code, xmm: new Uint8Array(256) }));
    const results = await host.require().run(batch);
    compare(batch, results, ['xgetbv', 'xgetbv ecx=2']);
    expect(results[0]!.registers[0]).toBe(3n);
  }, 60_000);

  const saves64: Array<[string, 64 | 32]> = [['xsave', 64], ['xsave64', 64], ['xsaveopt', 64], ['xsaveopt64', 64]];
  const saves: Array<[string, 64 | 32]> = host.skip32 ? saves64 : [...saves64, ['xsave', 32], ['xsaveopt', 32]];
  const saveCodes = nasmAvailable() ? saves.map(([instruction, bits]) => assemble(`bits ${bits}\n${saveTemplate(instruction, bits)}`)) : [];
  const saveBatch = fc.array(fc.integer({ min: 0, max: saves.length - 1 }).chain((index) => saveCase(saveCodes[index] ?? new Uint8Array(0), saves[index]![1]).map((oracleCase) => ({ oracleCase, label: saves[index]!.join(' ') }))), { minLength: 150, maxLength: 150 });
  test.prop([saveBatch], { numRuns: 2, endOnFailure: true })('XSAVE and XSAVEOPT write the legacy region and XSTATE_BV as the host does', async (batch) => {
    const cases = batch.map((entry) => entry.oracleCase);
    compare(cases, await host.require().run(cases), batch.map((entry) => `${entry.label} RFBM ${entry.oracleCase.registers[0]}`));
  }, 60_000);

  const restores = ['xrstor', 'xrstor64'];
  const restoreCodes = nasmAvailable() ? restores.map((instruction) => assemble(`bits 64\n${restoreTemplate(instruction)}`)) : [];
  const restoreBatch = fc.array(fc.integer({ min: 0, max: 1 }).chain((index) => restoreCase(restoreCodes[index] ?? new Uint8Array(0)).map((entry) => ({ ...entry, label: `${restores[index]} ${entry.label}` }))), { minLength: 150, maxLength: 150 });
  test.prop([restoreBatch], { numRuns: 3, endOnFailure: true })('XRSTOR loads, initialises and faults as the host does', async (batch) => {
    const cases = batch.map((entry) => entry.oracleCase);
    compare(cases, await host.require().run(cases), batch.map((entry) => entry.label));
  }, 60_000);
});
