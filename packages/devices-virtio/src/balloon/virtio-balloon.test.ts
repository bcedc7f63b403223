import { guestAddress } from '@tsvirt/interfaces';
import { ManualClock } from '@tsvirt/interfaces/testing';
import { GuestRam } from '@tsvirt/memory';
import { describe, expect, it } from 'vitest';
import { VirtioPci } from '../pci/virtio-pci.js';
import { TestPciContext, VirtioTestDriver } from '../testing/virtio-test-driver.js';
import { BalloonFeature, VirtioBalloon, type VirtioBalloonOptions } from './virtio-balloon.js';

const RAM = 32 << 20;
const PAGE = 4096;
/** Guest pages the inflate test fills and hands to the balloon: well above the test driver's rings and buffers. */
const POOL = 16 << 20;

function machine(options: Partial<VirtioBalloonOptions> = {}) {
  const memory = new GuestRam({ size: RAM });
  const clock = new ManualClock(0);
  const changes: number[] = [];
  const device = new VirtioBalloon({ ramBytes: RAM, clock, onChange: (bytes) => changes.push(bytes), ...options });
  const transport = new VirtioPci(device);
  const pci = new TestPciContext(memory);
  transport.attach(pci);
  const driver = new VirtioTestDriver(transport, memory);
  driver.initialize();
  return { memory, clock, changes, device, transport, pci, driver };
}

function pfnList(pfns: readonly number[]): Uint8Array {
  const bytes = new Uint8Array(4 * pfns.length);
  pfns.forEach((pfn, index) => new DataView(bytes.buffer).setUint32(4 * index, pfn, true));
  return bytes;
}

function statsBuffer(entries: ReadonlyArray<[tag: number, value: bigint]>): Uint8Array {
  const bytes = new Uint8Array(10 * entries.length);
  const view = new DataView(bytes.buffer);
  entries.forEach(([tag, value], index) => {
    view.setUint16(10 * index, tag, true);
    view.setBigUint64(10 * index + 2, value, true);
  });
  return bytes;
}

describe('virtio-balloon', () => {
  it('offers the stats queue as QEMU does, and page reporting and deflate-on-OOM only when asked', () => {
    const plain = machine().driver.offeredFeatures();
    expect((plain >> BigInt(BalloonFeature.StatsQueue)) & 1n).toBe(1n);
    expect((plain >> BigInt(BalloonFeature.PageReporting)) & 1n).toBe(0n);
    expect((plain >> BigInt(BalloonFeature.DeflateOnOom)) & 1n).toBe(0n);
    const all = machine({ freePageReporting: true, deflateOnOom: true }).driver.offeredFeatures();
    expect((all >> BigInt(BalloonFeature.PageReporting)) & 1n).toBe(1n);
    expect((all >> BigInt(BalloonFeature.DeflateOnOom)) & 1n).toBe(1n);
  });

  it('asks for pages with num_pages, discards what the driver inflates, and reports the size it writes to actual', () => {
    const { memory, device, driver, changes } = machine();
    device.setTarget(RAM - 3 * PAGE);
    expect(driver.readDeviceConfig(0, 4)).toBe(3);
    const pfns = [POOL / PAGE, POOL / PAGE + 1, POOL / PAGE + 5];
    memory.fill(guestAddress(POOL), 8 * PAGE, 0xaa);
    // Page numbers past RAM are ignored, not a fault.
    driver.submit(0, { readable: [pfnList([...pfns, RAM / PAGE + 10, 0xffff_ffff])] });
    driver.notify(0);
    expect(driver.takeUsed(0)).toHaveLength(1);
    for (const pfn of pfns) expect(memory.readU32(guestAddress(pfn * PAGE + 100))).toBe(0);
    expect(memory.readU32(guestAddress(POOL + 2 * PAGE))).toBe(0xaaaa_aaaa);
    driver.transport.bars[4]!.device.write(0x2000 + 4, 4, 3);
    expect(device.actualBytes).toBe(RAM - 3 * PAGE);
    expect(changes).toEqual([RAM - 3 * PAGE]);
    // Deflating gives the pages back untouched by the host.
    driver.submit(1, { readable: [pfnList(pfns)] });
    driver.notify(1);
    expect(driver.takeUsed(1)).toHaveLength(1);
  });

  it('keeps the target within RAM, in whole pages', () => {
    const { device, driver } = machine();
    device.setTarget(-5);
    expect(driver.readDeviceConfig(0, 4)).toBe(RAM / PAGE);
    device.setTarget(RAM * 4);
    expect(driver.readDeviceConfig(0, 4)).toBe(0);
    device.setTarget(RAM - PAGE - 1);
    expect(driver.readDeviceConfig(0, 4)).toBe(2);
  });

  it('reads statistics, holds the buffer, and gives it back at each poll to ask for fresh ones', () => {
    const { clock, device, driver } = machine();
    device.setStatisticsInterval(2);
    driver.submit(2, { readable: [statsBuffer([[4, 12_345_678n], [5, BigInt(RAM)], [99, 1n]])] });
    driver.notify(2);
    expect(driver.takeUsed(2)).toHaveLength(0);
    expect(Object.fromEntries(device.guestStatistics.values)).toEqual({ 'stat-free-memory': 12_345_678, 'stat-total-memory': RAM });
    clock.advance(2e9);
    expect(driver.takeUsed(2)).toHaveLength(1);
    clock.advance(10e9);
    expect(driver.takeUsed(2)).toHaveLength(0);
  });

  it('discards the free pages a driver reports, and gives the report back', () => {
    const { memory, driver } = machine({ freePageReporting: true });
    // The driver's next buffers land here: fill them, as free pages in a guest hold old data.
    const at = driver.allocate(1, PAGE);
    memory.fill(guestAddress(at), 4 * PAGE, 0x55);
    driver.submit(3, { writable: [2 * PAGE, PAGE] });
    driver.notify(3);
    const [report] = driver.takeUsed(3);
    expect(report?.length).toBe(0);
    expect(report?.writable.map((buffer) => buffer.length)).toEqual([2 * PAGE, PAGE]);
    expect(report?.writable.every((buffer) => buffer.every((byte) => byte === 0))).toBe(true);
    expect(memory.readU32(guestAddress(at + 4 * PAGE - 4))).toBe(0x5555_5555);
  });

  it('saves and restores its registers and the held statistics buffer, and refuses a corrupt state', () => {
    const a = machine();
    a.device.setTarget(RAM / 2);
    a.driver.transport.bars[4]!.device.write(0x2000 + 4, 4, 7);
    const saved = JSON.parse(JSON.stringify(a.device.save())) as unknown;
    const b = machine();
    b.device.restore(saved, undefined);
    expect(b.device.save()).toEqual(a.device.save());
    expect(b.device.actualBytes).toBe(RAM - 7 * PAGE);
    expect(() => b.device.restore({ ...a.device.save(), actualPages: RAM }, undefined)).toThrow(/actualPages/);
    expect(() => b.device.restore({ ...a.device.save(), statsHead: 500 }, undefined)).toThrow(/statsHead/);
  });
});
