import { guestAddress, StateError } from '@tsvirt/interfaces';
import { describe, expect, test } from 'vitest';
import { Cpu } from '../cpu.js';
import { Reg } from './registers.js';
import { assemble } from '../testing/assemble.js';
import { createFlatMachine, TEST_CODE_ADDRESS } from '../testing/flat-machine.js';

const PROGRAM = `bits 64
org ${TEST_CODE_ADDRESS}
  mov rsp, 0x80000
  mov ecx, 0xc0000102
  mov eax, 0x1234
  xor edx, edx
  wrmsr
  xor eax, eax
  mov rbx, 0x9e3779b97f4a7c15
.loop:
  imul rax, rbx
  add rax, rcx
  rol rax, 13
  push rax
  pop rdx
  inc ecx
  cmp ecx, 0xc0000102 + 5000
  jne .loop
  hlt`;

describe('save and restore', () => {
  test('save → JSON → restore → continue equals continue', () => {
    const original = createFlatMachine({ bits: 64 });
    original.load(TEST_CODE_ADDRESS, assemble(PROGRAM));
    original.cpu.setRip(TEST_CODE_ADDRESS);
    expect(original.cpu.run(1234).reason).toBe('limit');
    const saved = JSON.parse(JSON.stringify(original.cpu.save())) as unknown;

    const copy = createFlatMachine({ bits: 16 });
    const bytes = new Uint8Array(original.memory.size);
    original.memory.read(guestAddress(0), bytes);
    copy.memory.write(guestAddress(0), bytes);
    copy.cpu.restore(saved);

    expect(original.cpu.run(1_000_000).reason).toBe('halted');
    expect(copy.cpu.run(1_000_000).reason).toBe('halted');
    for (let register = 0; register < 16; register++) expect(copy.cpu.getRegister(register)).toBe(original.cpu.getRegister(register));
    expect(copy.cpu.getRip()).toBe(original.cpu.getRip());
    expect(copy.cpu.rflags).toBe(original.cpu.rflags);
    expect(copy.cpu.readMsr(0xc0000102)).toBe(0x1234n);
    expect(copy.cpu.instructionCount).toBe(original.cpu.instructionCount);
    expect(copy.cpu.getRegister(Reg.RCX)).toBe(0xc0000102n + 5000n);
  });

  test('bad saved states are rejected with the failing field named, and change nothing', () => {
    const { cpu, memory } = createFlatMachine({ bits: 64 });
    const good = cpu.save();
    const other = new Cpu({ memory });
    const before = other.save();
    const broken: Array<[unknown, string]> = [
      [{ ...good, version: 2 }, 'cpu.version'],
      [{ ...good, low: [1, 2, 3] }, 'cpu.low'],
      [{ ...good, rip: 2 ** 60 }, 'cpu.rip'],
      [{ ...good, segments: good.segments.slice(0, 5) }, 'cpu.segments'],
      [{ ...good, msrs: [{ index: 0x12345, low: 0, high: 0 }] }, 'cpu.msrs'],
      [{ ...good, debug: [1] }, 'cpu.debug'],
      [null, 'cpu'],
    ];
    for (const [state, field] of broken) {
      expect(() => other.restore(state)).toThrow(StateError);
      try {
        other.restore(state);
      } catch (error) {
        expect(String((error as Error).message)).toContain(field);
      }
      expect(other.save()).toEqual(before);
    }
  });
});
