import { guestAddress as a } from '@tsvirt/interfaces';
import { GuestRam } from '@tsvirt/memory';
import { describe, expect, it } from 'vitest';
import { pcRamRegions } from '../machine-layout.js';
import { defaultAcpiConfig } from './acpi/tables.js';
import { E820Type } from './e820.js';
import { installPcFirmware } from './pc-firmware.js';

describe('installPcFirmware', () => {
  it('leaves ACPI and MP tables where a kernel scans for them, and an e820 map that protects them', () => {
    const ram = pcRamRegions(256 << 20);
    const memory = new GuestRam({ regions: ram });
    const firmware = installPcFirmware(memory, ram, defaultAcpiConfig);
    // Linux scans 0xE0000-0xFFFFF on 16-byte boundaries for "RSD PTR " and 0xF0000-0xFFFFF for "_MP_".
    const found = (signature: string, from: number, to: number): number | undefined => {
      for (let at = from; at < to; at += 16) {
        const bytes = new Uint8Array(signature.length);
        memory.read(a(at), bytes);
        if (new TextDecoder().decode(bytes) === signature) return at;
      }
      return undefined;
    };
    expect(found('RSD PTR ', 0xe_0000, 0x10_0000)).toBe(firmware.acpiRsdp);
    expect(found('_MP_', 0xf_0000, 0x10_0000)).toBe(firmware.mpFloatingPointer);
    expect(firmware.e820).toEqual([
      { start: 0, size: 0x9_fc00, type: E820Type.Ram },
      { start: 0x9_fc00, size: 0x400, type: E820Type.Reserved },
      { start: 0xc_0000, size: 0x4_0000, type: E820Type.Reserved },
      { start: 0x10_0000, size: (256 << 20) - 0x10_0000, type: E820Type.Ram },
      { start: 0xfffc_0000, size: 0x4_0000, type: E820Type.Reserved },
    ]);
  });

  it('splits RAM above 4 GiB for large guests, as QEMU does', () => {
    expect(pcRamRegions(4 * 2 ** 30)).toEqual([
      { start: 0, size: 0xa_0000 },
      { start: 0xc_0000, size: 0xc000_0000 - 0xc_0000 },
      { start: 0x1_0000_0000, size: 0x4000_0000 },
    ]);
    expect(() => pcRamRegions(1 << 20)).toThrow(RangeError);
  });
});
