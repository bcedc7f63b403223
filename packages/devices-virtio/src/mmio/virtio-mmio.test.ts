import { guestAddress } from '@tsvirt/interfaces';
import { RecordingIrqLine } from '@tsvirt/interfaces/testing';
import { GuestRam } from '@tsvirt/memory';
import { describe, expect, it } from 'vitest';
import { BalloonFeature, VirtioBalloon } from '../balloon/virtio-balloon.js';
import { VirtioRng } from '../rng/virtio-rng.js';
import { DeviceStatus, DeviceType, Feature } from '../spec.js';
import { VIRTIO_MMIO_SIZE, VirtioMmio } from './virtio-mmio.js';

const DESCRIPTORS = 0x10_0000;
const AVAILABLE = 0x10_1000;
const USED = 0x10_2000;
const BUFFER = 0x20_0000;
const QUEUE_SIZE = 16;

/** Linux's virtio_mmio probe and virtio core, step by step, on one queue. */
function machine() {
  const memory = new GuestRam({ size: 8 << 20 });
  const irq = new RecordingIrqLine();
  const transport = new VirtioMmio(new VirtioRng({ random: (bytes) => bytes.fill(0x5a) }));
  transport.attach(memory, irq);
  const read = (offset: number) => transport.registers.read(offset, 4);
  const write = (offset: number, value: number) => transport.registers.write(offset, 4, value);
  const setUpQueue = () => {
    write(0x030, 0);
    write(0x038, QUEUE_SIZE);
    write(0x080, DESCRIPTORS);
    write(0x084, 0);
    write(0x090, AVAILABLE);
    write(0x094, 0);
    write(0x0a0, USED);
    write(0x0a4, 0);
    write(0x044, 1);
  };
  const negotiate = () => {
    write(0x070, DeviceStatus.Acknowledge | DeviceStatus.Driver);
    write(0x024, 1);
    write(0x020, 1 << (Feature.Version1 - 32));
    write(0x024, 0);
    write(0x020, 0);
    write(0x070, DeviceStatus.Acknowledge | DeviceStatus.Driver | DeviceStatus.FeaturesOk);
    return read(0x070);
  };
  /** One device-writable buffer of `length` bytes, made available and kicked. */
  const request = (length: number) => {
    let availableIndex = memory.readU16(guestAddress(AVAILABLE + 2));
    const head = availableIndex % QUEUE_SIZE;
    memory.writeU32(guestAddress(DESCRIPTORS + 16 * head), BUFFER + 0x100 * head);
    memory.writeU32(guestAddress(DESCRIPTORS + 16 * head + 4), 0);
    memory.writeU32(guestAddress(DESCRIPTORS + 16 * head + 8), length);
    memory.writeU16(guestAddress(DESCRIPTORS + 16 * head + 12), 2); // WRITE
    memory.writeU16(guestAddress(AVAILABLE + 4 + 2 * head), head);
    availableIndex++;
    memory.writeU16(guestAddress(AVAILABLE + 2), availableIndex);
    write(0x050, 0);
    return head;
  };
  const usedIndex = () => memory.readU16(guestAddress(USED + 2));
  return { memory, irq, transport, read, write, setUpQueue, negotiate, request, usedIndex };
}

