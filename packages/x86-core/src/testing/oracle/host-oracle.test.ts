import { describe, expect, it } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import { HostOracle } from './host-oracle.js';
import { oracleForTests } from './oracle-for-tests.js';
import { oracleCase, registerValue } from './arbitraries.js';
import {
  ARITHMETIC_FLAGS,
  Flag,
  ORACLE_CODE_ADDRESS,
  ORACLE_MEMORY_BASE,
  REGISTER_NAMES_32,
  REGISTER_NAMES_64,
  SETTABLE_FLAGS,
  type OracleCase,
  type OracleResult,
} from './types.js';

const host = await oracleForTests({ suite: 'the host-oracle tests', nasm: false });
const oracle = host.skip ? undefined : host.require();

const base = BigInt(ORACLE_MEMORY_BASE);
const code = ORACLE_CODE_ADDRESS;

type Name64 = (typeof REGISTER_NAMES_64)[number];
type Name32 = (typeof REGISTER_NAMES_32)[number];

function case64(bytes: number[], values: Partial<Record<Name64, bigint>>, extra: Partial<OracleCase> = {}): OracleCase {
  return { bits: 64, code: Uint8Array.from(bytes), registers: REGISTER_NAMES_64.map((name) => values[name] ?? 0n), ...extra };
}

function case32(bytes: number[], values: Partial<Record<Name32, bigint>>, extra: Partial<OracleCase> = {}): OracleCase {
  return { bits: 32, code: Uint8Array.from(bytes), registers: REGISTER_NAMES_32.map((name) => values[name] ?? 0n), ...extra };
}

async function runOne(testCase: OracleCase): Promise<OracleResult> {
  if (oracle === undefined) throw new Error('unreachable: suite is skipped');
  return oracle.runOne(testCase);
}

function reg64(result: OracleResult, name: Name64): bigint {
  return result.registers[REGISTER_NAMES_64.indexOf(name)] ?? -1n;
}

function reg32(result: OracleResult, name: Name32): bigint {
  return result.registers[REGISTER_NAMES_32.indexOf(name)] ?? -1n;
}

function parity(value: bigint): boolean {
  let ones = 0;
  for (let bit = 0n; bit < 8n; bit++) ones += Number((value >> bit) & 1n);
  return ones % 2 === 0;
}

/** Flags of a + b or a - b computed from the definitions in the Intel SDM, independently of any CPU. */
function addSubFlags(a: bigint, b: bigint, width: bigint, subtract: boolean): { result: bigint; flags: number } {
  const mask = (1n << width) - 1n;
  const sign = 1n << (width - 1n);
  const exact = subtract ? a - b : a + b;
  const result = exact & mask;
  const carry = subtract ? a < b : exact > mask;
  const signA = (a & sign) !== 0n;
  const signB = (b & sign) !== 0n;
  const signResult = (result & sign) !== 0n;
  const overflow = subtract ? signA !== signB && signResult !== signA : signA === signB && signResult !== signA;
  let flags = 0;
  if (carry) flags |= Flag.CF;
  if (parity(result)) flags |= Flag.PF;
  if (((a ^ b ^ result) & 0x10n) !== 0n) flags |= Flag.AF;
  if (result === 0n) flags |= Flag.ZF;
  if (signResult) flags |= Flag.SF;
  if (overflow) flags |= Flag.OF;
  return { result, flags };
}

