import { describe, expect, it } from 'vitest';
import { pcMtrrSettings } from './mtrr.js';

const asMap = (writes: ReturnType<typeof pcMtrrSettings>) => new Map(writes.map(({ index, value }) => [index, value]));

describe('pcMtrrSettings', () => {
  it('programs what SeaBIOS programs on a 256 MiB pc, with the PCI hole uncached', () => {
    const writes = pcMtrrSettings({ ramBelow4G: 256 << 20, uncachedFrom: 0xe000_0000, physicalAddressBits: 40, variableRanges: 8 });
    // Disabled first, enabled (E | FE, default write-back) last.
    expect(writes[0]).toEqual({ index: 0x2ff, value: 0n });
    expect(writes.at(-1)).toEqual({ index: 0x2ff, value: 0xc06n });
    const final = asMap(writes);
    expect(final.get(0x250)).toBe(0x0606_0606_0606_0606n); // 0-512 KiB write-back
    expect(final.get(0x258)).toBe(0x0606_0606_0606_0606n); // 512-640 KiB write-back
    expect(final.get(0x259)).toBe(0n); // VGA window uncached
    for (let msr = 0x268; msr <= 0x26f; msr++) expect(final.get(msr)).toBe(0x0505_0505_0505_0505n); // ROM area write-protected
    expect(final.get(0x200)).toBe(0xe000_0000n); // base, type UC
    expect(final.get(0x201)).toBe(0xff_e000_0800n); // 512 MiB mask within 40 bits, valid
    for (let msr = 0x202; msr <= 0x20f; msr++) expect(final.get(msr)).toBe(0n);
  });

  it('leaves fixed ranges that RAM does not fully cover uncached', () => {
    const final = asMap(pcMtrrSettings({ ramBelow4G: 0x8_6000, uncachedFrom: 0x8000_0000, physicalAddressBits: 36, variableRanges: 2 }));
    // RAM ends inside the second 16 KiB range at 0x84000: only the first 16 KiB range is write-back.
    expect(final.get(0x258)).toBe(0x06n);
    expect(final.get(0x268)).toBe(0n);
    expect(final.get(0x201)).toBe(0xf_8000_0800n);
    expect(final.has(0x204)).toBe(false);
  });

  it('refuses a range that one variable MTRR cannot describe', () => {
    expect(() => pcMtrrSettings({ ramBelow4G: 1 << 30, uncachedFrom: 0xc000_0001, physicalAddressBits: 40, variableRanges: 8 })).toThrow(RangeError);
    expect(() => pcMtrrSettings({ ramBelow4G: 1 << 30, uncachedFrom: 0xa000_0000, physicalAddressBits: 40, variableRanges: 8 })).toThrow(RangeError);
    expect(() => pcMtrrSettings({ ramBelow4G: 1 << 30, uncachedFrom: 0xe000_0000, physicalAddressBits: 40, variableRanges: 0 })).toThrow(RangeError);
  });
});
