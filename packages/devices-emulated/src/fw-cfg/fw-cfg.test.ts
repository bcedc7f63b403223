import { describe, expect, it } from 'vitest';
import { StateError } from '@tsvirt/interfaces';
import { PortIoBus } from '../bus/port-io-bus.js';
import { FlatGuestMemory } from '../testing/platform.js';
import { FwCfg } from './fw-cfg.js';

function makeFwCfg() {
  const memory = new FlatGuestMemory(0x1_0000);
  const fwCfg = new FwCfg({ dma: memory });
  const pio = new PortIoBus();
  pio.register(0x510, 2, fwCfg.ioPorts, 'fw_cfg');
  pio.register(0x514, 8, fwCfg.dmaPort, 'fw_cfg dma');
  const readItem = (key: number, length: number) => {
    pio.write(0x510, 2, key);
    return Array.from({ length }, () => pio.read(0x511, 1));
  };
  /** Writes a descriptor at `at` and starts DMA as SeaBIOS does: outl(be32(high), 0x514); outl(be32(low), 0x518). */
  const dma = (at: number, control: number, length: number, address: number) => {
    const view = new DataView(memory.bytes.buffer);
    view.setUint32(at, control, false);
    view.setUint32(at + 4, length, false);
    view.setUint32(at + 8, Math.floor(address / 2 ** 32), false);
    view.setUint32(at + 12, address % 2 ** 32, false);
    const swap = (v: number) => new DataView(new Uint32Array([v]).buffer).getUint32(0, false);
    pio.write(0x514, 4, swap(0));
    pio.write(0x518, 4, swap(at));
    return view.getUint32(at, false);
  };
  return { memory, fwCfg, pio, readItem, dma };
}

describe('fw_cfg', () => {
  it('identifies as QEMU with the traditional and DMA interfaces', () => {
    const { readItem, pio } = makeFwCfg();
    expect(String.fromCharCode(...readItem(0x0000, 4))).toBe('QEMU');
    expect(readItem(0x0001, 4)).toEqual([3, 0, 0, 0]);
    expect(readItem(0x0000, 6).slice(4)).toEqual([0, 0]); // past the end: zeros
    expect(String.fromCharCode(...Array.from({ length: 8 }, (_, i) => pio.read(0x514 + i, 1)))).toBe('QEMU CFG');
  });

  it('lists files in a big-endian directory sorted by name', () => {
    const { fwCfg, readItem } = makeFwCfg();
    expect(fwCfg.addFile('etc/zeta', new Uint8Array(3))).toBe(0x20);
    expect(fwCfg.addFile('etc/alpha', new Uint8Array(0x1234))).toBe(0x21);
    const directory = readItem(0x0019, 4 + 128);
    expect(directory.slice(0, 4)).toEqual([0, 0, 0, 2]);
    expect(directory.slice(4, 12)).toEqual([0, 0, 0x12, 0x34, 0, 0x21, 0, 0]);
    expect(String.fromCharCode(...directory.slice(12, 21))).toBe('etc/alpha');
    expect(directory[21]).toBe(0);
    expect(directory.slice(68, 76)).toEqual([0, 0, 0, 3, 0, 0x20, 0, 0]);
    expect(() => fwCfg.addFile('etc/zeta', new Uint8Array(1))).toThrow(RangeError);
    expect(() => fwCfg.addFile('x'.repeat(56), new Uint8Array(1))).toThrow(RangeError);
  });

  it('copies an item by DMA, skips, and reports errors for writes and bad addresses', () => {
    const { fwCfg, memory, dma } = makeFwCfg();
    fwCfg.addBytes(0x0003, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
    // select 3 + skip 2, then read 4, then read 4 more (2 real + 2 zeros).
    expect(dma(0x100, (0x0003 << 16) | 0x08 | 0x04, 2, 0)).toBe(0);
    expect(dma(0x100, 0x02, 4, 0x2000)).toBe(0);
    expect([...memory.bytes.subarray(0x2000, 0x2004)]).toEqual([3, 4, 5, 6]);
    memory.bytes.fill(0xee, 0x3000, 0x3004);
    expect(dma(0x100, 0x02, 4, 0x3000)).toBe(0);
    expect([...memory.bytes.subarray(0x3000, 0x3004)]).toEqual([7, 8, 0, 0]);
    expect(dma(0x100, (0x0003 << 16) | 0x08 | 0x10, 4, 0x2000)).toBe(0x01); // items are read-only
    expect(dma(0x100, (0x0003 << 16) | 0x08 | 0x02, 8, 0xfffc)).toBe(0x01); // runs past RAM
    expect(dma(0x100, (0x0003 << 16) | 0x08 | 0x02, 8, 2 ** 60)).toBe(0x01);
    expect(memory.refused).toBe(0);
  });

  it('ignores a descriptor outside RAM and data-port writes', () => {
    const { pio, readItem, memory } = makeFwCfg();
    pio.write(0x514, 4, 0x0000_0000);
    pio.write(0x518, 4, 0xf8ff_0000); // big-endian 0x0000fff8: the descriptor would run past RAM
    pio.write(0x510, 2, 0);
    pio.write(0x511, 1, 0x41);
    expect(readItem(0, 1)).toEqual([0x51]);
    expect(memory.refused).toBe(0);
    expect(memory.writes).toEqual([]);
  });

  it('saves the cursor and rejects invalid state', () => {
    const a = makeFwCfg();
    a.readItem(0x0000, 2);
    const b = makeFwCfg();
    b.fwCfg.restore(JSON.parse(JSON.stringify(a.fwCfg.save())));
    expect(b.pio.read(0x511, 1)).toBe(0x4d); // 'M'
    expect(() => b.fwCfg.restore({ version: 1, selected: 0x3000, offset: 0, dmaAddressHigh: 0 })).toThrow(StateError);
    expect(() => b.fwCfg.restore({ version: 1, selected: 0, offset: -1, dmaAddressHigh: 0 })).toThrow(StateError);
  });
});