describe.skipIf(oracle === undefined)('HostOracle (64-bit)', () => {
  it('add eax, ebx: 0x7fffffff + 1 sets OF and SF, clears CF and ZF, and zero-extends into rax', async () => {
    const result = await runOne(case64([0x01, 0xd8], { rax: 0xdead_beef_7fff_ffffn, rbx: 1n }, { rflags: Flag.CF }));
    expect(result.fault).toBeUndefined();
    expect(reg64(result, 'rax')).toBe(0x8000_0000n);
    expect(result.rflags & (Flag.OF | Flag.SF | Flag.CF | Flag.ZF)).toBe(Flag.OF | Flag.SF);
    expect(result.rip).toBe(BigInt(code + 2));
  });

  it('keeps the settable input flags through a nop and forces IF on', async () => {
    const result = await runOne(case64([0x90], {}, { rflags: 0xffff_ffff }));
    expect(result.rflags & SETTABLE_FLAGS).toBe(SETTABLE_FLAGS);
    expect(result.rflags & (Flag.IF | Flag.TF)).toBe(Flag.IF);
  });

  it('div by zero faults with #DE (SIGFPE) at the instruction, registers untouched', async () => {
    const result = await runOne(case64([0x48, 0xf7, 0xf3], { rax: 5n, rdx: 7n, rbx: 0n }));
    expect(result.fault).toMatchObject({ kind: 'exception', vector: 0, name: '#DE', signal: 'SIGFPE' });
    expect(result.rip).toBe(BigInt(code));
    expect(reg64(result, 'rax')).toBe(5n);
    expect(reg64(result, 'rdx')).toBe(7n);
  });

  it('bsf of zero sets ZF; of 8 gives 3 and clears ZF', async () => {
    const zero = await runOne(case64([0x0f, 0xbc, 0xc3], { rbx: 0n }));
    expect(zero.rflags & Flag.ZF).toBe(Flag.ZF);
    const eight = await runOne(case64([0x0f, 0xbc, 0xc3], { rbx: 8n }, { rflags: Flag.ZF }));
    expect(eight.rflags & Flag.ZF).toBe(0);
    expect(reg64(eight, 'rax')).toBe(3n);
  });

  it('imul rbx puts the high half in rdx and sets CF/OF only when it is significant', async () => {
    const big = await runOne(case64([0x48, 0xf7, 0xeb], { rax: 1n << 62n, rbx: 4n }));
    expect([reg64(big, 'rdx'), reg64(big, 'rax')]).toEqual([1n, 0n]);
    expect(big.rflags & (Flag.CF | Flag.OF)).toBe(Flag.CF | Flag.OF);
    const negative = await runOne(case64([0x48, 0xf7, 0xeb], { rax: -3n, rbx: 5n }));
    expect([reg64(negative, 'rdx'), reg64(negative, 'rax')]).toEqual([(1n << 64n) - 1n, (1n << 64n) - 15n]);
    expect(negative.rflags & (Flag.CF | Flag.OF)).toBe(0);
  });

  it('a memory write lands in the returned memory', async () => {
    const value = 0x1122_3344_5566_7788n;
    const result = await runOne(case64([0x48, 0x89, 0x43, 0x08], { rax: value, rbx: base }, { memory: new Uint8Array(32) }));
    expect(result.fault).toBeUndefined();
    expect(Array.from(result.memory.subarray(8, 16))).toEqual([0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
    expect(result.memory.subarray(0, 8).every((byte) => byte === 0)).toBe(true);
  });

  it('loads memory the case provides', async () => {
    const memory = Uint8Array.from({ length: 64 }, (_, index) => index);
    const result = await runOne(case64([0x8b, 0x43, 0x10], { rbx: base }, { memory }));
    expect(reg64(result, 'rax')).toBe(0x1312_1110n);
  });

  it('runs push with a chosen RSP and stosb backwards with DF set', async () => {
    const push = await runOne(case64([0x50], { rax: 0xaabbn, rsp: base + 0x100n }, { memory: new Uint8Array(0x100) }));
    expect(reg64(push, 'rsp')).toBe(base + 0xf8n);
    expect(Array.from(push.memory.subarray(0xf8, 0xfb))).toEqual([0xbb, 0xaa, 0]);
    const stos = await runOne(case64([0xaa], { rax: 0x5an, rdi: base + 10n }, { rflags: Flag.DF, memory: new Uint8Array(16) }));
    expect(stos.memory[10]).toBe(0x5a);
    expect(reg64(stos, 'rdi')).toBe(base + 9n);
  });

  it('reports a read past the memory page as #PF with the address', async () => {
    const result = await runOne(case64([0x8b, 0x03], { rbx: base + 4096n }));
    expect(result.fault).toMatchObject({ kind: 'exception', vector: 14, name: '#PF', signal: 'SIGSEGV', address: base + 4096n });
  });

  it('reports ud2 as #UD, hlt as #GP, int3 as #BP after the instruction', async () => {
    if (oracle === undefined) return;
    const [ud2, hlt, int3] = await oracle.run([case64([0x0f, 0x0b], {}), case64([0xf4], {}), case64([0x90, 0xcc], {})]);
    expect(ud2?.fault).toMatchObject({ vector: 6, name: '#UD', signal: 'SIGILL' });
    expect(hlt?.fault).toMatchObject({ vector: 13, name: '#GP', signal: 'SIGSEGV' });
    expect(int3?.fault).toMatchObject({ vector: 3, name: '#BP', signal: 'SIGTRAP' });
    expect(int3?.rip).toBe(BigInt(code + 2));
  });

  it('raises #AC for an unaligned access after the code sets AC, and the next case still runs', async () => {
    if (oracle === undefined) return;
    // push rcx; popfq (rcx = AC | IF | bit 1); mov eax, [rbx + 1]
    const aligned = case64([0x51, 0x9d, 0x8b, 0x43, 0x01], { rcx: 0x4_0202n, rbx: base, rsp: base + 0x800n });
    const [alignment, after] = await oracle.run([aligned, case64([0x01, 0xd8], { rax: 1n, rbx: 2n })]);
    expect(alignment?.fault).toMatchObject({ vector: 17, name: '#AC', signal: 'SIGBUS' });
    expect(alignment?.rip).toBe(BigInt(code + 2));
    expect(after?.fault).toBeUndefined();
    expect(after === undefined ? -1n : reg64(after, 'rax')).toBe(3n);
  });

  it('tells a jump out of the code page apart from a fault in it', async () => {
    const result = await runOne(case64([0xff, 0xe0], { rax: 0n }));
    expect(result.fault?.kind).toBe('outside-code');
  });

  it('survives faults and a harness that exits, and continues with the next cases', async () => {
    if (oracle === undefined) return;
    const add = case64([0x48, 0x01, 0xd8], { rax: 2n, rbx: 3n });
    // mov eax, 60 (exit); syscall: the harness process ends with status 7 in the middle of the batch.
    const exit = case64([0xb8, 0x3c, 0, 0, 0, 0x0f, 0x05], { rdi: 7n });
    const spawnsBefore = oracle.spawnCount;
    const results = await oracle.run([add, case64([0x0f, 0x0b], {}), add, exit, add]);
    expect(results.map((result) => result.fault?.kind)).toEqual([undefined, 'exception', undefined, 'crash', undefined]);
    expect(results[3]?.fault?.detail).toContain('status 7');
    expect(results.filter((result) => result.fault === undefined).map((result) => reg64(result, 'rax'))).toEqual([5n, 5n, 5n]);
    expect(oracle.spawnCount - spawnsBefore).toBe(2);
  });

  it('stops an endless loop with a timeout', async () => {
    const result = await runOne(case64([0xeb, 0xfe], {}));
    expect(result.fault?.kind).toBe('timeout');
  });

  it('rejects malformed cases', async () => {
    if (oracle === undefined) return;
    await expect(oracle.run([{ bits: 64, code: new Uint8Array(1), registers: [0n] }])).rejects.toThrow(/16 registers/);
    await expect(oracle.run([case64(new Array<number>(300).fill(0x90), {})])).rejects.toThrow(/at most 255/);
  });

  it('on a host without 32-bit user mode, refuses 32-bit cases with the reason, and create() asked for both modes is unavailable', async () => {
    if (oracle === undefined) return;
    const both = await HostOracle.create({ requireBits: [64, 32] });
    if (!host.skip32) {
      expect(both).toBeInstanceOf(HostOracle);
      return;
    }
    expect(both).toEqual({ unavailable: expect.stringMatching(/compatibility mode/) });
    await expect(oracle.run([case32([0x90], {})])).rejects.toThrow(/oracle case 0 is 32-bit, but 32-bit code does not run/);
  });

  it('runs a batch of 2,000 cases in one process, each matching the flag definitions', async () => {
    if (oracle === undefined) return;
    const cases = fc.sample(
      fc.tuple(registerValue(64), registerValue(64), fc.boolean()).map(([a, b, subtract]) =>
        case64(subtract ? [0x48, 0x29, 0xd8] : [0x48, 0x01, 0xd8], { rax: a, rbx: b }),
      ),
      { numRuns: 2000, seed: 42 },
    );
    const spawnsBefore = oracle.spawnCount;
    const results = await oracle.run(cases);
    expect(oracle.spawnCount - spawnsBefore).toBe(1);
    expect(results).toHaveLength(2000);
    results.forEach((result, index) => {
      const testCase = cases[index] as OracleCase;
      const [a = 0n, , , b = 0n] = testCase.registers;
      const expected = addSubFlags(a, b, 64n, testCase.code[1] === 0x29);
      expect({ rax: reg64(result, 'rax'), flags: result.rflags & ARITHMETIC_FLAGS }).toEqual({
        rax: expected.result,
        flags: expected.flags,
      });
    });
  });
});

describe.skipIf(host.skip32)('HostOracle (32-bit)', () => {
  it('runs in 32-bit mode: 0x48 is dec eax, not a REX prefix', async () => {
    const result = await runOne(case32([0x48, 0x90], { eax: 0n }));
    expect(result.fault).toBeUndefined();
    expect(reg32(result, 'eax')).toBe(0xffff_ffffn);
    expect(result.rip).toBe(BigInt(code + 2));
  });

  it('add eax, ebx: 0x7fffffff + 1 sets OF and SF, clears CF', async () => {
    const result = await runOne(case32([0x01, 0xd8], { eax: 0x7fff_ffffn, ebx: 1n }, { rflags: Flag.CF }));
    expect(reg32(result, 'eax')).toBe(0x8000_0000n);
    expect(result.rflags & (Flag.OF | Flag.SF | Flag.CF)).toBe(Flag.OF | Flag.SF);
  });

  it('push/pop through a stack in the memory page', async () => {
    const esp = base + 0x100n;
    const result = await runOne(
      case32([0x50, 0x53, 0x59, 0x5a], { eax: 0x1122_3344n, ebx: -0x778899aan, esp }, { memory: new Uint8Array(0x100) }),
    );
    expect(result.fault).toBeUndefined();
    expect([reg32(result, 'ecx'), reg32(result, 'edx'), reg32(result, 'esp')]).toEqual([
      0x8877_6656n,
      0x1122_3344n,
      esp,
    ]);
    expect(Array.from(result.memory.subarray(0xf8, 0x100))).toEqual([0x56, 0x66, 0x77, 0x88, 0x44, 0x33, 0x22, 0x11]);
  });

  it('pusha stores the registers in architectural order, with the original esp', async () => {
    const esp = base + 0x100n;
    const values = { eax: 1n, ecx: 2n, edx: 3n, ebx: 4n, esp, ebp: 6n, esi: 7n, edi: 8n };
    const result = await runOne(case32([0x60], values, { memory: new Uint8Array(0x100) }));
    const view = new DataView(result.memory.buffer, result.memory.byteOffset);
    const stored = Array.from({ length: 8 }, (_, index) => BigInt(view.getUint32(0xe0 + 4 * index, true)));
    expect(stored).toEqual([8n, 7n, 6n, esp, 4n, 3n, 2n, 1n]);
    expect(reg32(result, 'esp')).toBe(esp - 32n);
  });

  it('mul ebx puts the high half in edx', async () => {
    const result = await runOne(case32([0xf7, 0xe3], { eax: 0xffff_ffffn, ebx: 0xffff_ffffn }));
    expect([reg32(result, 'edx'), reg32(result, 'eax')]).toEqual([0xffff_fffen, 1n]);
    expect(result.rflags & (Flag.CF | Flag.OF)).toBe(Flag.CF | Flag.OF);
  });

  it('div overflow and a read past the page fault like on i386', async () => {
    if (oracle === undefined) return;
    const [divide, read] = await oracle.run([
      case32([0xf7, 0xf3], { eax: 0n, edx: 2n, ebx: 1n }),
      case32([0x8b, 0x03], { ebx: base - 1n }),
    ]);
    expect(divide?.fault).toMatchObject({ vector: 0, name: '#DE' });
    expect(read?.fault).toMatchObject({ vector: 14, name: '#PF', address: base - 1n });
    expect(read?.registers.every((value) => value <= 0xffff_ffffn)).toBe(true);
  });

  it('names exceptions Linux folds into one signal by their vector: #OF, #BR, #GP from int n, #SS', async () => {
    if (oracle === undefined) return;
    const [into, bound, interrupt, stack] = await oracle.run([
      case32([0xce], {}, { rflags: Flag.OF }),
      // bound eax, [ebx] with bounds [0, 10] and eax = 50
      case32([0x62, 0x03], { eax: 50n, ebx: base }, { memory: Uint8Array.of(0, 0, 0, 0, 10, 0, 0, 0) }),
      case64([0xcd, 0x21], {}),
      case64([0x50], { rsp: 1n << 63n }),
    ]);
    expect(into?.fault).toMatchObject({ vector: 4, name: '#OF', signal: 'SIGSEGV' });
    expect(into?.rip).toBe(BigInt(code + 1));
    expect(bound?.fault).toMatchObject({ vector: 5, name: '#BR', signal: 'SIGSEGV' });
    expect(bound?.rip).toBe(BigInt(code));
    expect(interrupt?.fault).toMatchObject({ vector: 13, name: '#GP', errorCode: (0x21 << 3) | 2 });
    expect(stack?.fault).toMatchObject({ vector: 12, name: '#SS' });
  });

  test.prop([fc.array(oracleCase({ bits: 32, code: fc.constantFrom(Uint8Array.of(0x01, 0xd8), Uint8Array.of(0x29, 0xd8)), memoryLength: 0 }), { minLength: 1, maxLength: 200 })], {
    numRuns: 5,
  })('add/sub eax, ebx flags match their definitions (batched property)', async (cases) => {
    if (oracle === undefined) return;
    const results = await oracle.run(cases);
    results.forEach((result, index) => {
      const testCase = cases[index] as OracleCase;
      const [a = 0n, , , b = 0n] = testCase.registers;
      const expected = addSubFlags(a, b, 32n, testCase.code[0] === 0x29);
      expect(reg32(result, 'eax')).toBe(expected.result);
      expect(result.rflags & ARITHMETIC_FLAGS).toBe(expected.flags);
    });
  });
});

/** An XMM image with XMM`register` holding the four float32 `lanes` (the rest zero). */
function xmmImage(register: number, lanes: number[]): Uint8Array {
  const image = new Uint8Array(256);
  new Float32Array(image.buffer, register * 16, 4).set(lanes);
  return image;
}

function xmmFloats(result: OracleResult, register: number): number[] {
  return [...new Float32Array(result.xmm!.buffer.slice(register * 16, register * 16 + 16))];
}

describe.skipIf(oracle === undefined)('HostOracle SSE cases', () => {
  it('loads XMM registers and MXCSR, runs addps xmm0, xmm1 and returns them', async () => {
    const xmm = xmmImage(0, [1, 2, 3, 4]);
    xmm.set(xmmImage(1, [10, 20, 30, 0.5]).subarray(16, 32), 16);
    const result = await runOne(case64([0x0f, 0x58, 0xc1], {}, { xmm }));
    expect(result.fault).toBeUndefined();
    expect(xmmFloats(result, 0)).toEqual([11, 22, 33, 4.5]);
    expect(xmmFloats(result, 1)).toEqual([10, 20, 30, 0.5]);
    expect(result.mxcsr).toBe(0x1f80);
  });

  it('reports MXCSR flags, and the state at a #XM fault with the flag set and the destination unchanged', async () => {
    const xmm = xmmImage(0, [1, 1, 1, 1]);
    // divps xmm0, xmm1 with xmm1 = 0: ZE (bit 2); masked, then with ZM (bit 9) clear.
    const masked = await runOne(case64([0x0f, 0x5e, 0xc1], {}, { xmm }));
    expect(masked.mxcsr).toBe(0x1f80 | 0x4);
    expect(xmmFloats(masked, 0)).toEqual([Infinity, Infinity, Infinity, Infinity]);
    const trapped = await runOne(case64([0x0f, 0x5e, 0xc1], {}, { xmm, mxcsr: 0x1f80 & ~0x200 }));
    expect(trapped.fault).toMatchObject({ vector: 19, name: '#XM', signal: 'SIGFPE' });
    expect(trapped.mxcsr).toBe((0x1f80 & ~0x200) | 0x4);
    expect(xmmFloats(trapped, 0)).toEqual([1, 1, 1, 1]);
  });

  it('reaches xmm15 in 64-bit code', async () => {
    // movaps xmm15, xmm8 (45 0f 28 f8)
    const result64 = await runOne(case64([0x45, 0x0f, 0x28, 0xf8], {}, { xmm: xmmImage(8, [5, 6, 7, 8]) }));
    expect(xmmFloats(result64, 15)).toEqual([5, 6, 7, 8]);
  });

  it.skipIf(host.skip32)('in 32-bit code sees xmm0–xmm7 and reports xmm8–xmm15 as zero', async () => {
    // movaps xmm7, xmm0 (0f 28 f8)
    const xmm = xmmImage(0, [1, 2, 3, 4]);
    xmm.set(xmmImage(9, [9, 9, 9, 9]).subarray(144, 160), 144);
    const result32 = await runOne(case32([0x0f, 0x28, 0xf8], {}, { xmm }));
    expect(xmmFloats(result32, 7)).toEqual([1, 2, 3, 4]);
    expect(xmmFloats(result32, 9)).toEqual([0, 0, 0, 0]);
  });

  it('keeps non-SSE cases as they were: no SSE block in their results, and the next case starts from defaults', async () => {
    if (oracle === undefined) return;
    const [plain, sse] = await oracle.run([case64([0x90], {}), case64([0x0f, 0xae, 0x1c, 0x24], { rsp: base + 0x100n }, { memory: new Uint8Array(0x200), mxcsr: 0x9fc0 })]);
    expect(plain?.xmm).toBeUndefined();
    expect(plain?.mxcsr).toBeUndefined();
    // stmxcsr [rsp]
    expect(new DataView(sse!.memory.buffer).getUint32(0x100, true)).toBe(0x9fc0);
    expect(sse?.mxcsr).toBe(0x9fc0);
  });

  it('rejects a wrong-sized XMM image and reserved MXCSR bits', async () => {
    if (oracle === undefined) return;
    await expect(oracle.run([case64([0x90], {}, { xmm: new Uint8Array(16) })])).rejects.toThrow(TypeError);
    await expect(oracle.run([case64([0x90], {}, { mxcsr: 0x10000 })])).rejects.toThrow(TypeError);
  });
});
