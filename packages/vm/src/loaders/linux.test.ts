import { guestAddress as a } from '@tsvirt/interfaces';
import { BootError } from '../errors.js';
import { GuestRam } from '@tsvirt/memory';
import { describe, expect, it } from 'vitest';
import { E820Type, buildE820 } from '../firmware/e820.js';
import { pcRamRegions } from '../machine-layout.js';
import { parseSetupHeader } from './bzimage.js';
import { BOOT_CS, LinuxBootAddresses, loadLinux } from './linux.js';

/** A synthetic bzImage: 4 setup sectors, then `payload` as the protected-mode kernel. Field values are the test's own. */
function fakeBzImage(options: { version?: number; xloadflags?: number; initSize?: number; payload?: Uint8Array } = {}): Uint8Array {
  const payload = options.payload ?? Uint8Array.from({ length: 3000 }, (_, i) => i & 0xff);
  const image = new Uint8Array(5 * 512 + payload.length);
  const view = new DataView(image.buffer);
  view.setUint8(0x1f1, 4); // setup_sects
  view.setUint16(0x1fe, 0xaa55, true);
  view.setUint8(0x200, 0xeb); // jmp short
  view.setUint8(0x201, 0x66); // header runs to 0x268
  view.setUint32(0x202, 0x5372_6448, true); // "HdrS"
  view.setUint16(0x206, options.version ?? 0x020f, true);
  view.setUint8(0x211, 0x01); // LOADED_HIGH
  view.setUint32(0x214, 0x10_0000, true);
  view.setUint32(0x22c, 0x7fff_ffff, true);
  view.setUint32(0x230, 0x20_0000, true);
  view.setUint8(0x234, 1);
  view.setUint16(0x236, options.xloadflags ?? 0x7f, true);
  view.setUint32(0x238, 2047, true);
  view.setBigUint64(0x258, 0x100_0000n, true);
  view.setUint32(0x260, options.initSize ?? 0x40_0000, true);
  image.set(payload, 5 * 512);
  return image;
}

function machine(megabytes: number) {
  const regions = pcRamRegions(megabytes << 20);
  const memory = new GuestRam({ regions });
  const e820 = buildE820(regions, [{ start: 0x9_fc00, size: 0x400, type: E820Type.Reserved }, { start: 0xe_0000, size: 0x2_0000, type: E820Type.Reserved }]);
  return { memory, e820, lowRamEnd: megabytes << 20 };
}

describe('parseSetupHeader', () => {
  it('reads the fields a loader needs', () => {
    const header = parseSetupHeader(fakeBzImage());
    expect(header).toMatchObject({ version: 0x020f, setupSectors: 4, code32Start: 0x10_0000, initrdAddressMax: 0x7fff_ffff, commandLineSize: 2047, preferredAddress: 0x100_0000, initSize: 0x40_0000, protectedModeOffset: 2560, relocatable: true });
  });

  it('names what is wrong with files that are not bootable kernels', () => {
    expect(() => parseSetupHeader(new Uint8Array(100))).toThrow(/too short/);
    expect(() => parseSetupHeader(new Uint8Array(4096))).toThrow(/no bzImage setup header/);
    expect(() => parseSetupHeader(fakeBzImage({ version: 0x0204 }))).toThrow(/protocol 2.04 is too old/);
    expect(() => parseSetupHeader(fakeBzImage().subarray(0, 2560))).toThrow(/truncated kernel/);
    const zImage = fakeBzImage();
    zImage[0x211] = 0;
    expect(() => parseSetupHeader(zImage)).toThrow(BootError);
  });
});

describe('loadLinux', () => {
  it('loads a 64-bit kernel with boot_params, command line, initrd and identity-mapped page tables', () => {
    const { memory, e820, lowRamEnd } = machine(64);
    const kernel = fakeBzImage();
    const initrd = new Uint8Array(10_000).fill(0x5a);
    const plan = loadLinux(memory, { kernel, initrd, commandLine: 'console=ttyS0 quiet', e820, lowRamEnd, acpiRsdp: 0xf_0000 });
    expect(plan.entry).toMatchObject({ mode: 'long', instructionPointer: 0x10_0200, bootParams: LinuxBootAddresses.bootParams, codeSelector: BOOT_CS });
    // The protected-mode kernel is at 1 MiB.
    expect(memory.readU8(a(0x10_0000 + 5))).toBe(5);
    // boot_params: the kernel's header copied, loader fields filled in.
    const zeroPage = LinuxBootAddresses.bootParams;
    expect(memory.readU32(a(zeroPage + 0x202))).toBe(0x5372_6448);
    expect(memory.readU8(a(zeroPage + 0x210))).toBe(0xff);
    const commandLine = memory.readU32(a(zeroPage + 0x228));
    const text = new Uint8Array(20);
    memory.read(a(commandLine), text);
    expect(new TextDecoder().decode(text)).toBe('console=ttyS0 quiet\0');
    // The initrd sits page-aligned at the top of low RAM.
    const initrdAddress = memory.readU32(a(zeroPage + 0x218));
    expect(initrdAddress % 4096).toBe(0);
    expect(initrdAddress + 10_000).toBeLessThanOrEqual(64 << 20);
    expect(initrdAddress + 10_000).toBeGreaterThan((64 << 20) - 4096);
    expect(memory.readU32(a(zeroPage + 0x21c))).toBe(10_000);
    expect(memory.readU8(a(initrdAddress + 9_999))).toBe(0x5a);
    expect(memory.readU64(a(zeroPage + 0x070))).toBe(0xf_0000n);
    // e820 entries as the kernel reads them.
    expect(memory.readU8(a(zeroPage + 0x1e8))).toBe(e820.length);
    expect(memory.readU64(a(zeroPage + 0x2d0 + 8))).toBe(0x9_fc00n);
    // Page tables: 2 MiB identity mappings; 1 GiB + 6 MiB maps to itself.
    const pdpt = Number(memory.readU64(a(plan.entry.cr3)) & ~0xfffn);
    const directory = Number(memory.readU64(a(pdpt + 8)) & ~0xfffn);
    expect(memory.readU64(a(directory + 3 * 8))).toBe(BigInt(2 ** 30 + 3 * 2 ** 21) | 0x83n);
  });

  it('uses the 32-bit entry for kernels without a 64-bit one', () => {
    const { memory, e820, lowRamEnd } = machine(32);
    const plan = loadLinux(memory, { kernel: fakeBzImage({ xloadflags: 0x04 }), e820, lowRamEnd });
    expect(plan.entry).toMatchObject({ mode: 'protected', instructionPointer: 0x10_0000, cr3: 0, efer: 0 });
    expect(memory.readU64(a(LinuxBootAddresses.gdt + BOOT_CS))).toBe(0x00cf_9b00_0000_ffffn);
    expect(() => loadLinux(memory, { kernel: fakeBzImage({ xloadflags: 0x04 }), e820, lowRamEnd, longMode: true })).toThrow(/no 64-bit entry/);
  });

  it('refuses what does not fit, naming the problem', () => {
    const { memory, e820, lowRamEnd } = machine(8);
    expect(() => loadLinux(memory, { kernel: fakeBzImage({ initSize: 16 << 20 }), e820, lowRamEnd })).toThrow(/give the guest more memory/);
    expect(() => loadLinux(memory, { kernel: fakeBzImage(), e820, lowRamEnd, initrd: new Uint8Array(7 << 20) })).toThrow(/initrd .* does not fit/);
    expect(() => loadLinux(memory, { kernel: fakeBzImage(), e820, lowRamEnd, commandLine: 'x'.repeat(2048) })).toThrow(/at most 2047/);
  });
});
