import { guestAddress } from '@tsvirt/interfaces';
import { MapBus } from '@tsvirt/interfaces/testing';
import { GuestRam } from '@tsvirt/memory';
import { expect, test } from 'vitest';
import { Cpu, Flag, Reg, Seg } from './index.js';

test('the README example runs as documented', () => {
  const memory = new GuestRam({ size: 1024 * 1024 });
  const io = new MapBus();
  const cpu = new Cpu({ memory, io, model: 'qemu64' });
  memory.write(guestAddress(0x7c00), Uint8Array.of(0xb8, 0x34, 0x12, 0x05, 0x01, 0x00, 0xf4));
  cpu.setSegment(Seg.CS, { selector: 0, base: 0, limit: 0xffff, attributes: 0x9b });
  cpu.setRip(0x7c00);
  cpu.setRegister(Reg.RBX, 42n);
  cpu.rflags = Flag.CF | 2;
  expect(cpu.run(1000)).toEqual({ reason: 'halted', retired: 3 });
  expect(cpu.getRegister(Reg.RAX)).toBe(0x1235n);
  expect(cpu.rflags & Flag.CF).toBe(0);
  expect(cpu.getRip()).toBe(0x7c07n);
});
