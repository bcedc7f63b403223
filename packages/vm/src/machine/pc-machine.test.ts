import { readFileSync } from 'node:fs';
import { MemoryCharacterBackend as PipeBackend } from '@tsvirt/interfaces/testing';
import { guestAddress } from '@tsvirt/interfaces';
import { assemble, nasmAvailable } from '@tsvirt/x86-core/testing';
import { describe, expect, it } from 'vitest';
import { BootError } from '../errors.js';
import { type MachineEvent, PcMachine } from './pc-machine.js';

/**
 * A multiboot kernel that greets on COM1, takes three PIT ticks through the
 * 8259 and an IDT of its own while halted, then reports the tick count
 * through isa-debug-exit (the consumer check boots the same file).
 */
const tickingKernel = readFileSync(new URL('./ticking-kernel.asm', import.meta.url), 'utf8');

describe.skipIf(!nasmAvailable() && !process.env.CI)('PcMachine', () => {
  it('boots a multiboot kernel that uses COM1, the PIC, the PIT and isa-debug-exit', async () => {
    const serial = new PipeBackend();
    const machine = new PcMachine({ memoryBytes: 32 << 20, kernel: assemble(tickingKernel), clockMode: 'deterministic', serial });
    const exit = await machine.run();
    expect(exit).toEqual({ kind: 'debug-exit', status: (3 << 1) | 1 });
    expect(serial.takeText()).toBe('hello from the guest\n');
    // Three 10 ms PIT periods passed in virtual time, mostly skipped while halted.
    expect(machine.clock.now()).toBeGreaterThanOrEqual(30_000_000);
    expect(machine.clock.now()).toBeLessThan(40_000_000);
  });

  it('a watchdog that runs out takes its action and reports it: reset, or with none only the event', async () => {
    const boot = async (action: 'reset' | 'none') => {
      const events: MachineEvent[] = [];
      const machine = new PcMachine({ memoryBytes: 32 << 20, kernel: assemble(tickingKernel), clockMode: 'deterministic', serial: new PipeBackend(), watchdog: { model: 'ib700', action }, events: (event) => events.push(event) });
      machine.platform.io.write(0x443, 1, 15); // the IB700's shortest time: 0 s
      const exit = await machine.run();
      return { exit, watchdog: events.filter((event) => event.kind === 'watchdog') };
    };
    expect(await boot('reset')).toEqual({ exit: { kind: 'reset', source: 'watchdog' }, watchdog: [{ kind: 'watchdog', action: 'reset' }] });
    expect(await boot('none')).toEqual({ exit: { kind: 'debug-exit', status: (3 << 1) | 1 }, watchdog: [{ kind: 'watchdog', action: 'none' }] });
  });

  it('replays a deterministic run exactly', async () => {
    const run = async () => {
      const machine = new PcMachine({ memoryBytes: 32 << 20, kernel: assemble(tickingKernel), clockMode: 'deterministic', serial: new PipeBackend() });
      await machine.run();
      return [machine.clock.now(), machine.cpu.instructionCount];
    };
    expect(await run()).toEqual(await run());
  });
});

/** Where the spinning kernel's tick handler stores the TSC's low half at each tick. */
const TICK_STAMPS = 0x180000;

/**
 * Linux's timer_irq_works in miniature: the PIT at 1 kHz through the 8259,
 * then a loop that never halts, after which the tick count goes out through
 * isa-debug-exit. The handler notes the TSC at every tick at {@link TICK_STAMPS}. The RDTSC wait spins until the TSC (1 GHz) has moved
 * `milliseconds`; the compute wait spins until 20 ticks came, reading no clock.
 */
function spinningKernel(wait: { rdtsc: number } | 'compute'): string {
  const loop =
    wait !== 'compute'
      ? `
  rdtsc
  mov ebx, eax
.spin:
  pause
  rdtsc
  sub eax, ebx
  cmp eax, ${wait.rdtsc * 1_000_000}
  jb .spin`
      : `
.spin:
  inc ecx
  cmp dword [ticks], 20
  jb .spin`;
  return tickingKernel
    .replace(/outb 0x40, 0x9c[^\n]*\n\s*outb 0x40, 0x2e/, 'outb 0x40, 0xa9\n  outb 0x40, 0x04') // 1193 = 1 ms
    .replace(/\.wait:\n\s*hlt\n\s*cmp dword \[ticks\], 3\n\s*jb \.wait/, loop)
    .replace('irq0:\n  push eax', `irq0:\n  push eax\n  push edx\n  rdtsc\n  mov edx, [ticks]\n  mov [${TICK_STAMPS} + edx * 4], eax\n  pop edx`);
}

