import { test, fc } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { FlatGuestMemory } from '../testing/platform.js';
import { FwCfg } from './fw-cfg.js';

const MEMORY = 0x4000;
const ITEMS: Record<number, number[]> = { 0x0003: [1, 2, 3, 4, 5, 6, 7, 8, 9], 0x0005: [0xaa, 0xbb], 0x8001: [7, 7, 7] };

type Op =
  | { kind: 'select'; key: number }
  | { kind: 'read' }
  | { kind: 'dma'; at: number; control: number; key: number; length: number; address: number };

const key = fc.constantFrom(0x0000, 0x0003, 0x0005, 0x8001, 0x0009, 0x3fff, 0x4003);
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('select' as const), key }),
  fc.record({ kind: fc.constant('read' as const) }),
  fc.record({
    kind: fc.constant('dma' as const),
    at: fc.oneof(fc.integer({ min: 0, max: MEMORY / 16 - 1 }).map((i) => i * 16), fc.constant(MEMORY - 8)),
    control: fc.oneof(fc.constantFrom(0x02, 0x04, 0x0a, 0x0c, 0x10, 0x18, 0x00, 0x08), fc.nat(0xff)),
    key,
    length: fc.oneof(fc.nat(12), fc.nat({ max: 0xffff_ffff })),
    address: fc.oneof(fc.integer({ min: 0x2000, max: MEMORY }), fc.nat({ max: 2 ** 48 })),
  }),
);

/** QEMU's fw_cfg as its DMA documentation describes it: a selected item, a cursor, copies bounded by RAM. */
class FwCfgModel {
  selected: number | undefined = undefined;
  offset = 0;
  readonly memory = new Uint8Array(MEMORY);
  private item(): number[] | undefined {
    if (this.selected === undefined) return undefined;
    if ((this.selected & 0x3fff) === 0) return [0x51, 0x45, 0x4d, 0x55];
    return ITEMS[this.selected & 0xbfff];
  }
  select(key: number) {
    this.offset = 0;
    this.selected = (key & 0x3fff) >= 0x40 ? undefined : key;
  }
  read(): number {
    const item = this.item();
    if (item === undefined || this.offset >= item.length) return 0;
    return item[this.offset++]!;
  }
  dma(at: number, control: number, length: number, address: number): void {
    if (at + 16 > MEMORY) return;
    if (control & 0x08) this.select(control >>> 16);
    const read = (control & 0x02) !== 0;
    const write = !read && (control & 0x10) !== 0;
    if (!read && !write && (control & 0x04) === 0) length = 0;
    let error = false;
    while (length > 0 && !error) {
      const item = this.item();
      const available = item === undefined ? 0 : Math.max(0, item.length - this.offset);
      const chunk = available > 0 ? Math.min(length, available) : length;
      if (write) error = true;
      else if (read) {
        if (address + chunk > MEMORY) error = true;
        else for (let i = 0; i < chunk; i++) this.memory[address + i] = available > 0 ? item![this.offset + i]! : 0;
      }
      if (available > 0) this.offset += chunk;
      address += chunk;
      length -= chunk;
    }
    new DataView(this.memory.buffer).setUint32(at, error ? 1 : 0, false);
  }
}

