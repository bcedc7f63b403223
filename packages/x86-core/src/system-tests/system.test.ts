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
  // `assemble` has no include path: `%include "x.inc"` lines are replaced by the file beside this one.
  const source = readFileSync(new URL(`./${name}.asm`, import.meta.url), 'utf8').replace(/^%include "([\w.-]+)"$/m, (_line, file: string) =>
    readFileSync(new URL(`./${file}`, import.meta.url), 'utf8'));
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

describe.skipIf(!nasmAvailable())('task switching in assembly', () => {
  test('CALL/IRET through the back link, JMP through a task gate, #DF and #TS through task gates, a 16-bit TSS, a busy TSS', () => {
    const { reports, reason } = boot('task-switch');
    expect(reason).toBe('halted');
    expect(reports.map((value) => value.toString(16))).toEqual(
      [
        1,
        0x20, 0x4000, 0x18, 0xbbbb, 8, 0x38, 0x1d71d7, // task B: TR, NT, link, its CR3, CR0.TS, LDTR, an LDT segment
        0x1234, 0x89, 0xaaaa, // back in A: EAX restored, B available again, A's CR3
        0, 0x89, 0x1d71d7, // B again by JMP: NT clear, A available, ES reloaded from the LDT
        2,
        0, 0x28, 0x18, 0, // double-fault task: error code 0, TR, link to A, A's EIP at the faulting instruction
        3,
        0x10, 0x48, 0, // #TS(0x10) in the new task's context: error code, link, its EIP at its first instruction
        4,
        0xffff5678, 0x40, 0x18, // 16-bit TSS: upper register halves all-ones, TR, link
        0x9999,
        0x0d, 0x18, // CALL to a busy TSS: #GP(selector)
        0xd0e,
      ].map((value) => value.toString(16)),
    );
  });
});

describe.skipIf(!nasmAvailable())('virtual-8086 mode in assembly', () => {
  test('IRETD into VM86, IOPL-sensitive instructions, the I/O bitmap, the ring-0 frame, IOPL 3', () => {
    const { reports, reason } = boot('virtual-8086');
    expect(reason).toBe('halted');
    expect(reports.map((value) => value.toString(16))).toEqual(
      [
        1,
        0x8086, 0, // DS * 16 addressing; CS 0
        0, 0xfa, 0, 0xfb, 0, 0x9c, 0, 0x9d, 0, 0xcd, 0, 0xcf, // CLI, STI, PUSHF, POPF, INT n, IRET: #GP(0) at IOPL 0
        0, 0xe6, // OUT to a port the bitmap denies
        0xb9, 1, 0x100, 0x300, 0, 0x6000, // INT3 to ring 0: VM in the image, DS and GS images, DS cleared, ESP image
        2,
        0, 0xf4, // HLT: #GP(0)
        0x3000, // IOPL 3: CLI/STI run, PUSHF shows IOPL
        0x21, // INT n through the IDT
        3, // IRET inside virtual-8086 mode
        0, 0xf4,
        0xd0e,
      ].map((value) => value.toString(16)),
    );
  });
});

describe.skipIf(!nasmAvailable())('debug registers and event delivery in assembly', () => {
  test('instruction, data and I/O breakpoints, GD, RF, single step in the MOV SS shadow, the T bit, #SS to #DF through a task gate', () => {
    const { reports, reason } = boot('debug');
    expect(reason).toBe('halted');
    const debug = (status: number): number[] => [0xdb, status, 0, 0]; // DR6 bits, EIP as expected, GD clear in the handler
    expect(reports.map((value) => value.toString(16))).toEqual(
      [
        1,
        ...debug(1), 1, // instruction breakpoint (fault), then the instruction runs once with RF
        ...debug(2), ...debug(4), ...debug(8), // write, read/write and I/O breakpoints (traps)
        ...debug(0x2000), // DR7.GD: BD
        2,
        ...debug(0x4000), ...debug(0x4000), // single step; none between MOV SS and the next instruction
        3,
        ...debug(0x8000), 0x77, // T bit: BT before the new task's first instruction
        4,
        0, 8, 0, // #DF task: error code 0, ESP untouched, EIP at the INT
        0xd0e,
      ].map((value) => value.toString(16)),
    );
  });
});
