import { createSocket } from 'node:dgram';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { RecordingNetworkFrontend } from '../testing/index.js';
import { DgramNetworkBackend } from './dgram-backend.js';
import type { NetworkBackendEvent } from './frame-link.js';
import { encodeStreamFrame } from './stream-framing.js';
import { StreamNetworkBackend } from './stream-backend.js';

/** A frame of `length` bytes whose every byte says which frame it is. */
const frame = (tag: number, length = 60) => new Uint8Array(length).fill(tag & 0xff);
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function streamServer(events: NetworkBackendEvent[] = []): Promise<{ link: StreamNetworkBackend; port: number }> {
  const link = await StreamNetworkBackend.open({ server: true, address: { type: 'inet', host: '127.0.0.1', port: 0 }, observer: (event) => events.push(event) });
  cleanups.push(() => link.close());
  const address = link.localAddress;
  if (address.type !== 'inet') throw new Error('expected a TCP address');
  return { link, port: address.port };
}

/** A raw TCP peer, as QEMU or passt would be. */
async function rawPeer(port: number): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  cleanups.push(() => void socket.destroy());
  return socket;
}

describe('StreamNetworkBackend (QEMU -netdev stream)', () => {
  it('moves frames both ways between a server and a client, and reports the link', async () => {
    const { link: server, port } = await streamServer();
    const serverNic = new RecordingNetworkFrontend();
    const links: boolean[] = [];
    server.connect({ receive: (f) => serverNic.receive(f), transmitReady: () => {}, linkChanged: (up) => links.push(up) });
    expect(links).toEqual([false]);
    const client = await StreamNetworkBackend.open({ server: false, address: { type: 'inet', host: '127.0.0.1', port } });
    cleanups.push(() => client.close());
    const clientNic = new RecordingNetworkFrontend();
    client.connect(clientNic);
    await until(() => server.linkUp, 'the server to see its peer');
    expect(links).toEqual([false, true]);
    for (let i = 0; i < 50; i++) expect(client.send(frame(i, 60 + i * 20))).toBe(true);
    server.send(frame(0xee, 1514));
    await serverNic.waitForFrames(50);
    await clientNic.waitForFrames(1);
    expect(serverNic.frames).toEqual(Array.from({ length: 50 }, (_, i) => frame(i, 60 + i * 20)));
    expect(clientNic.frames).toEqual([frame(0xee, 1514)]);
    expect(server.statistics).toMatchObject({ receivedFrames: 50, sentFrames: 1, dropped: 0 });
    await client.close();
    await until(() => !server.linkUp, 'the link to go down');
    expect(links).toEqual([false, true, false]);
  });

  it('speaks the 4-byte big-endian length prefix on the wire', async () => {
    const { link, port } = await streamServer();
    const nic = new RecordingNetworkFrontend();
    link.connect(nic);
    const peer = await rawPeer(port);
    const received: Buffer[] = [];
    peer.on('data', (chunk: Buffer) => received.push(chunk));
    // Two frames written byte by byte, as a peer's segments may arrive.
    const bytes = Buffer.concat([Buffer.from([0, 0, 0, 20]), Buffer.alloc(20, 7), Buffer.from([0, 0, 0x05, 0xea]), Buffer.alloc(1514, 9)]);
    for (const byte of bytes) peer.write(Buffer.of(byte));
    await nic.waitForFrames(2);
    expect(nic.frames).toEqual([frame(7, 20), frame(9, 1514)]);
    await until(() => link.linkUp, 'the link');
    link.send(frame(3, 64));
    await until(() => Buffer.concat(received).length >= 68, 'the frame on the wire');
    expect(Buffer.concat(received)).toEqual(Buffer.concat([Buffer.from([0, 0, 0, 64]), Buffer.alloc(64, 3)]));
  });

  it('holds frames a NIC without receive buffers refuses, pauses the socket, and drops nothing', async () => {
    const { link, port } = await streamServer();
    const nic = new RecordingNetworkFrontend(3);
    link.connect(nic);
    const peer = await rawPeer(port);
    const count = 2000;
    for (let i = 0; i < count; i++) peer.write(encodeStreamFrame(frame(i, 1000)));
    await nic.waitForFrames(3);
    await until(() => link.heldFrames > 0, 'frames to be held');
    await new Promise((resolve) => setTimeout(resolve, 100));
    // The socket is paused: far fewer than all of them were read while the NIC was full.
    expect(nic.frames).toHaveLength(3);
    expect(link.heldFrames).toBeLessThan(count - 3);
    while (nic.frames.length < count) {
      nic.room = 100;
      link.notifyReceiveReady();
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    expect(nic.frames.map((f) => f[0])).toEqual(Array.from({ length: count }, (_, i) => i & 0xff));
    expect(link.statistics.dropped).toBe(0);
  });

  it('tells the NIC to pause while a peer does not read, and when it may go on', async () => {
    const { link, port } = await streamServer();
    const nic = new RecordingNetworkFrontend();
    link.connect(nic);
    const peer = await rawPeer(port);
    peer.pause();
    await until(() => link.linkUp, 'the link');
    let sent = 0;
    while (link.send(frame(sent, 65_000))) if (++sent > 1000) throw new Error('send never pushed back');
    expect(nic.transmitReadyCalls).toBe(0);
    let read = 0;
    peer.on('data', (chunk: Buffer) => (read += chunk.length));
    peer.resume();
    await until(() => nic.transmitReadyCalls === 1, 'transmitReady');
    await until(() => read === (sent + 1) * (65_000 + 4), 'every byte at the peer');
  });

  it('ends a connection whose peer breaks the framing with a clear error, and survives it', async () => {
    const events: NetworkBackendEvent[] = [];
    const { link, port } = await streamServer(events);
    const nic = new RecordingNetworkFrontend();
    link.connect(nic);
    const peer = await rawPeer(port);
    const closed = new Promise<void>((resolve) => peer.once('close', () => resolve()));
    peer.on('error', () => {});
    peer.write(encodeStreamFrame(frame(1)));
    peer.write(Buffer.from([0x7f, 0xff, 0xff, 0xff, 1, 2, 3]));
    await closed;
    expect(nic.frames).toEqual([frame(1)]);
    expect(events).toContainEqual({ kind: 'error', message: 'the peer sent a frame length of 2147483647 bytes (at most 65549)' });
    expect(link.linkUp).toBe(false);
    // Runts are dropped and counted; the next peer is served.
    const next = await rawPeer(port);
    next.write(Buffer.concat([encodeStreamFrame(new Uint8Array(3)), encodeStreamFrame(frame(2))]));
    await nic.waitForFrames(2);
    expect(link.statistics.dropped).toBe(1);
    expect(events).toContainEqual({ kind: 'dropped', reason: 'malformed', bytes: 0 });
  });

  it('turns a second peer away while one is attached, and counts what the guest sends with none', async () => {
    const events: NetworkBackendEvent[] = [];
    const { link, port } = await streamServer(events);
    link.connect(new RecordingNetworkFrontend());
    expect(link.send(frame(1))).toBe(true);
    expect(link.statistics.dropped).toBe(1);
    expect(events).toContainEqual({ kind: 'dropped', reason: 'no-peer', bytes: 60 });
    await rawPeer(port);
    await until(() => link.linkUp, 'the first peer');
    const second = await rawPeer(port);
    await new Promise<void>((resolve) => second.once('close', () => resolve()));
    expect(link.linkUp).toBe(true);
  });

  it('a client refuses to open when nobody listens, and with reconnect finds a server that comes later', async () => {
    const spare: Server = createServer();
    await new Promise<void>((resolve) => spare.listen(0, '127.0.0.1', resolve));
    const port = (spare.address() as { port: number }).port;
    await new Promise<void>((resolve) => spare.close(() => resolve()));
    await expect(StreamNetworkBackend.open({ server: false, address: { type: 'inet', host: '127.0.0.1', port } })).rejects.toThrow(/ECONNREFUSED/);
    const client = await StreamNetworkBackend.open({ server: false, address: { type: 'inet', host: '127.0.0.1', port }, reconnectSeconds: 0.05 });
    cleanups.push(() => client.close());
    const server = await StreamNetworkBackend.open({ server: true, address: { type: 'inet', host: '127.0.0.1', port } });
    cleanups.push(() => server.close());
    await until(() => client.linkUp && server.linkUp, 'the late connection');
  });
});

describe('DgramNetworkBackend (QEMU -netdev dgram)', () => {
  async function pair(maxHeldFrames?: number): Promise<[DgramNetworkBackend, DgramNetworkBackend, NetworkBackendEvent[]]> {
    const events: NetworkBackendEvent[] = [];
    const a = await DgramNetworkBackend.open({ local: { host: '127.0.0.1', port: 0 }, remote: { host: '127.0.0.1', port: 9 } });
    cleanups.push(() => a.close());
    const b = await DgramNetworkBackend.open({ local: { host: '127.0.0.1', port: 0 }, remote: { host: '127.0.0.1', port: a.localAddress.port }, observer: (event) => events.push(event), ...(maxHeldFrames === undefined ? {} : { maxHeldFrames }) });
    cleanups.push(() => b.close());
    // a learns b's port only now: reopen a pointed at b.
    await a.close();
    const a2 = await DgramNetworkBackend.open({ local: { host: '127.0.0.1', port: a.localAddress.port }, remote: { host: '127.0.0.1', port: b.localAddress.port } });
    cleanups.push(() => a2.close());
    return [a2, b, events];
  }

  it('sends one frame per datagram, with no length prefix', async () => {
    const [a, b] = await pair();
    const nicA = new RecordingNetworkFrontend();
    const nicB = new RecordingNetworkFrontend();
    a.connect(nicA);
    b.connect(nicB);
    expect(a.linkUp).toBe(true);
    a.send(frame(1, 1514));
    b.send(frame(2, 60));
    await nicB.waitForFrames(1);
    await nicA.waitForFrames(1);
    expect(nicB.frames).toEqual([frame(1, 1514)]);
    expect(nicA.frames).toEqual([frame(2, 60)]);
    // A plain UDP peer sees the bare frame.
    const raw = createSocket('udp4');
    cleanups.push(() => new Promise<void>((resolve) => raw.close(() => resolve())));
    await new Promise<void>((resolve) => raw.bind(0, '127.0.0.1', resolve));
    const to = await DgramNetworkBackend.open({ local: { host: '127.0.0.1', port: 0 }, remote: { host: '127.0.0.1', port: raw.address().port } });
    cleanups.push(() => to.close());
    const got = new Promise<Buffer>((resolve) => raw.once('message', resolve));
    to.send(frame(5, 100));
    expect(await got).toEqual(Buffer.alloc(100, 5));
  });

  it('drops malformed datagrams and, past its limit, frames for a NIC without buffers, saying so', async () => {
    const [a, b, events] = await pair(4);
    const nic = new RecordingNetworkFrontend(0);
    b.connect(nic);
    for (let i = 0; i < 10; i++) a.send(frame(i));
    a.send(new Uint8Array(5));
    await until(() => b.heldFrames + b.statistics.dropped >= 11, 'the datagrams');
    expect(b.heldFrames).toBe(4);
    expect(b.statistics.dropped).toBe(7);
    expect(events.filter((event) => event.kind === 'dropped' && event.reason === 'receive-queue-full')).toHaveLength(6);
    expect(events).toContainEqual({ kind: 'dropped', reason: 'malformed', bytes: 5 });
    nic.room = 10;
    b.notifyReceiveReady();
    expect(nic.frames.map((f) => f[0])).toEqual([0, 1, 2, 3]);
  });
});
