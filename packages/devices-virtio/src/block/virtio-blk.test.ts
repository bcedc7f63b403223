import type { BlockBackend } from '@tsvirt/interfaces';
import { MemoryBlockBackend } from '@tsvirt/interfaces/testing';
import { GuestRam } from '@tsvirt/memory';
import { describe, expect, it } from 'vitest';
import { VirtioPci } from '../pci/virtio-pci.js';
import { TestPciContext, VirtioTestDriver } from '../testing/virtio-test-driver.js';
import { BlockFeature, VirtioBlk, type VirtioBlkOptions } from './virtio-blk.js';

const SECTOR = 512;

function header(type: number, sector: number): Uint8Array {
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, type, true);
  view.setUint32(8, sector % 0x1_0000_0000, true);
  view.setUint32(12, Math.floor(sector / 0x1_0000_0000), true);
  return bytes;
}

function pattern(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 7 + seed) & 0xff);
}

/** Lets the device's asynchronous backend calls finish. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** A memory disk that can also discard and write zeroes (reading zeros afterwards). */
class DiscardingBackend extends MemoryBlockBackend {
  async discard(offset: number, length: number): Promise<void> {
    this.bytes.fill(0, offset, offset + length);
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    this.bytes.fill(0, offset, offset + length);
  }
}

function machine(options: Partial<VirtioBlkOptions> & { backend?: BlockBackend } = {}) {
  const memory = new GuestRam({ size: 32 << 20 });
  const backend = options.backend ?? new DiscardingBackend(8 << 20);
  const device = new VirtioBlk({ ...options, backend });
  const transport = new VirtioPci(device);
  const pci = new TestPciContext(memory);
  transport.attach(pci);
  const driver = new VirtioTestDriver(transport, memory);
  driver.initialize();
  return { memory, backend, device, transport, pci, driver };
}

