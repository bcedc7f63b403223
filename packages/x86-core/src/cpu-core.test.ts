import { describe, expect, test } from 'vitest';
import type { Cpu, CpuEvent } from './cpu.js';
import { Reg, Seg } from './state/registers.js';
import { runAssembly, TEST_CODE_ADDRESS } from './testing/flat-machine.js';

/*
 * The run loop executes straight runs of decoded instructions as blocks,
 * without looking anything up between them. These are the cases where a
 * block must stop or account exactly as instruction-by-instruction running.
 */
describe('run loop blocks', () => {
  test('a fault in the middle of a block: the ones before it retired, RIP and the count name the faulting one', () => {
    // What the CPU holds when it reports the #GP (no IDT here: it escalates to a shutdown after).
    const seen: Array<{ event: CpuEvent; count: number; registers: bigint[] }> = [];
    let cpu: Cpu | undefined;
    runAssembly(32, 'mov eax, 1\nmov ebx, 2\nmov ecx, [0xfffffffe]\nmov edx, 3\nhlt', {
      machine: { cpuOptions: { events: (event) => seen.push({ event, count: cpu!.instructionCount, registers: [Reg.RAX, Reg.RBX, Reg.RDX].map((r) => cpu!.getRegister(r)) }) } },
      setup: (machine) => {
        cpu = machine.cpu;
        machine.cpu.setRegister(Reg.RDX, 0);
      },
    });
    expect(seen[0]).toEqual({ event: expect.objectContaining({ kind: 'exception', vector: 13, rip: TEST_CODE_ADDRESS + 10 }), count: 2, registers: [1n, 2n, 0n] });
  });

  test('a fetch fault after a jump is reported at the jump target, not at the jump', () => {
    const events: CpuEvent[] = [];
    runAssembly(64, 'mov rax, 0x80000000\njmp rax', { machine: { cpuOptions: { events: (event) => events.push(event) } } });
    // Only the first GiB is mapped: fetching at 2 GiB is a #PF there.
    expect(events.find((event) => event.kind === 'exception')).toMatchObject({ vector: 14, rip: 0x80000000 });
  });

  test('an instruction that ends past the CS limit faults there, after the ones before it in its block', () => {
    const seen: Array<{ event: CpuEvent; registers: bigint[] }> = [];
    let cpu: Cpu | undefined;
    runAssembly(32, 'mov eax, 1\nmov ebx, 2\nmov ecx, 3\nhlt', {
      machine: { cpuOptions: { events: (event) => seen.push({ event, registers: [Reg.RAX, Reg.RBX].map((r) => cpu!.getRegister(r)) }) } },
      setup: (machine) => {
        cpu = machine.cpu;
        // The limit falls inside the second MOV (bytes 5–9).
        machine.cpu.setSegment(Seg.CS, { selector: 0x08, base: 0, limit: TEST_CODE_ADDRESS + 7, attributes: 0xc09b });
      },
    });
    expect(seen[0]).toEqual({ event: expect.objectContaining({ kind: 'exception', vector: 13, rip: TEST_CODE_ADDRESS + 5 }), registers: [1n, 0n] });
  });

  test('the instruction limit can end a run in the middle of a block, and the next run carries on there', () => {
    const source = `${'inc eax\n'.repeat(40)}hlt`;
    const first = runAssembly(32, source, { limit: 3 });
    expect(first.result).toEqual({ reason: 'limit', retired: 3 });
    expect(first.cpu.getRip()).toBe(BigInt(TEST_CODE_ADDRESS + 3));
    expect(first.cpu.run(36)).toEqual({ reason: 'limit', retired: 36 });
    expect(first.cpu.getRegister(Reg.RAX)).toBe(39n);
    // Longer than the longest block: it continues in the next one.
    expect(runAssembly(32, source).cpu.getRegister(Reg.RAX)).toBe(40n);
  });

  test('a REP string instruction that re-executes itself holds back the instructions after it in its block', () => {
    const { cpu } = runAssembly(32, 'mov edi, 0x200000\nmov ecx, 3000\nxor eax, eax\nrep stosb\nmov ebx, ecx\nmov esi, edi\nhlt');
    expect(cpu.getRegister(Reg.RBX)).toBe(0n);
    expect(cpu.getRegister(Reg.RSI)).toBe(BigInt(0x200000 + 3000));
  });

  test('a generic instruction sees the exact instruction count (the time-stamp counter counts instructions)', () => {
    const { cpu } = runAssembly(32, 'nop\nnop\nrdtsc\nmov esi, eax\nnop\nrdtsc\nsub eax, esi\nhlt');
    expect(cpu.getRegister(Reg.RSI)).toBe(2n);
    expect(cpu.getRegister(Reg.RAX)).toBe(3n);
  });

  test('a call after a generic instruction in its block pushes the address after the call', () => {
    const { cpu, result } = runAssembly(32, 'mov esp, 0x80000\nrdtsc\ncall after\nafter: pop ebx\nhlt');
    expect(cpu.getRegister(Reg.RBX)).toBe(BigInt(TEST_CODE_ADDRESS + 12));
    expect(cpu.getRegister(Reg.RSP)).toBe(0x80000n);
    expect(result).toEqual({ reason: 'halted', retired: 5 });
  });

  test('RIP-relative operands in the middle of a block address memory from their own instruction', () => {
    const source = [
      'mov ebx, 1',
      'mov rax, [rel value]',
      'add rax, [rel value]',
      'mov ecx, [rel value]',
      'mov [rel copy], rcx',
      'mov rdx, [rel copy]',
      'hlt',
      'value: dq 0x1122334455667788',
      'copy: dq 0',
    ].join('\n');
    const { cpu } = runAssembly(64, source);
    expect(cpu.getRegister(Reg.RAX)).toBe(0x22446688aaccef10n);
    expect(cpu.getRegister(Reg.RCX)).toBe(0x55667788n);
    expect(cpu.getRegister(Reg.RDX)).toBe(0x55667788n);
  });

  test('a store into the next instruction of the same block changes what runs (32-bit)', () => {
    const { cpu } = runAssembly(32, 'mov byte [target + 1], 0x42\ntarget: mov al, 0\nhlt');
    expect(cpu.getRegister(Reg.RAX) & 0xffn).toBe(0x42n);
  });
});
