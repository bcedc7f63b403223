import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { receiveMigration } from '../engine/destination.js';
import { startMigration } from '../engine/source.js';
import { MigrationTimeoutError } from '../errors.js';
import { FrameType } from '../stream/format.js';
import { FrameWriter } from '../stream/frame-writer.js';
import { FakeVm, RecordingChannel } from '../testing/index.js';
import { connectMigration, listenForMigration } from './socket-channel.js';

const MIB = 1024 * 1024;
/** Far beyond every deadline used here (tens to hundreds of ms): reaching it means a hang, not slowness. */
const HANG_MS = 20_000;

/** `work`'s value, or 'hung' if it has not settled after {@link HANG_MS} of host time. */
async function unlessHung<T>(work: Promise<T>): Promise<T | 'hung'> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), HANG_MS)));
  try {
    return await Promise.race([work, hung]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves once `socket` has ended or closed: the far side tore the connection down. Reads (and drops) what is left to get there. */
function closed(socket: net.Socket): Promise<true> {
  return new Promise((resolve) => {
    if (socket.destroyed || socket.readableEnded) resolve(true);
    socket.once('close', () => resolve(true));
    socket.once('end', () => resolve(true));
    socket.on('error', () => resolve(true));
    socket.resume();
  });
}

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A TCP server that takes connections and never reads from them nor writes to them (unless `greet` answers first). */
async function silentServer(greet?: (socket: net.Socket) => void): Promise<{ port: number; sockets: net.Socket[] }> {
  const sockets: net.Socket[] = [];
  const server = net.createServer((socket) => {
    // Nothing is read: the kernel buffers fill and the sender's writes block.
    socket.pause();
    sockets.push(socket);
    greet?.(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  return { port: (server.address() as net.AddressInfo).port, sockets };
}

/** The preamble and an Accept frame, as a destination would answer. */
async function acceptBytes(): Promise<Uint8Array> {
  const recording = new RecordingChannel();
  const writer = new FrameWriter(recording);
  await writer.writePreamble();
  await writer.writeFrame(FrameType.Accept);
  return recording.bytes();
}

describe('socket migrations against silent peers', () => {
  it('over TCP, a destination that accepts the connection and never answers: the migration timeout ends setup and the socket is closed', async () => {
    const server = await silentServer();
    const channel = await connectMigration({ host: '127.0.0.1', port: server.port });
    const vm = new FakeVm({ memorySize: MIB, running: true });
    const migration = startMigration(vm, channel, { timeout: { afterMs: 100, action: 'abort' } });
    const stats = await unlessHung(migration.done);
    expect(stats).not.toBe('hung');
    expect(stats !== 'hung' && stats.status).toBe('failed');
    expect(migration.error).toBeInstanceOf(MigrationTimeoutError);
    expect((migration.error as MigrationTimeoutError).phase).toBe('setup');
    expect(vm.running).toBe(true);
    expect(await unlessHung(closed(server.sockets[0]!))).toBe(true);
  });

  it('over TCP, a destination that stops reading: blocked writes hit the stall timeout in pre-copy', async () => {
    const accept = await acceptBytes();
    const server = await silentServer((socket) => socket.write(accept));
    const channel = await connectMigration({ host: '127.0.0.1', port: server.port });
    // More than the kernel's socket buffers on both ends can hold.
    const vm = new FakeVm({ memorySize: 48 * MIB, running: true });
    vm.populate(7, 1);
    const migration = startMigration(vm, channel, { deadlines: { stallMs: 500 } });
    const stats = await unlessHung(migration.done);
    expect(stats !== 'hung' && stats.status).toBe('failed');
    expect(migration.error).toBeInstanceOf(MigrationTimeoutError);
    expect((migration.error as MigrationTimeoutError).phase).toBe('precopy');
    expect((migration.error as MigrationTimeoutError).kind).toBe('stall');
    expect(vm.running).toBe(true);
    expect(vm.memory.dirtyLogging).toBe(false);
  });

  it('over TCP, a source that connects and goes silent: the destination gives up and closes the connection', async () => {
    const listener = await listenForMigration({ host: '127.0.0.1', port: 0 });
    cleanups.push(() => listener.close());
    const address = listener.address as { host: string; port: number };
    const socket = net.connect({ host: address.host, port: address.port });
    cleanups.push(() => void socket.destroy());
    socket.resume();
    const channel = await listener.accept();
    const vm = new FakeVm({ memorySize: MIB });
    const outcome = await unlessHung(receiveMigration(vm, channel, { deadlines: { stallMs: 100 } }).catch((error: unknown) => error));
    expect(outcome).toBeInstanceOf(MigrationTimeoutError);
    expect((outcome as MigrationTimeoutError).phase).toBe('setup');
    expect(vm.running).toBe(false);
    expect(await unlessHung(closed(socket))).toBe(true);
  });
});

describe('connectMigration', () => {
  let child: ChildProcess | undefined;
  afterEach(() => {
    child?.kill();
    child = undefined;
  });

  it('gives up on a connection the destination host never completes', async () => {
    // A listener with a backlog of one in a process that never accepts: once its queue is full the kernel drops further SYNs.
    child = spawn(
      process.execPath,
      [
        '-e',
        `const server = require('node:net').createServer();
         server.listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => {
           process.stdout.write(server.address().port + '\\n');
           Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
         });`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const port = await new Promise<number>((resolve) => child!.stdout!.once('data', (data) => resolve(Number(String(data).trim()))));
    const fillers: net.Socket[] = [];
    cleanups.push(() => fillers.forEach((socket) => socket.destroy()));
    for (let index = 0; index < 4; index++) fillers.push(net.connect({ host: '127.0.0.1', port }).on('error', () => {}));
    // Let the fillers take the queue's places.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const outcome = await unlessHung(connectMigration({ host: '127.0.0.1', port }, { timeoutMs: 200 }).catch((error: unknown) => error));
    expect(outcome).toBeInstanceOf(MigrationTimeoutError);
    expect((outcome as MigrationTimeoutError).phase).toBe('setup');
  });

});
