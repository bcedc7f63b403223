import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { MemoryCharacterBackend } from '@tsvirt/interfaces/testing';
import { assemble, nasmAvailable } from '@tsvirt/x86-core/testing';
import { describe, expect, it } from 'vitest';
import { PcMachine } from './pc-machine.js';

const tickingKernel = readFileSync(new URL('./ticking-kernel.asm', import.meta.url), 'utf8');
/** The ticking kernel that ticks for ever, a '.' on COM1 every 10 ms of guest time. */
const foreverKernel = () => assemble(tickingKernel, { TICK_FOREVER: 1 });

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let waited = 0; !condition(); waited += 5) {
    if (waited > 20_000) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

describe.skipIf(!nasmAvailable() && !process.env.CI)('PcMachine pause and resume', () => {
  it('real time: a paused guest runs nothing and its clock stands still; resumed, it goes on from there', async () => {
    const serial = new MemoryCharacterBackend();
    const machine = new PcMachine({ memoryBytes: 32 << 20, kernel: foreverKernel(), serial });
    let output = '';
    const read = () => (output += serial.takeText());
    const running = machine.run();
    await until(() => read().includes('...'), 'three ticks');

    machine.pause();
    expect(machine.paused).toBe(true);
    // The pause takes effect between slices: let the run loop see it.
    await sleep(20);
    const frozenAt = machine.clock.now();
    const instructions = machine.cpu.instructionCount;
    const printed = read().length;
    await sleep(200);
    expect(machine.clock.now()).toBe(frozenAt);
    expect(machine.cpu.instructionCount).toBe(instructions);
    expect(read().length).toBe(printed);

    machine.resume();
    await until(() => read().length >= printed + 3, 'ticks after resuming');
    // The 200 ms pause is not in guest time: no burst of catch-up ticks, and the clock moved on from where it stood.
    expect(machine.clock.now()).toBeGreaterThan(frozenAt);
    expect(read().length - printed).toBeLessThan(10);
    machine.stop();
    expect(await running).toEqual({ kind: 'stopped' });
  });

  it('deterministic: a machine paused before it runs starts nothing until resumed, then runs exactly as an unpaused one', async () => {
    const kernel = assemble(tickingKernel);
    const reference = new PcMachine({ memoryBytes: 32 << 20, kernel, clockMode: 'deterministic', serial: new MemoryCharacterBackend() });
    const referenceExit = await reference.run();

    const serial = new MemoryCharacterBackend();
    const machine = new PcMachine({ memoryBytes: 32 << 20, kernel, clockMode: 'deterministic', serial });
    machine.pause();
    const running = machine.run();
    await sleep(50);
    expect(machine.cpu.instructionCount).toBe(0);
    expect(machine.clock.now()).toBe(0);
    expect(serial.takeText()).toBe('');
    machine.resume();
    expect(await running).toEqual(referenceExit);
    expect(serial.takeText()).toBe('hello from the guest\n');
    expect([machine.clock.now(), machine.cpu.instructionCount]).toEqual([reference.clock.now(), reference.cpu.instructionCount]);
  });

  it('a reset or stop requested while paused ends the run', async () => {
    const machine = new PcMachine({ memoryBytes: 32 << 20, kernel: foreverKernel(), serial: new MemoryCharacterBackend() });
    machine.pause();
    const running = machine.run();
    await sleep(10);
    machine.requestReset('host-qmp-system-reset');
    expect(await running).toEqual({ kind: 'reset', source: 'host-qmp-system-reset' });
  });

  it('the power button sets PWRBTN_STS in PM1a and raises the SCI once the guest enabled it', () => {
    const machine = new PcMachine({ memoryBytes: 32 << 20, kernel: foreverKernel() });
    const io = machine.platform.io;
    // PM1a_EN: PWRBTN_EN (bit 8), as Linux's ACPI button driver sets it.
    io.write(0x602, 2, 0x0100);
    machine.pressPowerButton();
    expect(io.read(0x600, 2) & 0x0100).toBe(0x0100);
    // IRQ 9 (the SCI) is pending at the 8259: IRR of the slave's line 1.
    io.write(0xa0, 1, 0x0a);
    expect(io.read(0xa0, 1) & 0x02).toBe(0x02);
    // The guest clears the status bit: the SCI goes away.
    io.write(0x600, 2, 0x0100);
    expect(io.read(0x600, 2) & 0x0100).toBe(0);
  });
});
