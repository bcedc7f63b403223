/**
 * A consumer of @tsvirt/x86-core alone (scripts/consumer-check): single-steps
 * 32-bit protected-mode code with the documented single-step API, checks
 * registers, flags, the stack and RIP after every instruction, and that a
 * saved state (through JSON) restored into a second CPU finishes the same way.
 */
import assert from 'node:assert/strict';
import { guestAddress } from '@tsvirt/interfaces';
import { GuestRam } from '@tsvirt/memory';
import { Cpu, Cr0, Flag, Reg, Seg } from '@tsvirt/x86-core';

const memory = new GuestRam({ size: 1 << 20 });
// mov eax, 5 ; mov ecx, 7 ; imul eax, ecx ; push eax ; pop ebx ; hlt
const code = [0xb8, 5, 0, 0, 0, 0xb9, 7, 0, 0, 0, 0x0f, 0xaf, 0xc1, 0x50, 0x5b, 0xf4];
memory.write(guestAddress(0x1000), Uint8Array.from(code));

function flatProtectedMode(cpu: Cpu): void {
  cpu.setControlRegister(0, Cr0.PE | Cr0.ET);
  cpu.setSegment(Seg.CS, { selector: 0x08, base: 0, limit: 0xffffffff, attributes: 0xc09b }); // 32-bit code, 4 GiB
  for (const seg of [Seg.DS, Seg.ES, Seg.SS]) cpu.setSegment(seg, { selector: 0x10, base: 0, limit: 0xffffffff, attributes: 0xc093 });
  cpu.setRegister(Reg.RSP, 0x8000);
  cpu.setRip(0x1000);
  cpu.rflags = 2;
}

const cpu = new Cpu({ memory });
flatProtectedMode(cpu);
const steps: Array<[rip: number, check: () => void]> = [
  [0x1005, () => assert.equal(cpu.getRegister(Reg.RAX), 5n)],
  [0x100a, () => assert.equal(cpu.getRegister(Reg.RCX), 7n)],
  [0x100d, () => assert.equal(cpu.getRegister(Reg.RAX), 35n)],
  [0x100e, () => assert.equal(memory.readU32(guestAddress(0x7ffc)), 35)],
  [0x100f, () => assert.equal(cpu.getRegister(Reg.RBX), 35n)],
];
let saved: unknown;
for (const [rip, check] of steps) {
  assert.deepEqual(cpu.run(1), { reason: 'limit', retired: 1 });
  assert.equal(cpu.getRip(), BigInt(rip));
  check();
  if (rip === 0x100a) saved = JSON.parse(JSON.stringify(cpu.save()));
}
assert.equal(cpu.rflags & (Flag.CF | Flag.OF), 0); // IMUL: no overflow
assert.equal(cpu.getRegister(Reg.RSP), 0x8000n);
assert.deepEqual(cpu.run(10), { reason: 'halted', retired: 1 });

const again = new Cpu({ memory });
again.restore(saved);
assert.equal(again.getRip(), 0x100an);
assert.deepEqual(again.run(10), { reason: 'halted', retired: 4 });
for (const register of [Reg.RAX, Reg.RBX, Reg.RCX, Reg.RSP]) assert.equal(again.getRegister(register), cpu.getRegister(register));
console.log('x86-core: 6 instructions single-stepped in protected mode; a restored CPU finishes the same');
