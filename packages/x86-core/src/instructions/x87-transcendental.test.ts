import type { IrqLine } from '@tsvirt/interfaces';
import { describe, expect, test } from 'vitest';
import type { CpuEvent } from '../cpu-core.js';
import { TSVIRT_MAX } from '../cpuid/models.js';
import type { Cpu } from '../cpu.js';
import { Cr0, Reg } from '../state/registers.js';
import { runAssembly } from '../testing/flat-machine.js';

/*
 * SDM facts for the transcendentals, FISTTP, the CR0.NE = 0 FERR# path and
 * INIT. Expected values are the exact results rounded to nearest (computed
 * independently with 300-bit arithmetic) or stated in the SDM.
 */

const SSE3_MODEL = { ...TSVIRT_MAX, features: new Set([...TSVIRT_MAX.features, 'sse3' as const]) };

function run(source: string, options: { cr0?: number; model?: typeof SSE3_MODEL; floatingPointError?: IrqLine } = {}) {
  const vectors: number[] = [];
  const events = (event: CpuEvent): void => {
    if (event.kind === 'exception') vectors.push(event.vector);
  };
  const machine = runAssembly(32, source, {
    machine: { model: options.model ?? SSE3_MODEL, cpuOptions: { events, floatingPointError: options.floatingPointError } },
    setup: (flat) => flat.cpu.setControlRegister(0, options.cr0 ?? Cr0.PE | Cr0.ET | Cr0.NE),
  });
  return { ...machine, vectors };
}

/** ST(i) as "sign/exponent:significand" in hex. */
function st(cpu: Cpu, index: number): string {
  const register = cpu.fpu.physical(index);
  const significand = (BigInt(cpu.fpu.high[register]!) << 32n) | BigInt(cpu.fpu.low[register]!);
  return `${cpu.fpu.signExponent[register]!.toString(16).padStart(4, '0')}:${significand.toString(16).padStart(16, '0')}`;
}

