import { guestAddress } from '@tsvirt/interfaces';
import { MemoryNetworkBackend } from '@tsvirt/interfaces/testing';
import { GuestRam } from '@tsvirt/memory';
import { describe, expect, it } from 'vitest';
import { VirtioPci } from '../pci/virtio-pci.js';
import { DeviceStatus, Feature } from '../spec.js';
import { TestPciContext, VirtioTestDriver, type VirtioTestDriverOptions } from '../testing/virtio-test-driver.js';
import { completeChecksum, NetFeature, VirtioNet, type VirtioNetEvent } from './virtio-net.js';

const MAC = Uint8Array.of(0x52, 0x54, 0x00, 0xab, 0xcd, 0xef);
const OTHER = Uint8Array.of(0x52, 0x54, 0x00, 0x00, 0x00, 0x01);
const BROADCAST = new Uint8Array(6).fill(0xff);

/** An Ethernet frame to `destination` of `length` bytes, its payload a pattern from `seed`. */
function ethernet(destination: Uint8Array, length: number, seed = 1): Uint8Array {
  const frame = Uint8Array.from({ length }, (_, i) => (i * 13 + seed) & 0xff);
  frame.set(destination, 0);
  frame.set(OTHER, 6);
  frame.set([0x08, 0x00], 12);
  return frame;
}

/** A virtio_net_hdr (12 bytes): flags, gso type, csum_start, csum_offset. */
function netHeader(options: { flags?: number; gso?: number; start?: number; offset?: number } = {}): Uint8Array {
  const header = new Uint8Array(12);
  const view = new DataView(header.buffer);
  header[0] = options.flags ?? 0;
  header[1] = options.gso ?? 0;
  view.setUint16(6, options.start ?? 0, true);
  view.setUint16(8, options.offset ?? 0, true);
  return header;
}

function machine(options: VirtioTestDriverOptions & { queueSize?: number } = {}) {
  const memory = new GuestRam({ size: 32 << 20 });
  const backend = new MemoryNetworkBackend();
  const events: VirtioNetEvent[] = [];
  const device = new VirtioNet({ backend, mac: MAC, observer: (event) => events.push(event), ...(options.queueSize === undefined ? {} : { queueSize: options.queueSize }) });
  const transport = new VirtioPci(device);
  const pci = new TestPciContext(memory);
  transport.attach(pci);
  const driver = new VirtioTestDriver(transport, memory, options);
  driver.initialize();
  driver.writeCommon(0x10, 2, 0); // configuration changes on MSI-X vector 0
  return { memory, backend, device, transport, pci, driver, events };
}

/** Posts `count` receive buffers of `size` bytes and kicks. */
function postReceive(driver: VirtioTestDriver, count: number, size = 1526): void {
  for (let i = 0; i < count; i++) driver.submit(0, { writable: [size] });
  driver.notify(0);
}

/** What the device wrote into completed receive buffers, joined: [num_buffers, frame]. */
function received(driver: VirtioTestDriver): Array<{ buffers: number; frame: Uint8Array }> {
  const done = driver.takeUsed(0);
  const packets: Array<{ buffers: number; frame: Uint8Array }> = [];
  for (let i = 0; i < done.length; ) {
    const first = done[i]!;
    const buffers = new DataView(first.writable[0]!.buffer).getUint16(10, true);
    const parts = done.slice(i, i + buffers).map((part) => part.writable[0]!.subarray(0, part.length));
    const joined = Uint8Array.from(parts.flatMap((part) => Array.from(part)));
    packets.push({ buffers, frame: joined.subarray(12) });
    i += buffers;
  }
  return packets;
}

const controlCommand = (commandClass: number, command: number, data: number[]) => Uint8Array.from([commandClass, command, ...data]);