describe('fw_cfg model', () => {
  test.prop([fc.array(op, { maxLength: 40 })], { numRuns: 200 })('selector, data port and DMA match the model; DMA stays inside RAM', (ops) => {
    const memory = new FlatGuestMemory(MEMORY);
    const fwCfg = new FwCfg({ dma: memory });
    for (const [k, bytes] of Object.entries(ITEMS)) fwCfg.addBytes(Number(k), new Uint8Array(bytes));
    const model = new FwCfgModel();
    for (const o of ops) {
      if (o.kind === 'select') {
        fwCfg.ioPorts.write(0, 2, o.key);
        model.select(o.key);
      } else if (o.kind === 'read') {
        expect(fwCfg.ioPorts.read(1, 1)).toBe(model.read());
      } else {
        const control = ((o.key << 16) | o.control) >>> 0;
        const descriptor = new DataView(new ArrayBuffer(16));
        descriptor.setUint32(0, control, false);
        descriptor.setUint32(4, o.length, false);
        descriptor.setUint32(8, Math.floor(o.address / 2 ** 32), false);
        descriptor.setUint32(12, o.address % 2 ** 32, false);
        const bytes = new Uint8Array(descriptor.buffer);
        const fits = o.at + 16 <= MEMORY;
        if (fits) {
          memory.bytes.set(bytes, o.at);
          model.memory.set(bytes, o.at);
        }
        const swap = (v: number) => new DataView(new Uint32Array([v]).buffer).getUint32(0, false);
        fwCfg.dmaPort.write(0, 4, 0);
        fwCfg.dmaPort.write(4, 4, swap(o.at));
        model.dma(o.at, control, o.length, o.address);
      }
      // First differing byte, or -1 (a deep equality on 16 KiB per step would dominate the run time).
      expect(Buffer.from(memory.bytes).equals(Buffer.from(model.memory)) ? -1 : memory.bytes.findIndex((byte, i) => byte !== model.memory[i])).toBe(-1);
    }
    expect(memory.refused).toBe(0);
  });

  test.prop([fc.array(fc.record({ port: fc.nat(11), size: fc.constantFrom<1 | 2 | 4>(1, 2, 4), value: fc.nat({ max: 0xffff_ffff }), write: fc.boolean() }), { maxLength: 100 }), fc.uint8Array({ minLength: 256, maxLength: 256 })], { numRuns: 150 })(
    'never throws and never touches memory outside RAM, whatever the guest writes',
    (accesses, garbage) => {
      const memory = new FlatGuestMemory(0x100);
      memory.bytes.set(garbage);
      const fwCfg = new FwCfg({ dma: memory });
      fwCfg.addFile('etc/test', new Uint8Array(300));
      for (const a of accesses) {
        const device = a.port < 4 ? fwCfg.ioPorts : fwCfg.dmaPort;
        const offset = a.port < 4 ? a.port % 2 : (a.port - 4) & ~3;
        if (a.write) device.write(offset, a.size, a.value);
        else device.read(offset, a.size);
      }
      expect(memory.refused).toBe(0);
      for (const write of memory.writes) expect(write.address + write.length).toBeLessThanOrEqual(0x100);
    },
  );
});

describe('fw_cfg state', () => {
  test.prop([fc.array(op, { maxLength: 20 }), fc.array(op, { maxLength: 20 })], { numRuns: 100 })('save, restore into a fresh fw_cfg, continue equals continue', (before, after) => {
    const build = () => {
      const memory = new FlatGuestMemory(MEMORY);
      const fwCfg = new FwCfg({ dma: memory });
      for (const [k, bytes] of Object.entries(ITEMS)) fwCfg.addBytes(Number(k), new Uint8Array(bytes));
      return { memory, fwCfg };
    };
    const run = (rig: ReturnType<typeof build>, ops: Op[]) => {
      const out: number[] = [];
      for (const o of ops) {
        if (o.kind === 'select') rig.fwCfg.ioPorts.write(0, 2, o.key);
        else if (o.kind === 'read') out.push(rig.fwCfg.ioPorts.read(1, 1));
        else {
          if (o.at + 16 <= MEMORY) {
            const view = new DataView(rig.memory.bytes.buffer);
            view.setUint32(o.at, ((o.key << 16) | o.control) >>> 0, false);
            view.setUint32(o.at + 4, o.length, false);
            view.setUint32(o.at + 8, Math.floor(o.address / 2 ** 32), false);
            view.setUint32(o.at + 12, o.address % 2 ** 32, false);
          }
          rig.fwCfg.dmaPort.write(0, 4, 0);
          rig.fwCfg.dmaPort.write(4, 4, new DataView(new Uint32Array([o.at]).buffer).getUint32(0, false));
        }
      }
      return out;
    };
    const a = build();
    run(a, before);
    const b = build();
    b.memory.bytes.set(a.memory.bytes);
    b.fwCfg.restore(JSON.parse(JSON.stringify(a.fwCfg.save())));
    expect(run(b, after)).toEqual(run(a, after));
    expect(Buffer.from(b.memory.bytes).equals(Buffer.from(a.memory.bytes))).toBe(true);
  });
});