describe('x87 transcendentals (Intel SDM vol. 2, FSIN … FYL2XP1)', () => {
  test('FSIN, FCOS, FSINCOS of 1.0 round the exact value; FSINCOS leaves the cosine on top', () => {
    const { cpu } = run('fninit\nfld1\nfsin\nfld1\nfcos\nfld1\nfsincos\nhlt');
    expect(st(cpu, 0)).toBe('3ffe:8a51407da8345c92');
    expect(st(cpu, 1)).toBe('3ffe:d76aa47848677021');
    expect(st(cpu, 2)).toBe('3ffe:8a51407da8345c92');
    expect(st(cpu, 3)).toBe('3ffe:d76aa47848677021');
    // Both rounded up: PE and C1; C2 clear (in range).
    expect(cpu.fpu.status & 0x4700 & ~0x4100).toBe(0x200);
  });

  test('FSIN of FLDPI is sin(pi - pi_ext) with the 66-bit pi of the reduction: -2^-64 (SDM vol. 1, 8.3.10)', () => {
    const { cpu } = run('fninit\nfldpi\nfsin\nhlt');
    expect(st(cpu, 0)).toBe('bfbf:8000000000000000');
  });

  test('FPTAN pushes 1.0 over the tangent; |x| >= 2^63 sets C2 and changes nothing', () => {
    const { cpu } = run(`fninit\nfld dword [half]\nfptan\nfld tword [big]\nfsin\nhlt
half: dd 0.5
big: dq 0x8000000000000000
     dw 0x403e`);
    expect(st(cpu, 0)).toBe('403e:8000000000000000');
    expect(st(cpu, 1)).toBe('3fff:8000000000000000');
    expect(st(cpu, 2)).toBe('3ffe:8bda7adf9a3a5219');
    expect(cpu.fpu.status & 0x400).toBe(0x400);
  });

  test('FPATAN: atan2(1, 1) = pi/4, atan2(+0, -1) = pi rounded (C1), ST(1) replaced and popped', () => {
    const { cpu } = run('fninit\nfld1\nfld1\nfpatan\nfldz\nfld1\nfchs\nfpatan\nhlt');
    expect(cpu.fpu.top).toBe(6);
    expect(st(cpu, 0)).toBe('4000:c90fdaa22168c235');
    expect(st(cpu, 1)).toBe('3ffe:c90fdaa22168c235');
    expect(cpu.fpu.status & 0x220).toBe(0x220);
  });

  test('FYL2X: log2(10) is FLDL2T; y·log2(2^k) is exact but reports PE; FYL2XP1 and F2XM1', () => {
    const { cpu } = run(`fninit\nfld1\nfild dword [ten]\nfyl2x\nfild dword [three]\nfild dword [eight]\nfyl2x
fild dword [three]\nfld dword [quarter]\nfyl2xp1\nfld dword [half]\nf2xm1\nhlt
ten: dd 10
three: dd 3
eight: dd 8
quarter: dd 0.25
half: dd 0.5`);
    expect(st(cpu, 3)).toBe('4000:d49a784bcd1b8afe');
    expect(st(cpu, 2)).toBe('4002:9000000000000000');
    expect(st(cpu, 1)).toBe('3ffe:f73da38d9d4a83eb');
    expect(st(cpu, 0)).toBe('3ffd:d413cccfe7799211');
    expect(cpu.fpu.status & 0x20).toBe(0x20);
  });

  test('special operands: FSIN(inf) and FYL2X(-1) are invalid (IE, indefinite); FYL2X(0, 1) divides by zero', () => {
    const { cpu } = run(`fninit\nfld tword [infinity]\nfsin\nfnstsw ax\nmov ebx, eax\nfninit\nfld1\nfld1\nfchs\nfyl2x\nfnstsw ax\nmov ecx, eax
fninit\nfld1\nfldz\nfyl2x\nfnstsw ax\nhlt
infinity: dq 0x8000000000000000
          dw 0x7fff`);
    expect(cpu.getRegister(Reg.RBX) & 0x3fn).toBe(1n);
    expect(cpu.getRegister(Reg.RCX) & 0x3fn).toBe(1n);
    expect(cpu.getRegister(Reg.RAX) & 0x3fn).toBe(4n);
    expect(st(cpu, 0)).toBe('ffff:8000000000000000');
  });

  test('stack overflow in FPTAN (masked): IE, SF, C1 and two indefinites', () => {
    const { cpu } = run(`fninit\n${'fld1\n'.repeat(8)}fptan\nhlt`);
    expect(cpu.fpu.status & 0x2ff & ~0x80).toBe(0x241);
    expect(st(cpu, 0)).toBe('ffff:c000000000000000');
    expect(st(cpu, 1)).toBe('ffff:c000000000000000');
  });
});

describe('FISTTP (SSE3)', () => {
  test('truncates whatever the rounding control says, and pops', () => {
    const { cpu } = run(`fninit\nfldcw [up]\nfld dword [value]\nfld dword [value]\nfld dword [negative]
fisttp word [out16]\nfisttp dword [out32]\nfisttp qword [out64]\nmov eax, [out16]\nmov ebx, [out32]\nmov ecx, [out64]\nhlt
up: dw 0x0b7f
value: dd 2.75
negative: dd -7.9
out16: dd 0
out32: dd 0
out64: dq 0`);
    expect(cpu.getRegister(Reg.RAX) & 0xffffn).toBe(0xfff9n);
    expect(cpu.getRegister(Reg.RBX)).toBe(2n);
    expect(cpu.getRegister(Reg.RCX)).toBe(2n);
    expect(cpu.fpu.tagWord()).toBe(0xffff);
  });

  test('#UD without SSE3', () => {
    const { vectors } = run('fninit\nfld1\nfisttp dword [esp-8]\nhlt', { model: { ...TSVIRT_MAX, features: new Set([...TSVIRT_MAX.features].filter((feature) => feature !== 'sse3')) } });
    expect(vectors[0]).toBe(6);
  });
});