describe('virtio MMIO transport', () => {
  it('identifies itself as Linux\'s virtio_mmio expects: magic, version 2, device and vendor IDs, VERSION_1 offered', () => {
    const { read, write } = machine();
    expect([read(0x000), read(0x004), read(0x008), read(0x00c)]).toEqual([0x74726976, 2, DeviceType.Entropy, 0x554d4551]);
    write(0x014, 1);
    expect(read(0x010) & (1 << (Feature.Version1 - 32))).not.toBe(0);
    write(0x030, 0);
    expect(read(0x034)).toBeGreaterThanOrEqual(QUEUE_SIZE);
    write(0x030, 1);
    expect(read(0x034)).toBe(0); // no second queue
    expect(VIRTIO_MMIO_SIZE).toBe(0x200);
  });

  it('serves a request: the used ring, InterruptStatus bit 0 and a level interrupt until acknowledged', () => {
    const { memory, irq, read, write, setUpQueue, negotiate, request, usedIndex } = machine();
    expect(negotiate() & DeviceStatus.FeaturesOk).not.toBe(0);
    setUpQueue();
    write(0x070, DeviceStatus.Acknowledge | DeviceStatus.Driver | DeviceStatus.FeaturesOk | DeviceStatus.DriverOk);
    const head = request(32);
    expect(usedIndex()).toBe(1);
    expect(memory.readU32(guestAddress(USED + 4))).toBe(head);
    expect(memory.readU32(guestAddress(USED + 8))).toBe(32);
    expect(memory.readU32(guestAddress(BUFFER))).toBe(0x5a5a5a5a);
    expect(irq.level).toBe(true);
    expect(read(0x060)).toBe(1);
    write(0x064, 1);
    expect([irq.level, read(0x060)]).toEqual([false, 0]);
  });

  it('refuses FEATURES_OK without VERSION_1, and ignores notifications before DRIVER_OK', () => {
    const { read, write, setUpQueue, request, usedIndex } = machine();
    write(0x070, DeviceStatus.Acknowledge | DeviceStatus.Driver | DeviceStatus.FeaturesOk);
    expect(read(0x070) & DeviceStatus.FeaturesOk).toBe(0);
    setUpQueue();
    request(8);
    expect(usedIndex()).toBe(0);
  });

  it('takes only 32-bit register accesses; the configuration takes any width', () => {
    const memory = new GuestRam({ size: 8 << 20 });
    const transport = new VirtioMmio(new VirtioBalloon({ ramBytes: 8 << 20 }));
    transport.attach(memory, new RecordingIrqLine());
    expect(transport.registers.read(0x000, 2)).toBe(0);
    transport.registers.write(0x070, 1, DeviceStatus.Acknowledge);
    expect(transport.registers.read(0x070, 4)).toBe(0);
    (transport.device as VirtioBalloon).setTarget(4 << 20);
    expect(transport.registers.read(0x100, 4)).toBe(1024);
    expect(transport.registers.read(0x101, 1)).toBe(4);
    transport.registers.write(0x010 + 4, 4, 0); // DeviceFeaturesSel 0
    expect(transport.registers.read(0x010, 4) & (1 << BalloonFeature.StatsQueue)).not.toBe(0);
  });

  it('a queue outside guest RAM: DEVICE_NEEDS_RESET and a configuration interrupt, not an exception', () => {
    const { irq, read, write, negotiate } = machine();
    negotiate();
    write(0x030, 0);
    write(0x038, QUEUE_SIZE);
    write(0x080, 0xfff0_0000);
    write(0x044, 1);
    write(0x070, DeviceStatus.Acknowledge | DeviceStatus.Driver | DeviceStatus.FeaturesOk | DeviceStatus.DriverOk);
    expect(read(0x070) & DeviceStatus.NeedsReset).not.toBe(0);
    expect(read(0x060) & 2).toBe(2);
    expect(irq.level).toBe(true);
    write(0x070, 0);
    expect([read(0x070), read(0x060), irq.level]).toEqual([0, 0, false]);
  });

  it('continues the same after save and restore in the middle of a session, and refuses a corrupt state', () => {
    const a = machine();
    a.negotiate();
    a.setUpQueue();
    a.write(0x070, DeviceStatus.Acknowledge | DeviceStatus.Driver | DeviceStatus.FeaturesOk | DeviceStatus.DriverOk);
    a.request(16);
    const saved = JSON.parse(JSON.stringify(a.transport.save())) as unknown;
    const b = machine();
    for (const address of [DESCRIPTORS, AVAILABLE, USED]) {
      const page = new Uint8Array(0x1000);
      a.memory.read(guestAddress(address), page);
      b.memory.write(guestAddress(address), page);
    }
    b.transport.restore(saved);
    expect(b.irq.level).toBe(true);
    expect(b.transport.save()).toEqual(a.transport.save());
    for (const side of [a, b]) {
      side.write(0x064, 1);
      side.request(24);
    }
    expect([b.usedIndex(), b.memory.readU32(guestAddress(USED + 12 + 4)), b.irq.level]).toEqual([a.usedIndex(), 24, true]);
    expect(b.transport.save()).toEqual(a.transport.save());
    expect(() => b.transport.restore({ ...(saved as object), interruptStatus: 4 })).toThrow(/interruptStatus/);
    expect(() => b.transport.restore({ ...(saved as object), queues: [] })).toThrow(/queues/);
  });
});
