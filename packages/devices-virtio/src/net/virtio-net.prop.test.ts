import { fc, test } from '@fast-check/vitest';
import { ETHERNET_HEADER_BYTES, guestAddress, MAX_FRAME_BYTES } from '@tsvirt/interfaces';
import { MemoryNetworkBackend } from '@tsvirt/interfaces/testing';
import { GuestRam } from '@tsvirt/memory';
import { describe, expect } from 'vitest';
import { VirtioPci } from '../pci/virtio-pci.js';
import { DeviceStatus, Feature, featureMask } from '../spec.js';
import { TestPciContext, VirtioTestDriver } from '../testing/virtio-test-driver.js';
import { VirtioNet } from './virtio-net.js';

describe('virtio-net and a hostile guest', () => {
  // Random bytes where the three queues' descriptors and rings are, random indexes, frames arriving from the
  // host meanwhile: the device answers or sets NEEDS_RESET, never throws, never reaches outside guest RAM,
  // and passes the back end only frames of a legal size.
  test.prop(
    [
      fc.uint8Array({ minLength: 64, maxLength: 4096 }),
      fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 3, maxLength: 3 }),
      fc.boolean(),
      fc.boolean(),
      fc.array(fc.integer({ min: 0, max: 0xffff_ffff }), { maxLength: 48 }),
      fc.array(fc.integer({ min: 0, max: 9000 }), { maxLength: 6 }),
    ],
    { numRuns: 200 },
  )('cannot make virtio-net throw, whatever is in its rings', (garbage, availableIndexes, indirect, mergeable, words, arriving) => {
    const memory = new GuestRam({ size: 4 << 20 });
    const backend = new MemoryNetworkBackend();
    const transport = new VirtioPci(new VirtioNet({ backend, queueSize: 16 }));
    transport.attach(new TestPciContext(memory));
    const drop = (indirect ? 0n : featureMask(Feature.RingIndirectDescriptors)) | (mergeable ? 0n : 1n << 15n);
    const driver = new VirtioTestDriver(transport, memory, { base: 0x1000, queueSize: 16, accept: (offered) => offered & ~drop });
    driver.initialize();
    for (let queue = 0; queue < 3; queue++) {
      driver.writeCommon(0x16, 2, queue);
      const size = driver.readCommon(0x18, 2);
      const descriptors = driver.readCommon(0x20, 4);
      memory.write(guestAddress(descriptors), garbage.subarray(0, Math.min(garbage.length, 16 * size)));
      words.forEach((word, index) => memory.writeU32(guestAddress(descriptors + 4 * ((index * 7 + queue) % (4 * size))), word % 3 === 0 ? word % (4 << 20) : word));
      const available = driver.readCommon(0x28, 4);
      for (let slot = 0; slot < size; slot++) memory.writeU16(guestAddress(available + 4 + 2 * slot), garbage[(slot + queue) % garbage.length]! % (size + 8));
      memory.writeU16(guestAddress(available + 2), availableIndexes[queue]!);
    }
    expect(() => {
      for (const length of arriving) backend.inject(new Uint8Array(Math.max(ETHERNET_HEADER_BYTES, length)));
      for (const queue of [1, 2, 0]) driver.notify(queue);
      backend.inject(new Uint8Array(60));
    }).not.toThrow();
    for (const frame of backend.sent) expect(frame.length >= ETHERNET_HEADER_BYTES && frame.length <= MAX_FRAME_BYTES).toBe(true);
    const status = driver.status;
    expect(status === 0x0f || (status & DeviceStatus.NeedsReset) !== 0).toBe(true);
  });
});
