/**
 * A consumer of @tsvirt/vm (with the packages it brings; scripts/consumer-check):
 * boots the multiboot test kernel (packages/vm/src/machine/ticking-kernel.asm, assembled by
 * nasm) on the pc machine: it greets on COM1, takes three PIT ticks through the
 * PIC while halted and leaves through isa-debug-exit. Deterministic runs replay
 * exactly; a real-time run ends the same way.
 *
 * node vm.js FIXTURES
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { MemoryCharacterBackend as PipeBackend } from '@tsvirt/interfaces';
import type { ClockMode } from '@tsvirt/interfaces';
import { PcMachine } from '@tsvirt/vm';

const [fixtures] = process.argv.slice(2);
if (fixtures === undefined) throw new Error('usage: vm.js FIXTURES');
const kernel = new Uint8Array(readFileSync(path.join(fixtures, 'ticking-kernel.elf')));

async function boot(clockMode: ClockMode): Promise<{ time: number; instructions: number }> {
  const serial = new PipeBackend();
  const machine = new PcMachine({ memoryBytes: 32 << 20, kernel, clockMode, serial });
  assert.deepEqual(await machine.run(), { kind: 'debug-exit', status: (3 << 1) | 1 });
  assert.equal(serial.takeText(), 'hello from the guest\n');
  assert.ok(machine.clock.now() >= 30_000_000, 'three 10 ms PIT periods passed in guest time');
  return { time: machine.clock.now(), instructions: machine.cpu.instructionCount };
}

const first = await boot('deterministic');
assert.deepEqual(await boot('deterministic'), first);
await boot('realtime');
console.log(`vm: the multiboot kernel booted, took 3 PIT ticks and exited with status 7 (deterministic: ${first.time / 1e6} ms of guest time, replayed exactly; and in real time)`);
