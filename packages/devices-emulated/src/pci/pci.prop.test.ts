import { test, fc } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { guestAddress } from '@tsvirt/interfaces';
import { TestPciDevice } from '../testing/platform.js';
import { createPcPciFixture as makePcPci } from '../testing/platform.js';

const SLOT = 5;
const MSI_AT = 0x40;

/** The function's configuration space as the PCI 3.0 spec describes it, kept independently of the core. */
class HeaderModel {
  readonly bytes = new Uint8Array(256);
  readonly writable = new Uint8Array(256);
  readonly clearable = new Uint8Array(256);

  constructor() {
    const set = (offset: number, size: number, value: number, array = this.bytes) => {
      for (let i = 0; i < size; i++) array[offset + i] = (value >>> (8 * i)) & 0xff;
    };
    set(0x00, 4, 0x5678_1234);
    set(0x08, 4, 0x0200_0001);
    set(0x06, 2, 0x0010); // capability list
    set(0x10, 4, 0x1); // I/O BAR, 32 bytes
    set(0x18, 4, 0xc); // 64-bit prefetchable, 8 KiB
    set(0x34, 1, MSI_AT);
    set(0x3d, 1, 2);
    set(MSI_AT, 2, 0x0005);
    set(MSI_AT + 2, 2, 0x0002); // 2 vectors capable, 32-bit
    // QEMU's command mask: I/O, memory, bus master, SERR#, interrupt disable (no parity response).
    set(0x04, 2, 0x0507, this.writable);
    set(0x0c, 1, 0xff, this.writable);
    set(0x3c, 1, 0xff, this.writable);
    set(0x10, 4, 0xffff_ffe0, this.writable);
    set(0x14, 4, 0xffff_ff00, this.writable);
    set(0x18, 4, 0xffff_e000, this.writable);
    set(0x1c, 4, 0xffff_ffff, this.writable);
    set(MSI_AT + 2, 2, 0x0071, this.writable);
    set(MSI_AT + 4, 4, 0xffff_fffc, this.writable);
    set(MSI_AT + 8, 2, 0xffff, this.writable);
    set(0x06, 2, 0xf900, this.clearable);
  }

  /** Bytes 0x40+ outside the MSI capability belong to the device, which reads each byte as its offset. */
  private isCore(offset: number): boolean {
    return offset < 0x40 || offset < MSI_AT + 10;
  }

  read(offset: number, size: number): number {
    let value = 0;
    for (let i = 0; i < size; i++) value |= (this.isCore(offset + i) ? this.bytes[offset + i]! : (offset + i) & 0xff) << (8 * i);
    return value >>> 0;
  }

  write(offset: number, size: number, value: number): void {
    for (let i = 0; i < size; i++) {
      const at = offset + i;
      const byte = (value >>> (8 * i)) & 0xff;
      this.bytes[at] = ((this.bytes[at]! & ~this.writable[at]!) | (byte & this.writable[at]!)) & ~(byte & this.clearable[at]!);
    }
  }

  dword(offset: number): number {
    return this.read(offset, 4);
  }

  /** Where each BAR should decode (PCI 3.0 6.2.5 plus QEMU's rules: address 0 and the sizing pattern do not decode). */
  placements(): { io?: number; mem32?: number; mem64?: number } {
    const command = this.read(0x04, 2);
    const result: { io?: number; mem32?: number; mem64?: number } = {};
    const io = (this.dword(0x10) & 0xffff_ffe0) >>> 0;
    if ((command & 1) !== 0 && io !== 0 && io + 0x20 <= 0x1_0000) result.io = io;
    if ((command & 2) !== 0) {
      const mem32 = (this.dword(0x14) & 0xffff_ff00) >>> 0;
      if (mem32 !== 0 && mem32 + 0xff < 0xffff_ffff) result.mem32 = mem32;
      const mem64 = this.dword(0x1c) * 2 ** 32 + ((this.dword(0x18) & 0xffff_e000) >>> 0);
      if (mem64 !== 0 && mem64 + 0x2000 <= Number.MAX_SAFE_INTEGER) result.mem64 = mem64;
    }
    return result;
  }
}

type Op =
  | { kind: 'write'; offset: number; size: 1 | 2 | 4; value: number }
  | { kind: 'read'; offset: number; size: 1 | 2 | 4 }
  | { kind: 'raise'; bits: number }
  | { kind: 'intx'; asserted: boolean };