describe('CR0.NE = 0: FERR# and IGNNE# (SDM vol. 1, 8.7.1 and appendix D)', () => {
  function line() {
    const levels: boolean[] = [];
    return { levels, irq: { setLevel: (asserted: boolean) => levels.push(asserted), pulse: () => levels.push(true, false) } satisfies IrqLine };
  }
  const PENDING = 'fninit\nfldcw [control]\nfldz\nfld1\nfdiv st0, st1\n';

  test('the next waiting x87 instruction asserts FERR# and freezes in place; IGNNE# lets it run; FNCLEX releases FERR#', () => {
    const ferr = line();
    const { cpu, result, vectors } = run(`${PENDING}frozen: fadd st0, st0\nmov eax, 1\nfnclex\nhlt\ncontrol: dw 0x037b`, { cr0: Cr0.PE | Cr0.ET, floatingPointError: ferr.irq });
    expect(result.reason).toBe('halted');
    expect(vectors).toEqual([]);
    expect(ferr.levels).toEqual([true]);
    expect(cpu.getRegister(Reg.RAX) & 1n).toBe(0n);
    const frozenAt = cpu.getRip();
    // Still frozen: running again changes nothing.
    expect(cpu.run(10).reason).toBe('halted');
    expect(cpu.getRip()).toBe(frozenAt);
    cpu.ignoreNumericError(true);
    expect(cpu.run(100).reason).toBe('halted');
    expect(cpu.getRegister(Reg.RAX)).toBe(1n);
    expect(ferr.levels).toEqual([true, false]);
  });

  test('an interrupt taken while frozen returns to the waiting instruction, which runs once the handler cleared the error', () => {
    const ferr = line();
    let requested = false;
    const interrupts = { pending: () => requested, acknowledge: () => { requested = false; return 0x75; } };
    const { cpu, result } = runAssembly(16, `mov word [0x75*4], handler\nmov word [0x75*4+2], 0\nfninit\nfldcw [control]\nfldz\nfld1\nfdiv st0, st1
sti\nnop\nfrozen: fadd st0, st0\nmov di, 1\nhlt
handler: fnclex\ninc si\niret
control: dw 0x037b`, { machine: { cpuOptions: { interrupts, floatingPointError: ferr.irq } } });
    expect(result.reason).toBe('halted');
    expect(ferr.levels).toEqual([true]);
    expect(cpu.getRegister(Reg.RDI)).toBe(0n);
    // IRQ 13 arrives: the handler runs with the FADD as return address, clears the error, and the FADD completes.
    requested = true;
    expect(cpu.run(100).reason).toBe('halted');
    expect(cpu.getRegister(Reg.RSI)).toBe(1n);
    expect(cpu.getRegister(Reg.RDI)).toBe(1n);
    expect(ferr.levels).toEqual([true, false]);
    expect(st(cpu, 0)).toBe('4000:8000000000000000');
  });

  test('without a FERR# line the instruction simply proceeds (no #MF with NE = 0)', () => {
    const { cpu, vectors } = run(`${PENDING}fadd st0, st0\nmov eax, 1\nhlt\ncontrol: dw 0x037b`, { cr0: Cr0.PE | Cr0.ET });
    expect(vectors).toEqual([]);
    expect(cpu.getRegister(Reg.RAX)).toBe(1n);
  });
});

describe('INIT (SDM vol. 3, table 9-1)', () => {
  test('INIT leaves the x87 registers, control, status and tags unchanged; RESET does not', () => {
    const { cpu } = run('fninit\nfldcw [control]\nfld1\nfldpi\nfdiv st0, st2\nhlt\ncontrol: dw 0x027b');
    const before = { control: cpu.fpu.control, status: cpu.fpu.statusWord(), tags: cpu.fpu.tagWord(), top: st(cpu, 0), next: st(cpu, 1) };
    cpu.init();
    cpu.run(1);
    expect({ control: cpu.fpu.control, status: cpu.fpu.statusWord(), tags: cpu.fpu.tagWord(), top: st(cpu, 0), next: st(cpu, 1) }).toEqual(before);
    cpu.reset();
    expect(cpu.fpu.control).toBe(0x0040);
    expect(cpu.fpu.tagWord()).toBe(0x5555);
  });
});
