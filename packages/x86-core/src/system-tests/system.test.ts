import { readFileSync } from 'node:fs';
import { guestAddress, type InterruptController } from '@tsvirt/interfaces';
import { MapBus } from '@tsvirt/interfaces/testing';
import { GuestRam } from '@tsvirt/memory';
import { describe, expect, test } from 'vitest';
import { Cpu, type CpuEvent } from '../cpu.js';
import { assemble, nasmAvailable } from '../testing/assemble.js';
import { Seg } from '../state/registers.js';

const REPORT_PORT = 0xe9;

interface Boot {
  readonly reports: number[];
  readonly events: CpuEvent[];
  readonly cpu: Cpu;
  readonly reason: string;
}

/** Assembles `name`.asm, loads it at 0x7c00 and starts the CPU there in real mode, as a BIOS would. */
function boot(name: string, interrupts?: InterruptController, limit = 2_000_000): Boot {
  const source = readFileSync(new URL(`./${name}.asm`, import.meta.url), 'utf8');
  const memory = new GuestRam({ size: 16 * 1024 * 1024 });
  memory.write(guestAddress(0x7c00), assemble(source));
  const io = new MapBus();
  const reports: number[] = [];
  io.register(REPORT_PORT, 4, { read: () => 0, write: (_offset, _size, value) => reports.push(value >>> 0) }, 'report');
  const events: CpuEvent[] = [];
  const cpu = new Cpu({ memory, io, interrupts, model: 'tsvirt-max', events: (event) => events.push(event) });
  cpu.setSegment(Seg.CS, { selector: 0, base: 0, limit: 0xffff, attributes: 0x9b });
  cpu.setRip(0x7c00);
  const result = cpu.run(limit);
  return { reports, events, cpu, reason: result.reason };
}

describe.skipIf(!nasmAvailable())('system tests written in assembly', () => {
  test('protected mode: paging with PSE, #PF, #GP, #DE, INT, ring 3 through a TSS, a call gate back to ring 0', () => {
    const { reports, reason } = boot('protected-mode');
    expect(reason).toBe('halted');
    expect(reports.map((value) => value.toString(16))).toEqual(
      [
        1, 2,
        0x0e, 0x500010, 0, // not present, supervisor read
        3,
        0x0e, 0x502000, 3, // write to a read-only page with CR0.WP
        0x0d, 0x78, // selector beyond the GDT limit
        0xde,
        0x11, 0, // INT 0x80 from ring 0
        0x33, 3, // INT 0x80 from ring 3
        0, 0x99, // through the call gate: ring 0, with the parameter copied to the inner stack
        0x0e, 0x501000, 5, // user read of a supervisor page (back in ring 3 after RETF)
        0xd0e,
      ].map((value) => value.toString(16)),
    );
  });
});

describe.skipIf(!nasmAvailable())('long mode in assembly', () => {
  test('4-level paging with NX, #PF/#GP/#UD, an external interrupt after the STI shadow, SYSCALL/SYSRET and INT from ring 3', () => {
    let pending = true;
    const controller: InterruptController = {
      pending: () => pending,
      acknowledge: () => {
        pending = false;
        return 0x20;
      },
    };
    const { reports, reason } = boot('long-mode', controller);
    expect(reason).toBe('halted');
    expect(reports.map((value) => value.toString(16))).toEqual(
      [
        1, 2,
        0x0e, 0x300018, 0, // not present, supervisor read
        3,
        0x0e, 0x301000, 0x11, // instruction fetch from an NX page: present | fetch
        0x0d, 0, // non-canonical address
        0x06, // UD2
        0x41, 0x20, // the OUT in the STI shadow runs before the interrupt
        0x55, 0, // SYSCALL arrives at ring 0
        0x66, 3, // INT 0x80 from ring 3
        0x0d, 0, // HLT at ring 3
        0xd0e,
      ].map((value) => value.toString(16)),
    );
  });
});