describe('virtio-net', () => {
  it('offers MAC, STATUS, mergeable buffers, CSUM and the control queue, with the MAC and link in its configuration', () => {
    const { driver, backend, pci } = machine();
    const offered = driver.offeredFeatures();
    for (const bit of [NetFeature.Csum, NetFeature.Mac, NetFeature.MergeableRxBuffers, NetFeature.Status, NetFeature.ControlQueue, NetFeature.ControlRx, NetFeature.ControlMacAddress, Feature.Version1]) {
      expect((offered >> BigInt(bit)) & 1n, `feature ${bit}`).toBe(1n);
    }
    for (const bit of [NetFeature.GuestCsum, NetFeature.Multiqueue, NetFeature.GuestAnnounce]) expect((offered >> BigInt(bit)) & 1n, `feature ${bit}`).toBe(0n);
    expect(Array.from({ length: 6 }, (_, i) => driver.readDeviceConfig(i, 1))).toEqual(Array.from(MAC));
    expect(driver.readDeviceConfig(6, 2)).toBe(1); // VIRTIO_NET_S_LINK_UP
    expect(driver.readDeviceConfig(8, 2)).toBe(1); // one queue pair
    expect(driver.readCommon(0x12, 2)).toBe(3);

    // The back end's link goes down: a configuration interrupt, and the status says so.
    pci.msiVectors.length = 0;
    backend.setLink(false);
    expect(driver.readDeviceConfig(6, 2)).toBe(0);
    expect(pci.msiVectors).toEqual([0]);
    backend.setLink(true);
    expect(driver.readDeviceConfig(6, 2)).toBe(1);
  });

  it('sends what the guest transmits, header stripped, with the header and frame in one buffer or several', () => {
    const { driver, backend, device } = machine();
    const a = ethernet(BROADCAST, 60);
    const b = ethernet(OTHER, 1514, 7);
    driver.submit(1, { readable: [Uint8Array.from([...netHeader(), ...a])] });
    driver.submit(1, { readable: [netHeader(), b.subarray(0, 100), b.subarray(100)], indirect: true });
    driver.notify(1);
    expect(backend.sent).toEqual([a, b]);
    expect(driver.takeUsed(1).map((done) => done.length)).toEqual([0, 0]);
    expect(device.statistics.transmitted).toBe(2);
  });

  it('stops taking frames from the guest while the back end is congested, and goes on when it drains', () => {
    const { driver, backend } = machine();
    backend.congested = true;
    for (let i = 0; i < 5; i++) driver.submit(1, { readable: [netHeader(), ethernet(OTHER, 64, i)] });
    driver.notify(1);
    // The first send said "pause": the other four wait in the ring.
    expect(backend.sent).toHaveLength(1);
    expect(driver.takeUsed(1)).toHaveLength(1);
    driver.notify(1);
    expect(backend.sent).toHaveLength(1);
    backend.drain();
    expect(backend.sent.map((frame) => frame[14])).toEqual([0, 1, 2, 3, 4].map((i) => ethernet(OTHER, 64, i)[14]));
    expect(driver.takeUsed(1)).toHaveLength(4);
  });

  it('drops (and counts) frames the guest describes wrongly, returning their buffers, without a reset', () => {
    const { driver, backend, device, events } = machine();
    driver.submit(1, { readable: [new Uint8Array(8)] }); // shorter than the header
    driver.submit(1, { readable: [netHeader(), new Uint8Array(10)] }); // a runt
    driver.submit(1, { readable: [netHeader({ gso: 1 }), ethernet(OTHER, 100)] }); // TSO was not offered
    driver.submit(1, { readable: [netHeader({ flags: 1, start: 90, offset: 20 }), ethernet(OTHER, 100)] }); // checksum outside the frame
    driver.submit(1, { readable: [netHeader(), ethernet(OTHER, 100)] });
    driver.notify(1);
    expect(backend.sent).toEqual([ethernet(OTHER, 100)]);
    expect(driver.takeUsed(1)).toHaveLength(5);
    expect(device.statistics.transmitErrors).toBe(4);
    expect(events.map((event) => event.reason)).toEqual([
      'a 8-byte transmit chain (the header is 12)',
      'a 22-byte transmit chain (the header is 12)',
      'GSO type 1, which was not offered',
      'a checksum at 110 (from 90) outside a 100-byte frame',
    ]);
    expect(driver.status & DeviceStatus.NeedsReset).toBe(0);
  });

  it('completes a partial checksum (CSUM) as the host stack would compute it', () => {
    const { driver, backend } = machine();
    // A UDP packet in IPv4: the checksum field holds the pseudo-header sum, as Linux leaves it.
    const frame = ethernet(OTHER, 14 + 20 + 8 + 37);
    const udp = 14 + 20;
    frame.fill(0, udp + 6, udp + 8);
    const reference = frame.slice();
    completeChecksum(reference, udp, udp + 6);
    driver.submit(1, { readable: [netHeader({ flags: 1, start: udp, offset: 6 }), frame] });
    driver.notify(1);
    expect(backend.sent[0]).toEqual(reference);
    // A sum over the checksummed range, checksum included, folds to 0xffff.
    let sum = 0;
    for (let i = udp; i < reference.length; i += 2) sum += (reference[i]! << 8) | (reference[i + 1] ?? 0);
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    expect(sum).toBe(0xffff);
  });

  it('delivers frames into mergeable receive buffers, a large one across several with num_buffers', () => {
    const { driver, backend, device } = machine();
    postReceive(driver, 4, 1526);
    const small = ethernet(MAC, 60);
    const large = ethernet(MAC, 3000, 3);
    backend.inject(small);
    backend.inject(large);
    expect(received(driver)).toEqual([
      { buffers: 1, frame: small },
      { buffers: 2, frame: large },
    ]);
    expect(device.statistics.received).toBe(2);
    expect(backend.pending).toBe(0);
  });

  it('leaves frames with the back end while the guest has no receive buffers, and takes them when it adds some', () => {
    const { driver, backend } = machine();
    for (let i = 0; i < 3; i++) backend.inject(ethernet(MAC, 100, i));
    expect(backend.pending).toBe(3);
    postReceive(driver, 2);
    expect(backend.pending).toBe(1);
    postReceive(driver, 1);
    expect(backend.pending).toBe(0);
    expect(received(driver).map((packet) => packet.frame)).toEqual([0, 1, 2].map((i) => ethernet(MAC, 100, i)));
  });

  it('without mergeable buffers: one buffer per frame, and a frame too large for it is dropped while the buffer is kept', () => {
    const { driver, backend, device } = machine({ accept: (offered) => offered & ~(1n << BigInt(NetFeature.MergeableRxBuffers)) });
    postReceive(driver, 1, 200);
    backend.inject(ethernet(MAC, 1000));
    expect(device.statistics.receiveErrors).toBe(1);
    backend.inject(ethernet(MAC, 150));
    expect(received(driver)).toEqual([{ buffers: 1, frame: ethernet(MAC, 150) }]);
  });

  it('filters by RX mode and MAC table once the driver leaves promiscuous mode, and takes a new MAC', () => {
    const { driver, backend, device } = machine();
    postReceive(driver, 16);
    backend.inject(ethernet(OTHER, 60)); // promiscuous after reset, as QEMU
    driver.submit(2, { readable: [controlCommand(0, 0, [0])], writable: [1] }); // RX_PROMISC off
    driver.submit(2, { readable: [controlCommand(0, 5, [1])], writable: [1] }); // NOBCAST: needs CTRL_RX_EXTRA, not offered
    driver.notify(2);
    expect(driver.takeUsed(2).map((done) => done.writable[0]![0])).toEqual([0, 1]);
    const multicast = Uint8Array.of(0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb);
    backend.inject(ethernet(OTHER, 60, 2)); // not ours: filtered
    backend.inject(ethernet(MAC, 60, 3));
    backend.inject(ethernet(BROADCAST, 60, 4));
    backend.inject(ethernet(multicast, 60, 5)); // not in the table: filtered
    // MAC_TABLE_SET: one unicast (OTHER), one multicast.
    driver.submit(2, { readable: [controlCommand(1, 0, [1, 0, 0, 0, ...OTHER, 1, 0, 0, 0, ...multicast])], writable: [1] });
    driver.submit(2, { readable: [controlCommand(1, 0, [9, 0, 0, 0])], writable: [1] }); // a table longer than its bytes
    driver.notify(2);
    expect(driver.takeUsed(2).map((done) => done.writable[0]![0])).toEqual([0, 1]);
    backend.inject(ethernet(OTHER, 60, 6));
    backend.inject(ethernet(multicast, 60, 7));
    // MAC_ADDR_SET: the device now answers to OTHER's neighbour.
    const next = Uint8Array.of(0x52, 0x54, 0x00, 0x99, 0x99, 0x99);
    driver.submit(2, { readable: [controlCommand(1, 1, [...next])], writable: [1] });
    driver.notify(2);
    expect(driver.takeUsed(2)[0]!.writable[0]![0]).toBe(0);
    expect(Array.from(device.mac)).toEqual(Array.from(next));
    backend.inject(ethernet(MAC, 60, 8)); // the old address: filtered
    backend.inject(ethernet(next, 60, 9));
    expect(received(driver).map((packet) => packet.frame[14])).toEqual([1, 3, 4, 6, 7, 9].map((seed) => ethernet(MAC, 60, seed)[14]));
    expect(device.statistics.filtered).toBe(3);
  });

  it('a driver that breaks the ring rules gets NEEDS_RESET, and the device never throws', () => {
    const { driver, backend, memory } = machine();
    const head = driver.submit(1, { readable: [netHeader(), ethernet(OTHER, 60)] });
    const queues = (driver as unknown as { queues: Array<{ descriptors: number }> }).queues;
    // The descriptor now points past the end of RAM.
    memory.writeU32(guestAddress(queues[1]!.descriptors + 16 * head), 0xffff_f000);
    memory.writeU32(guestAddress(queues[1]!.descriptors + 16 * head + 4), 0x10);
    expect(() => driver.notify(1)).not.toThrow();
    expect(driver.status & DeviceStatus.NeedsReset).toBe(DeviceStatus.NeedsReset);
    expect(backend.sent).toEqual([]);
    expect(() => backend.inject(ethernet(MAC, 60))).not.toThrow();
  });

  it('returns receive chains it cannot write a header into, and keeps going', () => {
    const { driver, backend } = machine();
    driver.submit(0, { readable: [new Uint8Array(64)] });
    driver.submit(0, { writable: [4] });
    postReceive(driver, 1);
    backend.inject(ethernet(MAC, 80));
    const done = driver.takeUsed(0);
    expect(done.map((entry) => entry.length)).toEqual([0, 0, 92]);
    expect(driver.status & DeviceStatus.NeedsReset).toBe(0);
  });

  it('saves and restores with receive buffers held and the filter set, and continues as it would have', () => {
    const { driver, backend, transport, memory } = machine();
    postReceive(driver, 4, 1526);
    driver.submit(2, { readable: [controlCommand(0, 0, [0])], writable: [1] });
    driver.notify(2);
    backend.inject(ethernet(MAC, 2000)); // takes two buffers: the other two are held by the device
    const state = JSON.parse(JSON.stringify(transport.save()));

    const backend2 = new MemoryNetworkBackend();
    const copy = new VirtioPci(new VirtioNet({ backend: backend2, mac: MAC }));
    copy.attach(new TestPciContext(memory));
    copy.restore(state);
    backend2.inject(ethernet(OTHER, 60)); // still filtered: promiscuous mode stays off
    backend2.inject(ethernet(MAC, 1000, 5));
    expect(received(driver).map((packet) => packet.frame)).toEqual([ethernet(MAC, 2000), ethernet(MAC, 1000, 5)]);
    expect(backend2.pending).toBe(0);
    // A damaged state is refused with a clear error.
    const broken = structuredClone(state);
    broken.device.filter.modes = [true];
    expect(() => new VirtioPci(new VirtioNet({ backend: new MemoryNetworkBackend() })).restore(broken)).toThrow(/modes/);
  });

  it('refuses a MAC that is not six bytes or is multicast', () => {
    expect(() => new VirtioNet({ backend: new MemoryNetworkBackend(), mac: new Uint8Array(5) })).toThrow(/6 bytes/);
    expect(() => new VirtioNet({ backend: new MemoryNetworkBackend(), mac: Uint8Array.of(1, 0, 0, 0, 0, 0) })).toThrow(/multicast/);
  });
});
