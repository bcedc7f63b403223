import { fc, test } from '@fast-check/vitest';
import { guestAddress } from '@tsvirt/interfaces';
import { ManualClock, MemoryBlockBackend } from '@tsvirt/interfaces/testing';
import { GuestRam } from '@tsvirt/memory';
import { describe, expect, it } from 'vitest';
import { VirtioBlk } from '../block/virtio-blk.js';
import { VirtioRng } from '../rng/virtio-rng.js';
import { DeviceStatus, Feature, featureMask } from '../spec.js';
import { TestPciContext, VirtioTestDriver } from '../testing/virtio-test-driver.js';
import { VirtioPci } from './virtio-pci.js';

function rngMachine(options: { mode?: 'intx' | 'msix' } = {}) {
  const memory = new GuestRam({ size: 16 << 20 });
  const transport = new VirtioPci(new VirtioRng({ random: (bytes) => bytes.fill(0x5a) }));
  const pci = new TestPciContext(memory);
  pci.mode = options.mode ?? 'msix';
  transport.attach(pci);
  return { memory, transport, pci, driver: new VirtioTestDriver(transport, memory) };
}

describe('virtio PCI transport', () => {
  it('is a transitional device with QEMU IDs, the modern capabilities and MSI-X', () => {
    const { transport } = rngMachine();
    expect(transport.identity).toMatchObject({ vendorId: 0x1af4, deviceId: 0x1005, subsystemId: 4, revision: 0 });
    expect(transport.bars[0]?.kind).toBe('io');
    expect(transport.bars[4]).toMatchObject({ kind: 'memory64', size: 0x4000 });
    const vendorTypes = transport.capabilities.filter((cap) => cap.kind === 'vendor').map((cap) => (cap.kind === 'vendor' ? cap.body[1] : 0));
    expect(vendorTypes).toEqual([1, 3, 4, 2]);
    expect(transport.capabilities[0]).toMatchObject({ kind: 'msix', vectors: 2 });
    expect(new VirtioPci(new VirtioRng(), { transitional: false }).identity).toMatchObject({ deviceId: 0x1044, revision: 1 });
  });

  it('refuses FEATURES_OK for a feature it did not offer, or without VERSION_1', () => {
    const { driver } = rngMachine();
    driver.status = 0;
    driver.status = DeviceStatus.Acknowledge | DeviceStatus.Driver;
    driver.writeCommon(0x08, 4, 0);
    driver.writeCommon(0x0c, 4, 1 << 5); // not offered
    driver.writeCommon(0x08, 4, 1);
    driver.writeCommon(0x0c, 4, 1); // VERSION_1
    driver.status = DeviceStatus.Acknowledge | DeviceStatus.Driver | DeviceStatus.FeaturesOk;
    expect(driver.status & DeviceStatus.FeaturesOk).toBe(0);
    driver.status = 0;
    driver.writeCommon(0x08, 4, 1);
    driver.writeCommon(0x0c, 4, 0);
    driver.status = DeviceStatus.FeaturesOk;
    expect(driver.status & DeviceStatus.FeaturesOk).toBe(0);
    expect(driver.offeredFeatures() & featureMask(Feature.Version1, Feature.RingEventIndex, Feature.RingIndirectDescriptors)).toBe(featureMask(Feature.Version1, Feature.RingEventIndex, Feature.RingIndirectDescriptors));
  });

  it('with INTx, sets the ISR and the pin; reading the ISR clears both', () => {
    const { driver, pci } = rngMachine({ mode: 'intx' });
    driver.initialize();
    driver.submit(0, { writable: [16] });
    driver.notify(0);
    expect(pci.intx).toBe(true);
    expect(driver.readCommon(0x1000, 1)).toBe(1);
    expect(pci.intx).toBe(false);
    expect(driver.readCommon(0x1000, 1)).toBe(0);
    expect(driver.takeUsed(0)[0]!.writable[0]).toEqual(new Uint8Array(16).fill(0x5a));
  });

  it('a queue outside guest RAM: DEVICE_NEEDS_RESET and a configuration interrupt, not an exception', () => {
    const { driver, pci } = rngMachine();
    driver.status = 0;
    driver.status = DeviceStatus.Acknowledge | DeviceStatus.Driver;
    driver.writeCommon(0x08, 4, 1);
    driver.writeCommon(0x0c, 4, 1);
    driver.status = DeviceStatus.Acknowledge | DeviceStatus.Driver | DeviceStatus.FeaturesOk;
    driver.writeCommon(0x16, 2, 0);
    driver.writeCommon(0x10, 2, 0); // configuration vector 0
    driver.writeCommon(0x20, 4, 0xfff0_0000); // descriptor table in the PCI hole
    driver.writeCommon(0x1c, 2, 1);
    driver.status = DeviceStatus.Acknowledge | DeviceStatus.Driver | DeviceStatus.FeaturesOk | DeviceStatus.DriverOk;
    expect(driver.status & DeviceStatus.NeedsReset).toBe(DeviceStatus.NeedsReset);
    expect(pci.msiVectors).toEqual([0]);
    // A reset brings it back.
    driver.initialize();
    driver.submit(0, { writable: [4] });
    driver.notify(0);
    expect(driver.takeUsed(0)).toHaveLength(1);
  });

  it('notifications before DRIVER_OK are ignored; a reset in the middle of a request drops its completion', async () => {
    let release: () => void = () => {};
    const backend = new MemoryBlockBackend(1 << 20);
    backend.readAt = async (_offset, into) => {
      await new Promise<void>((resolve) => (release = resolve));
      into.fill(1);
    };
    const memory = new GuestRam({ size: 16 << 20 });
    const transport = new VirtioPci(new VirtioBlk({ backend }));
    transport.attach(new TestPciContext(memory));
    const driver = new VirtioTestDriver(transport, memory);
    driver.notify(0);
    driver.initialize();
    driver.submit(0, { readable: [new Uint8Array(16)], writable: [512, 1] });
    driver.notify(0);
    const usedIndexAddress = guestAddress(Number(driver.readCommon(0x30, 4)) + 2);
    driver.status = 0;
    release();
    await new Promise((resolve) => setImmediate(resolve));
    expect(memory.readU16(usedIndexAddress)).toBe(0);
  });

  it('the legacy interface (virtio_pci.force_legacy=1) works: features, PFN, notify, ISR', () => {
    const { transport, memory, pci } = rngMachine({ mode: 'intx' });
    const legacy = transport.bars[0]!.device;
    legacy.write(0x12, 1, DeviceStatus.Acknowledge | DeviceStatus.Driver);
    expect(legacy.read(0x00, 4) & 1).toBe(0); // no VERSION_1 here (bit 32 cannot even be shown)
    legacy.write(0x04, 4, 0);
    legacy.write(0x0e, 2, 0);
    const size = legacy.read(0x0c, 2);
    expect(size).toBe(64);
    const base = 0x10_0000;
    legacy.write(0x08, 4, base / 4096);
    legacy.write(0x12, 1, DeviceStatus.Acknowledge | DeviceStatus.Driver | DeviceStatus.DriverOk);
    // One writable descriptor, published in the available ring.
    memory.writeU32(guestAddress(base), 0x20_0000);
    memory.writeU32(guestAddress(base + 8), 8);
    memory.writeU16(guestAddress(base + 12), 2);
    const available = base + 16 * size;
    memory.writeU16(guestAddress(available + 4), 0);
    memory.writeU16(guestAddress(available + 2), 1);
    legacy.write(0x10, 2, 0);
    const used = Math.ceil((available + 6 + 2 * size) / 4096) * 4096;
    expect(memory.readU16(guestAddress(used + 2))).toBe(1);
    expect(memory.readU32(guestAddress(used + 8))).toBe(8);
    expect(memory.readU8(guestAddress(0x20_0000))).toBe(0x5a);
    expect(pci.intx).toBe(true);
    expect(legacy.read(0x13, 1)).toBe(1);
    expect(pci.intx).toBe(false);
  });

  it('virtio-rng keeps to its rate limit: requests wait for the next period', () => {
    const clock = new ManualClock();
    const memory = new GuestRam({ size: 16 << 20 });
    const transport = new VirtioPci(new VirtioRng({ random: (bytes) => bytes.fill(1), rateLimit: { maxBytes: 100, periodMs: 1000 }, clock }));
    transport.attach(new TestPciContext(memory));
    const driver = new VirtioTestDriver(transport, memory);
    driver.initialize();
    driver.submit(0, { writable: [64] });
    driver.submit(0, { writable: [64] });
    driver.submit(0, { writable: [64] });
    driver.notify(0);
    expect(driver.takeUsed(0).map((done) => done.length)).toEqual([64, 36]);
    clock.advance(999_999_999);
    expect(driver.takeUsed(0)).toEqual([]);
    clock.advance(1);
    expect(driver.takeUsed(0).map((done) => done.length)).toEqual([64]);
  });
});