describe.skipIf(!nasmAvailable() && !process.env.CI)('PcMachine timers', () => {
  it('real time: a guest spinning on RDTSC gets its PIT ticks, as Linux checks the IO-APIC timer at boot', async () => {
    const machine = new PcMachine({ memoryBytes: 32 << 20, kernel: assemble(spinningKernel({ rdtsc: 100 })), serial: new PipeBackend() });
    const exit = await machine.run();
    expect(exit.kind).toBe('debug-exit');
    const ticks = ((exit as { status: number }).status - 1) >> 1;
    // 100 in 100 ms when the host gives the VM a core; a busy host loses some (one interrupt per stretch the VM
    // was descheduled). Linux's criterion for a working timer: more than 4 ticks in the window.
    expect(ticks).toBeGreaterThan(4);
    expect(ticks).toBeLessThanOrEqual(101);
  });

  it('real time: a guest spinning without reading any clock still gets its ticks', async () => {
    const machine = new PcMachine({ memoryBytes: 32 << 20, kernel: assemble(spinningKernel('compute')), serial: new PipeBackend() });
    expect(await machine.run()).toEqual({ kind: 'debug-exit', status: (20 << 1) | 1 });
  });

  it('deterministic: every tick arrives at its deadline, not at the end of a slice, and a run replays exactly', async () => {
    const run = async () => {
      const machine = new PcMachine({ memoryBytes: 32 << 20, kernel: assemble(spinningKernel({ rdtsc: 5 })), clockMode: 'deterministic', serial: new PipeBackend() });
      const exit = await machine.run();
      const stamps = Array.from({ length: 5 }, (_, tick) => machine.memory.readU32(guestAddress(TICK_STAMPS + tick * 4)));
      return { exit, stamps, instructions: machine.cpu.instructionCount };
    };
    const first = await run();
    // 5 ms of TSC at 1 kHz: the fifth tick comes just before the wait ends.
    expect(first.exit).toEqual({ kind: 'debug-exit', status: (5 << 1) | 1 });
    // 1193 PIT clocks apart (999,847.6 ns, as many TSC cycles), give or take an instruction or two.
    for (let tick = 1; tick < 5; tick++) expect(Math.abs(first.stamps[tick]! - first.stamps[tick - 1]! - 999_848), `tick ${tick}`).toBeLessThan(10);
    expect(await run()).toEqual(first);
  });
});

/** The smallest multiboot kernel: a header with the load addresses (flag 16), then HLT at the entry point. */
function haltingKernel(): Uint8Array {
  const image = new Uint8Array(33);
  const view = new DataView(image.buffer);
  const words = [0x1bad_b002, 0x0001_0000, -(0x1bad_b002 + 0x0001_0000), 0x10_0000, 0x10_0000, 0x10_0021, 0x10_0021, 0x10_0020];
  words.forEach((word, index) => view.setUint32(index * 4, word >>> 0, true));
  image[32] = 0xf4;
  return image;
}

describe('PcMachine firmware state', () => {
  it('starts with the MTRRs SeaBIOS leaves: enabled, write-back by default, the PCI hole uncached', () => {
    const machine = new PcMachine({ memoryBytes: 256 << 20, kernel: haltingKernel() });
    expect(machine.cpu.readMsr(0x2ff)).toBe(0xc06n);
    expect(machine.cpu.readMsr(0x250)).toBe(0x0606_0606_0606_0606n);
    expect(machine.cpu.readMsr(0x259)).toBe(0n);
    expect(machine.cpu.readMsr(0x26f)).toBe(0x0505_0505_0505_0505n);
    expect(machine.cpu.readMsr(0x200)).toBe(0xe000_0000n);
    // qemu64 has 40 physical address bits: the mask of a 512 MiB range, with the valid bit.
    expect(machine.cpu.readMsr(0x201)).toBe(0xff_e000_0800n);
    expect(machine.cpu.readMsr(0x202)).toBe(0n);
  });
});

describe('PcMachine input checks', () => {
  it('names what is wrong with a kernel it cannot boot', () => {
    expect(() => new PcMachine({ memoryBytes: 32 << 20, kernel: new Uint8Array(4096) })).toThrow(BootError);
    expect(() => new PcMachine({ memoryBytes: 1000, kernel: new Uint8Array(4096) })).toThrow(/multiple of 4 KiB/);
  });
});