const interesting = fc.oneof(
  fc.constantFrom(0x04, 0x06, 0x0c, 0x10, 0x14, 0x18, 0x1c, 0x3c, MSI_AT, MSI_AT + 2, MSI_AT + 4, MSI_AT + 8),
  fc.nat(255),
);
const value = fc.oneof(fc.constantFrom(0xffff_ffff, 0, 0x7, 0xc000, 0xfebf_0000, 0x1_0000, 0xfff0), fc.nat({ max: 0xffff_ffff }));
const aligned = (offset: number, size: 1 | 2 | 4) => offset & ~(size - 1) & 0xff;
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('write' as const), offset: interesting, size: fc.constantFrom<1 | 2 | 4>(1, 2, 4), value }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('read' as const), offset: interesting, size: fc.constantFrom<1 | 2 | 4>(1, 2, 4) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('raise' as const), bits: fc.nat(0xffff) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('intx' as const), asserted: fc.boolean() }) },
);

function makeFunction() {
  const pc = makePcPci();
  const device = new TestPciDevice({
    interruptPin: 2,
    bars: [
      { kind: 'io', size: 0x20 },
      { kind: 'memory32', size: 0x100 },
      { kind: 'memory64', size: 0x2000, prefetchable: true },
      undefined,
    ],
    capabilities: [{ kind: 'msi', vectors: 2, address64: false, perVectorMask: false }],
  });
  const fn = pc.bus.plug(device, SLOT);
  // Slot 5 INTB -> PIRQ (1 + 4) & 3 = B, routed to IRQ 10.
  pc.write(1, 0, 0x61, 1, 10);
  return { pc, device, fn };
}

describe('PCI function configuration space', () => {
  test.prop([fc.array(op, { maxLength: 40 })], { numRuns: 150 })('matches the spec model: masks, RW1C, BAR placement, INTx', (ops) => {
    const { pc, device, fn } = makeFunction();
    const model = new HeaderModel();
    let intx = false;
    for (const o of ops) {
      if (o.kind === 'write') {
        const offset = aligned(o.offset, o.size);
        pc.write(SLOT, 0, offset, o.size, o.value);
        model.write(offset, o.size, o.value);
      } else if (o.kind === 'read') {
        const offset = aligned(o.offset, o.size);
        expect(pc.read(SLOT, 0, offset, o.size)).toBe(model.read(offset, o.size));
      } else if (o.kind === 'raise') {
        fn.raiseStatus(o.bits);
        model.bytes[0x07] = model.bytes[0x07]! | ((o.bits >> 8) & 0xf9);
      } else {
        device.context!.setIntx(o.asserted);
        intx = o.asserted;
      }
      const status = model.bytes[0x06]! & ~0x08;
      model.bytes[0x06] = status | (intx ? 0x08 : 0);
      const placements = model.placements();
      expect(pc.pio.nameAt(placements.io ?? 0xffff)).toBe(placements.io === undefined ? undefined : `pci ${SLOT}.0 bar0`);
      if (placements.mem32 !== undefined) expect(pc.mmio.claims(guestAddress(placements.mem32))).toBe(true);
      if (placements.mem64 !== undefined) expect(pc.mmio.claims(guestAddress(placements.mem64 + 0x1fff))).toBe(true);
      const mapped = pc.events.filter((e) => e.kind === 'bar-mapped').length - pc.events.filter((e) => e.kind === 'bar-unmapped').length;
      const conflicts = pc.events.filter((e) => e.kind === 'bar-conflict').length;
      if (conflicts === 0) expect(mapped).toBe(Object.keys(placements).length);
      expect(pc.isaIrqs[10]!.level).toBe(intx && (model.read(0x04, 2) & 0x400) === 0);
    }
    for (let offset = 0; offset < 256; offset += 4) expect(pc.read(SLOT, 0, offset)).toBe(model.dword(offset));
  });

  test.prop([fc.array(op, { maxLength: 30 }), fc.array(op, { maxLength: 30 })], { numRuns: 60 })('save, restore into a fresh bus, continue equals continue', (before, after) => {
    const run = (target: ReturnType<typeof makeFunction>, ops: Op[]) => {
      for (const o of ops) {
        if (o.kind === 'write') target.pc.write(SLOT, 0, aligned(o.offset, o.size), o.size, o.value);
        else if (o.kind === 'raise') target.fn.raiseStatus(o.bits);
        else if (o.kind === 'intx') target.device.context!.setIntx(o.asserted);
      }
    };
    const original = makeFunction();
    run(original, before);
    const copy = makeFunction();
    copy.pc.bus.restore(JSON.parse(JSON.stringify(original.pc.bus.save())));
    copy.pc.piix3.restore(JSON.parse(JSON.stringify(original.pc.piix3.save())));
    run(original, after);
    run(copy, after);
    for (let offset = 0; offset < 256; offset += 4) expect(copy.pc.read(SLOT, 0, offset)).toBe(original.pc.read(SLOT, 0, offset));
    expect(copy.pc.isaIrqs[10]!.level).toBe(original.pc.isaIrqs[10]!.level);
    expect(copy.pc.bus.save()).toEqual(original.pc.bus.save());
  });
});

