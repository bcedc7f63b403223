import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { guestAddress as a } from '@tsvirt/interfaces';
import { GuestRam } from '@tsvirt/memory';
import { describe, expect, it } from 'vitest';
import { BootError } from '../errors.js';
import { E820Type, buildE820 } from '../firmware/e820.js';
import { pcRamRegions } from '../machine-layout.js';
import { MULTIBOOT_BOOTLOADER_MAGIC, loadMultiboot } from './multiboot.js';

const toolsPresent = spawnSync('nasm', ['-v']).status === 0 && spawnSync('ld', ['-v']).status === 0;

/** Assembles `source` with nasm and, for ELF, links it with ld at 1 MiB, as kvm-unit-tests-style kernels are built. */
function build(source: string, format: 'elf' | 'bin'): Uint8Array {
  const dir = mkdtempSync(path.join(tmpdir(), 'tsvirt-multiboot-'));
  try {
    writeFileSync(path.join(dir, 'kernel.asm'), source);
    const run = (command: string, args: string[]) => {
      const result = spawnSync(command, args, { cwd: dir, encoding: 'utf8' });
      if (result.status !== 0) throw new Error(`${command} failed: ${result.stderr}`);
    };
    if (format === 'bin') {
      run('nasm', ['-f', 'bin', '-o', 'kernel.bin', 'kernel.asm']);
      return new Uint8Array(readFileSync(path.join(dir, 'kernel.bin')));
    }
    run('nasm', ['-f', 'elf32', '-o', 'kernel.o', 'kernel.asm']);
    run('ld', ['-m', 'elf_i386', '-Ttext', '0x100000', '-e', 'start', '-o', 'kernel.elf', 'kernel.o']);
    return new Uint8Array(readFileSync(path.join(dir, 'kernel.elf')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function machine() {
  const regions = pcRamRegions(32 << 20);
  return { memory: new GuestRam({ regions }), e820: buildE820(regions, [{ start: 0xc_0000, size: 0x4_0000, type: E820Type.Reserved }]) };
}

const elfKernel = `
section .text
align 4
  dd 0x1BADB002, 0x00000003, -(0x1BADB002 + 0x00000003)
global start
start:
  mov dword [marker], 0x600DF00D
  hlt
section .bss
marker: resd 1024
`;

describe.skipIf(!toolsPresent && !process.env.CI)('loadMultiboot with kernels built by nasm and ld', () => {
  it('loads ELF segments at their physical addresses and fills in the information structure', () => {
    const { memory, e820 } = machine();
    const kernel = build(elfKernel, 'elf');
    const module = new Uint8Array(5000).fill(0x77);
    const entry = loadMultiboot(memory, { kernel, commandLine: 'test=1', modules: [{ data: module, commandLine: 'initrd' }], e820 });
    expect(entry.eax).toBe(MULTIBOOT_BOOTLOADER_MAGIC);
    expect(entry.instructionPointer).toBeGreaterThanOrEqual(0x10_0000);
    // The header's magic is the first thing in .text at 1 MiB.
    expect(memory.readU32(a(0x10_0000))).toBe(0x1bad_b002);
    const info = entry.ebx;
    const flags = memory.readU32(a(info));
    expect(flags & 0b1001001101).toBe(0b1001001101); // memory, cmdline, mods, mmap, loader name
    expect(memory.readU32(a(info + 4))).toBe(640); // mem_lower: the e820 RAM from 0 is 640 KiB here
    expect(memory.readU32(a(info + 8))).toBe((32 << 10) - 1024); // mem_upper: RAM from 1 MiB, in KiB
    const readString = (address: number) => {
      const bytes = new Uint8Array(64);
      memory.read(a(address), bytes);
      return new TextDecoder().decode(bytes.subarray(0, bytes.indexOf(0)));
    };
    expect(readString(memory.readU32(a(info + 16)))).toBe('test=1');
    expect(memory.readU32(a(info + 20))).toBe(1);
    const moduleEntry = memory.readU32(a(info + 24));
    const moduleStart = memory.readU32(a(moduleEntry));
    expect(moduleStart % 4096).toBe(0);
    expect(memory.readU32(a(moduleEntry + 4)) - moduleStart).toBe(5000);
    expect(memory.readU8(a(moduleStart + 4999))).toBe(0x77);
    expect(readString(memory.readU32(a(moduleEntry + 8)))).toBe('initrd');
    expect(memory.readU32(a(info + 44))).toBe(24 * e820.length);
    expect(readString(memory.readU32(a(info + 64)))).toBe('tsvirt');
  });

  it('loads a flat binary through the a.out-kludge address fields', () => {
    const { memory, e820 } = machine();
    const kernel = build(
      `
      bits 32
      org 0x200000
      header: dd 0x1BADB002, 0x00010000, -(0x1BADB002 + 0x00010000)
              dd header, 0x200000, 0, end_of_bss, start
      start:  hlt
      times 100 db 0xAB
      end_of_bss equ $ + 4096
      `,
      'bin',
    );
    memory.fill(a(0x20_0000 + kernel.length), 4096, 0xee);
    const entry = loadMultiboot(memory, { kernel, e820 });
    expect(entry.instructionPointer).toBe(0x20_0020);
    expect(memory.readU8(a(0x20_0020))).toBe(0xf4);
    expect(memory.readU8(a(0x20_0021))).toBe(0xab);
    expect(memory.readU8(a(0x20_0000 + kernel.length + 100))).toBe(0); // BSS zeroed
  });
});

describe.skipIf(!toolsPresent && !process.env.CI)("loadMultiboot places what QEMU's loader places where QEMU does", () => {
  const flat = (origin: number, size = 16) => `
      bits 32
      org ${origin}
      header: dd 0x1BADB002, 0x00010000, -(0x1BADB002 + 0x00010000)
              dd header, ${origin}, 0, end_of_bss, start
      start:  hlt
      times ${size} db 0x90
      end_of_bss equ $ + 16
      `;
  const readString = (memory: GuestRam, address: number) => {
    const bytes = new Uint8Array(128);
    memory.read(a(address), bytes);
    return new TextDecoder().decode(bytes.subarray(0, bytes.indexOf(0)));
  };

  it('puts the memory map at 0x9000 and the information at 0x9500, and starts the command line with the kernel name', () => {
    const { memory, e820 } = machine();
    const entry = loadMultiboot(memory, { kernel: build(flat(0x20_0000), 'bin'), commandLine: 'tscdeadline', kernelName: 'x86/vmexit.flat', e820 });
    expect(entry.ebx).toBe(0x9500);
    expect(memory.readU32(a(0x9500 + 48))).toBe(0x9000);
    expect(memory.readU32(a(0x9000))).toBe(20); // the first map entry's size field
    expect(readString(memory, memory.readU32(a(0x9500 + 16)))).toBe('x86/vmexit.flat tscdeadline');
    // QEMU's multiboot buffer: from the lowest address loaded, page-rounded past everything after the kernel.
    expect(entry.loadAddress).toBe(0x20_0000);
    expect(entry.image.length % 4096).toBe(0);
    expect(entry.info).toHaveLength(88);
  });

  it('moves the map and the information after a kernel that is loaded over them (the realmode test at 0x8000)', () => {
    const { memory, e820 } = machine();
    const kernel = build(flat(0x8000, 0x2000), 'bin');
    const entry = loadMultiboot(memory, { kernel, e820 });
    expect(entry.ebx).toBeGreaterThanOrEqual(0x8000 + kernel.length);
    expect(memory.readU8(a(0x8020))).toBe(0xf4); // the kernel is intact
    expect(memory.readU32(a(entry.ebx + 48))).toBeGreaterThan(entry.ebx);
  });
});

describe('loadMultiboot refuses what it cannot load', () => {
  it('names the problem', () => {
    const { memory, e820 } = machine();
    expect(() => loadMultiboot(memory, { kernel: new Uint8Array(10_000), e820 })).toThrow(/no multiboot header/);
    const header = new Uint8Array(64);
    const view = new DataView(header.buffer);
    view.setUint32(0, 0x1bad_b002, true);
    view.setUint32(4, 0x8, true); // a required feature we do not have
    view.setUint32(8, -(0x1bad_b002 + 0x8) >>> 0, true);
    expect(() => loadMultiboot(memory, { kernel: header, e820 })).toThrow(BootError);
    view.setUint32(4, 0, true);
    view.setUint32(8, -0x1bad_b002 >>> 0, true);
    expect(() => loadMultiboot(memory, { kernel: header, e820 })).toThrow(/not an ELF file/);
  });
});