describe('a hostile guest', () => {
  // Random bytes where the rings and descriptors are, random indexes, any flags: the device sets NEEDS_RESET or
  // answers, never throws, never reaches outside guest RAM, and writes the disk only inside it.
  test.prop([fc.uint8Array({ minLength: 64, maxLength: 4096 }), fc.integer({ min: 0, max: 0xffff }), fc.boolean(), fc.array(fc.integer({ min: 0, max: 0xffff_ffff }), { maxLength: 32 })], { numRuns: 300 })(
    'cannot make virtio-blk throw or write outside the disk, whatever is in its rings',
    async (garbage, availableIndex, indirect, words) => {
      const memory = new GuestRam({ size: 4 << 20 });
      const backend = new MemoryBlockBackend(1 << 20);
      const transport = new VirtioPci(new VirtioBlk({ backend }));
      transport.attach(new TestPciContext(memory));
      const driver = new VirtioTestDriver(transport, memory, { base: 0x1000, queueSize: 16, accept: (offered) => (indirect ? offered : offered & ~featureMask(Feature.RingIndirectDescriptors)) });
      driver.initialize();
      const descriptors = Number(driver.readCommon(0x20, 4));
      // Garbage descriptors (addresses partly steered to interesting places), then a random available ring.
      memory.write(guestAddress(descriptors), garbage.subarray(0, Math.min(garbage.length, 16 * 16)));
      words.forEach((word, index) => memory.writeU32(guestAddress(descriptors + 4 * index), word % 3 === 0 ? word % (4 << 20) : word));
      const available = Number(driver.readCommon(0x28, 4));
      for (let slot = 0; slot < 16; slot++) memory.writeU16(guestAddress(available + 4 + 2 * slot), garbage[slot % garbage.length]! % 24);
      memory.writeU16(guestAddress(available + 2), availableIndex);
      driver.notify(0);
      for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
      expect(backend.bytes.length).toBe(1 << 20);
      const status = driver.status;
      expect(status === 0x0f || (status & DeviceStatus.NeedsReset) !== 0).toBe(true);
    },
  );
});