describe('PCI hostile access', () => {
  const access = fc.oneof(
    fc.record({ port: fc.constantFrom(0xcf8, 0xcf9, 0xcfa, 0xcfc, 0xcfd, 0xcfe, 0xcff, 0x4d0, 0x4d1), size: fc.constantFrom<1 | 2 | 4>(1, 2, 4), value: fc.nat({ max: 0xffff_ffff }), write: fc.boolean() }),
    fc.record({ port: fc.constant(0xcf8), size: fc.constant<4>(4), value: fc.tuple(fc.nat(31), fc.nat(7), fc.nat(63)).map(([d, f, r]) => (0x8000_0000 | (d << 11) | (f << 8) | (r << 2)) >>> 0), write: fc.constant(true) }),
  );
  test.prop([fc.array(access, { maxLength: 150 }), fc.array(fc.nat(40), { maxLength: 10 })], { numRuns: 80 })('never throws, whatever the guest writes', (accesses, vectors) => {
    const pc = makePcPci();
    const device = new TestPciDevice({
      bars: [{ kind: 'memory32', size: 0x1000 }, { kind: 'io', size: 0x100 }],
      capabilities: [
        { kind: 'msi', vectors: 8, address64: true, perVectorMask: true },
        { kind: 'msix', vectors: 5, tableBar: 0, tableOffset: 0x100, pbaBar: 0, pbaOffset: 0x200 },
        { kind: 'power-management' },
        { kind: 'vendor', id: 0x09, body: new Uint8Array([1, 2, 3]) },
      ],
    });
    pc.bus.plug(device, 3);
    pc.bus.unplug(3);
    pc.bus.plug(device, 2);
    for (const a of accesses) {
      if (a.write) pc.pio.write(a.port, a.size, a.value);
      else pc.pio.read(a.port, a.size);
    }
    for (const vector of vectors) {
      device.context!.signalMsi(vector);
      device.context!.setIntx((vector & 1) === 1);
    }
    for (let address = 0; address < 0x1_0000; address += 0x1000) pc.mmio.read(guestAddress(0xfe00_0000 + address), 4);
    expect(pc.dma.refused).toBe(0);
  });
});

describe('PIIX3 PIRQ routing', () => {
  type RouteOp = { kind: 'route'; pirq: number; value: number } | { kind: 'intx'; device: number; asserted: boolean } | { kind: 'disable'; device: number; off: boolean };
  const slots = [2, 3, 4, 5, 6];
  const pins = [1, 2, 3, 4, 1] as const;
  const routeOp: fc.Arbitrary<RouteOp> = fc.oneof(
    fc.record({ kind: fc.constant('route' as const), pirq: fc.nat(3), value: fc.oneof(fc.constantFrom(0x80, 5, 9, 10, 11), fc.nat(0xff)) }),
    fc.record({ kind: fc.constant('intx' as const), device: fc.nat(4), asserted: fc.boolean() }),
    fc.record({ kind: fc.constant('disable' as const), device: fc.nat(4), off: fc.boolean() }),
  );
  test.prop([fc.array(routeOp, { maxLength: 50 })], { numRuns: 150 })('ISA IRQ levels are the wired-OR of swizzled INTx pins through the route registers', (ops) => {
    const pc = makePcPci();
    const devices = slots.map((slot, index) => {
      const device = new TestPciDevice({ interruptPin: pins[index]! });
      pc.bus.plug(device, slot);
      return device;
    });
    const routes = [0x80, 0x80, 0x80, 0x80];
    const asserted = [false, false, false, false, false];
    const disabled = [false, false, false, false, false];
    for (const o of ops) {
      if (o.kind === 'route') {
        pc.write(1, 0, 0x60 + o.pirq, 1, o.value);
        routes[o.pirq] = o.value & 0x8f;
      } else if (o.kind === 'intx') {
        devices[o.device]!.context!.setIntx(o.asserted);
        asserted[o.device] = o.asserted;
      } else {
        pc.write(slots[o.device]!, 0, 0x04, 2, o.off ? 0x400 : 0);
        disabled[o.device] = o.off;
      }
      // QEMU pc: PIRQ = (pin - 1 + slot - 1) mod 4; a route register below 0x80 selects ISA IRQ (value & 0xf).
      const expected = new Array<boolean>(16).fill(false);
      slots.forEach((slot, index) => {
        if (!asserted[index] || disabled[index]) return;
        const route = routes[(pins[index]! - 1 + slot - 1) % 4]!;
        if ((route & 0x80) === 0) expected[route & 0xf] = true;
      });
      expect(pc.isaIrqs.map((line) => line.level)).toEqual(expected);
    }
  });
});
