import { describe, expect, it } from 'vitest';
import { buildMpTables } from './mptable.js';

describe('MP tables', () => {
  const tables = buildMpTables(
    { cpuApicIds: [0, 1], localApicAddress: 0xfee0_0000, ioapic: { id: 2, address: 0xfec0_0000 }, pirqToIrq: [10, 10, 11, 11], pciSlots: [0, 1, 2] },
    0xf_0000,
  );
  const view = new DataView(tables.bytes.buffer);
  const sum = (bytes: Uint8Array) => bytes.reduce((total, byte) => (total + byte) & 0xff, 0);

  it('has a floating pointer and configuration table with valid checksums, as MP 1.4 defines them', () => {
    expect(new TextDecoder().decode(tables.bytes.subarray(0, 4))).toBe('_MP_');
    expect(sum(tables.bytes.subarray(0, 16))).toBe(0);
    expect(view.getUint32(4, true)).toBe(0xf_0010);
    expect(new TextDecoder().decode(tables.bytes.subarray(16, 20))).toBe('PCMP');
    const length = view.getUint16(20, true);
    expect(16 + length).toBe(tables.bytes.length);
    expect(sum(tables.bytes.subarray(16, 16 + length))).toBe(0);
    expect(view.getUint32(16 + 36, true)).toBe(0xfee0_0000);
  });

  it('lists processors, buses, the IOAPIC and the interrupt wiring', () => {
    const count = view.getUint16(16 + 34, true);
    const entries: number[][] = [];
    let offset = 16 + 44;
    for (let i = 0; i < count; i++) {
      const length = tables.bytes[offset] === 0 ? 20 : 8;
      entries.push([...tables.bytes.subarray(offset, offset + length)]);
      offset += length;
    }
    const processors = entries.filter((entry) => entry[0] === 0);
    expect(processors.map((entry) => [entry[1], entry[3]])).toEqual([
      [0, 0x03], // enabled, bootstrap processor
      [1, 0x01],
    ]);
    const interrupts = entries.filter((entry) => entry[0] === 3);
    // ISA IRQ 0 (the PIT) reaches IOAPIC pin 2.
    expect(interrupts.find((entry) => entry[4] === 1 && entry[5] === 0 && entry[1] === 0)?.[7]).toBe(2);
    // PCI slot 2 INTB: PIRQ (2 + 1) % 4 = D -> IRQ 11, level, active high.
    const slot2IntB = interrupts.find((entry) => entry[4] === 0 && entry[5] === ((2 << 2) | 1))!;
    expect(slot2IntB[7]).toBe(11);
    expect(slot2IntB[2]).toBe(0x0d);
    expect(interrupts.filter((entry) => entry[4] === 0)).toHaveLength(12);
    expect(entries.filter((entry) => entry[0] === 4).map((entry) => [entry[1], entry[7]])).toEqual([
      [3, 0], // ExtINT on LINT0
      [1, 1], // NMI on LINT1
    ]);
  });
});