describe('virtio-blk', () => {
  it('offers what Linux looks for and reports the capacity in 512-byte sectors', () => {
    const { driver } = machine({ serial: 'disk-1' });
    const offered = driver.offeredFeatures();
    for (const bit of [BlockFeature.SegMax, BlockFeature.BlockSize, BlockFeature.Flush, BlockFeature.Discard, BlockFeature.WriteZeroes]) expect((offered >> BigInt(bit)) & 1n, `feature ${bit}`).toBe(1n);
    expect((offered >> BigInt(BlockFeature.ReadOnly)) & 1n).toBe(0n);
    expect(driver.readDeviceConfig(0, 4)).toBe((8 << 20) / SECTOR);
    expect(driver.readDeviceConfig(4, 4)).toBe(0);
    expect(driver.readDeviceConfig(20, 4)).toBe(SECTOR);
  });

  it('writes and reads back through scattered buffers, direct and indirect, and answers GET_ID with the serial', async () => {
    const { driver, backend, pci } = machine({ serial: 'disk-1' });
    const data = pattern(3 * SECTOR, 5);
    driver.submit(0, { readable: [header(1, 10), data.subarray(0, 700), data.subarray(700)], writable: [1] });
    driver.notify(0);
    await settle();
    const [write] = driver.takeUsed(0);
    expect(write!.writable[0]).toEqual(Uint8Array.of(0));
    expect((backend as MemoryBlockBackend).bytes.subarray(10 * SECTOR, 13 * SECTOR)).toEqual(data);
    const readHead = driver.submit(0, { readable: [header(0, 10)], writable: [SECTOR, 2 * SECTOR, 1], indirect: true });
    const idHead = driver.submit(0, { readable: [header(8, 0)], writable: [20, 1] });
    driver.notify(0);
    await settle();
    // Requests complete in any order; the used ring says which.
    const done = driver.takeUsed(0);
    const read = done.find((entry) => entry.head === readHead);
    const id = done.find((entry) => entry.head === idHead);
    expect(read!.length).toBe(3 * SECTOR + 1);
    expect(new Uint8Array([...read!.writable[0]!, ...read!.writable[1]!])).toEqual(data);
    expect(read!.writable[2]).toEqual(Uint8Array.of(0));
    expect(new TextDecoder().decode(id!.writable[0]!.subarray(0, 6))).toBe('disk-1');
    // MSI-X: the queue's vector (1) was signalled.
    expect(pci.msiVectors).toContain(1);
  });

  it('answers IOERR for requests outside the disk or not in whole sectors, UNSUPP for unknown types, and stays usable', async () => {
    const { driver } = machine();
    const capacity = (8 << 20) / SECTOR;
    driver.submit(0, { readable: [header(0, capacity)], writable: [SECTOR, 1] });
    driver.submit(0, { readable: [header(0, capacity - 1)], writable: [2 * SECTOR, 1] });
    driver.submit(0, { readable: [header(1, 0), new Uint8Array(100)], writable: [1] });
    driver.submit(0, { readable: [header(0, 2 ** 53 - 1)], writable: [SECTOR, 1] });
    driver.submit(0, { readable: [header(99, 0)], writable: [1] });
    driver.submit(0, { readable: [header(0, 0)], writable: [SECTOR, 1] });
    driver.notify(0);
    await settle();
    const statuses = driver.takeUsed(0).map((done) => done.writable.at(-1)![0]);
    expect(statuses).toEqual([1, 1, 1, 1, 2, 0]);
  });

  it('discards and writes zeroes where the backend can, and refuses writes on a read-only disk', async () => {
    const { driver, backend } = machine();
    (backend as MemoryBlockBackend).bytes.fill(0xaa, 0, 64 * SECTOR);
    const segment = new Uint8Array(16);
    const view = new DataView(segment.buffer);
    view.setUint32(0, 8, true);
    view.setUint32(8, 4, true);
    driver.submit(0, { readable: [header(13, 0), segment], writable: [1] });
    driver.notify(0);
    await settle();
    expect(driver.takeUsed(0)[0]!.writable[0]).toEqual(Uint8Array.of(0));
    expect((backend as MemoryBlockBackend).bytes.subarray(8 * SECTOR, 12 * SECTOR).every((byte) => byte === 0)).toBe(true);
    expect((backend as MemoryBlockBackend).bytes[12 * SECTOR]).toBe(0xaa);

    const readOnly = machine({ readOnly: true });
    expect((readOnly.driver.offeredFeatures() >> BigInt(BlockFeature.ReadOnly)) & 1n).toBe(1n);
    readOnly.driver.submit(0, { readable: [header(1, 0), new Uint8Array(SECTOR).fill(1)], writable: [1] });
    readOnly.driver.notify(0);
    await settle();
    expect(readOnly.driver.takeUsed(0)[0]!.writable[0]).toEqual(Uint8Array.of(1));
    expect((readOnly.backend as MemoryBlockBackend).bytes[0]).toBe(0);
  });

  it('a backend failure is an I/O error for that request only', async () => {
    const failing = new MemoryBlockBackend(1 << 20);
    failing.readAt = async () => {
      throw new Error('disk on fire');
    };
    const { driver } = machine({ backend: failing });
    driver.submit(0, { readable: [header(0, 0)], writable: [SECTOR, 1] });
    driver.submit(0, { readable: [header(1, 0), new Uint8Array(SECTOR)], writable: [1] });
    driver.notify(0);
    await settle();
    expect(driver.takeUsed(0).map((done) => done.writable.at(-1)![0]).sort()).toEqual([0, 1]);
  });

  it('save → restore into a fresh device → continue equals continue, with requests in flight', async () => {
    // A backend whose operations wait until released, so requests are in flight at the save.
    class HeldBackend extends MemoryBlockBackend {
      held: Array<() => void> = [];
      override async readAt(offset: number, into: Uint8Array): Promise<void> {
        await new Promise<void>((resolve) => this.held.push(resolve));
        return super.readAt(offset, into);
      }
    }
    const backend = new HeldBackend(1 << 20);
    backend.bytes.set(pattern(4 * SECTOR, 9), 2 * SECTOR);
    const original = machine({ backend });
    original.driver.submit(0, { readable: [header(0, 2)], writable: [4 * SECTOR, 1] });
    original.driver.notify(0);
    await settle();
    expect(backend.held).toHaveLength(1);
    const state = JSON.parse(JSON.stringify(original.transport.save()));

    // The copy: same guest memory contents, a fresh device and transport on the same disk.
    const copyBackend = new MemoryBlockBackend(1 << 20);
    copyBackend.bytes.set(backend.bytes);
    const device = new VirtioBlk({ backend: copyBackend });
    const transport = new VirtioPci(device);
    transport.attach(new TestPciContext(original.memory));
    transport.restore(state);
    await settle();
    const fromCopy = original.driver.takeUsed(0);
    expect(fromCopy).toHaveLength(1);
    expect(fromCopy[0]!.writable[0]).toEqual(pattern(4 * SECTOR, 9));
    expect(() => transport.restore({ ...state, status: 300 })).toThrow(/status/);
  });
});
