import type { CharacterBackend, CharacterFrontend } from '@tsvirt/interfaces';
import { GuestRam } from '@tsvirt/memory';
import { describe, expect, it } from 'vitest';
import { VirtioPci } from '../pci/virtio-pci.js';
import { TestPciContext, VirtioTestDriver } from '../testing/virtio-test-driver.js';
import { VirtioConsole } from './virtio-console.js';

/** A host end that records what the guest wrote and offers input as the device has room. */
class HostEnd implements CharacterBackend {
  written = '';
  private frontend: CharacterFrontend | undefined;
  private pending: number[] = [];

  write(data: Uint8Array): void {
    this.written += new TextDecoder().decode(data);
  }

  connect(frontend: CharacterFrontend): void {
    this.frontend = frontend;
  }

  notifyReceiveReady(): void {
    this.pump();
  }

  type(text: string): void {
    this.pending.push(...new TextEncoder().encode(text));
    this.pump();
  }

  private pump(): void {
    const room = this.frontend?.receiveCapacity() ?? 0;
    if (room > 0 && this.pending.length > 0) this.frontend!.receive(Uint8Array.from(this.pending.splice(0, room)));
  }
}

function control(id: number, event: number, value: number): Uint8Array {
  const message = new Uint8Array(8);
  const view = new DataView(message.buffer);
  view.setUint32(0, id, true);
  view.setUint16(4, event, true);
  view.setUint16(6, value, true);
  return message;
}

function decodeControl(bytes: Uint8Array, length: number): { id: number; event: number; value: number; payload: string } {
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  return { id: view.getUint32(0, true), event: view.getUint16(4, true), value: view.getUint16(6, true), payload: new TextDecoder().decode(bytes.subarray(8, length)) };
}

describe('virtio-console (multiport)', () => {
  it("announces its ports as Linux's virtio_console asks, and moves bytes both ways on the console and a named port", () => {
    const memory = new GuestRam({ size: 32 << 20 });
    const console0 = new HostEnd();
    const named = new HostEnd();
    const transport = new VirtioPci(new VirtioConsole({ ports: [{ backend: console0, console: true }, { backend: named, name: 'org.tsvirt.test' }], maxPorts: 4 }));
    transport.attach(new TestPciContext(memory));
    const driver = new VirtioTestDriver(transport, memory);
    driver.initialize();
    expect(driver.readDeviceConfig(4, 4)).toBe(4);
    for (let i = 0; i < 8; i++) driver.submit(2, { writable: [64] });
    driver.notify(2);
    driver.submit(3, { readable: [control(0xffff_ffff, 0, 1)] }); // DEVICE_READY
    driver.notify(3);
    const added = driver.takeUsed(2).map((done) => decodeControl(done.writable[0]!, done.length));
    expect(added).toEqual([
      { id: 0, event: 1, value: 1, payload: '' },
      { id: 1, event: 1, value: 1, payload: '' },
    ]);
    driver.submit(3, { readable: [control(0, 3, 1)] }); // PORT_READY
    driver.submit(3, { readable: [control(1, 3, 1)] });
    driver.notify(3);
    const announced = driver.takeUsed(2).map((done) => decodeControl(done.writable[0]!, done.length));
    expect(announced).toEqual([
      { id: 0, event: 4, value: 1, payload: '' }, // CONSOLE_PORT
      { id: 0, event: 6, value: 1, payload: '' }, // PORT_OPEN (host side)
      { id: 1, event: 7, value: 1, payload: 'org.tsvirt.test' }, // PORT_NAME
      { id: 1, event: 6, value: 1, payload: '' },
    ]);

    // Host input waits for receive buffers, then fills them.
    console0.type('hello guest');
    driver.submit(0, { writable: [5] });
    driver.submit(0, { writable: [64] });
    driver.notify(0);
    const received = driver.takeUsed(0).map((done) => new TextDecoder().decode(done.writable[0]!.subarray(0, done.length))).join('');
    expect(received).toBe('hello guest');
    // Guest output on port 1 (queues 4 and 5) and on the console (queue 1).
    driver.submit(5, { readable: [new TextEncoder().encode('to the named port')] });
    driver.notify(5);
    driver.submit(1, { readable: [new TextEncoder().encode('to hvc0')] });
    driver.notify(1);
    expect(named.written).toBe('to the named port');
    expect(console0.written).toBe('to hvc0');
    expect(driver.takeUsed(5)).toHaveLength(1);

    // Saved and restored with buffers held and messages waiting.
    driver.submit(4, { writable: [16] });
    driver.notify(4);
    const state = JSON.parse(JSON.stringify(transport.save()));
    const copy = new VirtioPci(new VirtioConsole({ ports: [{ backend: new HostEnd(), console: true }, { backend: named, name: 'org.tsvirt.test' }], maxPorts: 4 }));
    copy.attach(new TestPciContext(memory));
    copy.restore(state);
    named.type('after restore');
    expect(new TextDecoder().decode(driver.takeUsed(4)[0]!.writable[0]!)).toBe('after restore\0\0\0');
  });
});
