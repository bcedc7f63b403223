import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RecordingCharacterFrontend } from '@tsvirt/interfaces/testing';
import { FileBackend } from './file-backend.js';
import { StdioBackend, type InputStream } from './stdio-backend.js';
import { TcpClientBackend, TcpServerBackend } from './tcp-backend.js';

/** A device with a small buffer the test drains by hand. */
class SlowFrontend extends RecordingCharacterFrontend {
  constructor() {
    super(4);
  }
  get space(): number {
    return this.capacity;
  }
  set space(value: number) {
    this.capacity = value;
  }
}

function until(condition: () => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = () => {
      if (condition()) resolve();
      else if (Date.now() - started > 5000) reject(new Error('condition not met'));
      else setTimeout(poll, 5);
    };
    poll();
  });
}

describe('character backends', () => {
  it('FileBackend appends output and ignores input', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsvirt-uart-'));
    try {
      const path = join(dir, 'serial.log');
      writeFileSync(path, 'old\n');
      const file = new FileBackend(path);
      file.connect(new SlowFrontend());
      file.write(new TextEncoder().encode('boot '));
      file.write(new TextEncoder().encode('ok\n'));
      await file.close();
      expect(readFileSync(path, 'utf8')).toBe('old\nboot ok\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('FileBackend survives an unwritable path', async () => {
    const file = new FileBackend('/nonexistent-dir/for/sure/serial.log');
    file.write(Uint8Array.of(1));
    await until(() => file.failure !== undefined);
    file.write(Uint8Array.of(2));
    await file.close();
  });

  it('FileBackend.open creates the file before any output and appends to it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsvirt-uart-'));
    try {
      const path = join(dir, 'serial.log');
      const file = await FileBackend.open(path);
      expect(readFileSync(path, 'utf8')).toBe('');
      file.write(new TextEncoder().encode('boot ok\n'));
      await file.close();
      const again = await FileBackend.open(path);
      again.write(new TextEncoder().encode('again\n'));
      await again.close();
      expect(readFileSync(path, 'utf8')).toBe('boot ok\nagain\n');
      expect(again.failure).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('FileBackend.open rejects a path it cannot open for writing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsvirt-uart-'));
    try {
      await expect(FileBackend.open(join(dir, 'no', 'such', 'serial.log'))).rejects.toMatchObject({ code: 'ENOENT', syscall: 'open' });
      await expect(FileBackend.open(dir)).rejects.toMatchObject({ code: 'EISDIR', syscall: 'open' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(!existsSync('/dev/full'))('FileBackend.open rejects a device that refuses every write (/dev/full)', async () => {
    await expect(FileBackend.open('/dev/full')).rejects.toMatchObject({ code: 'ENOSPC', syscall: 'write' });
    // A device that takes writes passes the same probe.
    await (await FileBackend.open('/dev/null')).close();
  });

  it('TcpServerBackend serves one peer over loopback with backpressure', async () => {
    const server = new TcpServerBackend({ port: 0 });
    const { port } = await server.listen();
    const device = new SlowFrontend();
    server.connect(device);
    server.write(new TextEncoder().encode('early')); // held until a peer connects
    const peer: Socket = connect({ host: '127.0.0.1', port });
    const fromGuest: number[] = [];
    peer.on('data', (data: Buffer) => fromGuest.push(...data));
    await until(() => server.connected);
    await until(() => fromGuest.length === 5);
    peer.write(Buffer.from('0123456789'));
    await until(() => device.received.length === 4);
    device.space = 100;
    server.notifyReceiveReady();
    expect(new TextDecoder().decode(Uint8Array.from(device.received))).toBe('0123456789');
    server.write(Uint8Array.of(0x21));
    await until(() => fromGuest.length === 6);
    expect(new TextDecoder().decode(Uint8Array.from(fromGuest))).toBe('early!');
    // A second peer is turned away while the first is attached.
    const second = connect({ host: '127.0.0.1', port });
    let secondClosed = false;
    second.on('close', () => (secondClosed = true));
    second.on('error', () => {});
    await until(() => secondClosed);
    peer.destroy();
    await server.close();
  });

  it('TcpClientBackend connects to a server and moves bytes both ways', async () => {
    const received: number[] = [];
    let serverSide: Socket | undefined;
    const server = createServer((socket) => {
      serverSide = socket;
      socket.on('data', (data: Buffer) => received.push(...data));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no address');
    const client = new TcpClientBackend({ port: address.port });
    const device = new SlowFrontend();
    client.connect(device);
    client.write(Uint8Array.of(1, 2)); // before open: held
    await client.open();
    client.write(Uint8Array.of(3));
    await until(() => received.length === 3);
    expect(received).toEqual([1, 2, 3]);
    serverSide!.write(Buffer.from([9, 8]));
    await until(() => device.received.length === 2);
    await client.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('TcpClientBackend rejects when nobody listens', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const address = probe.address();
    if (address === null || typeof address === 'string') throw new Error('no address');
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    await expect(new TcpClientBackend({ port: address.port }).open()).rejects.toThrow();
  });

  it('StdioBackend sets raw mode on a TTY, filters input through the hook and restores on close', () => {
    const listeners: Array<(data: Buffer) => void> = [];
    const modes: boolean[] = [];
    const input: InputStream = {
      isTTY: true,
      isRaw: false,
      setRawMode: (raw: boolean) => modes.push(raw),
      on: (_event, listener) => listeners.push(listener),
      off: (_event, listener) => listeners.splice(listeners.indexOf(listener), 1),
      pause: () => {},
      resume: () => {},
    };
    const written: number[] = [];
    const stdio = new StdioBackend({
      input,
      output: { write: (data) => written.push(...data) },
      // Ctrl-A is the CLI's escape: swallow it.
      onInput: (data) => (data[0] === 0x01 ? null : data),
    });
    expect(modes).toEqual([true]);
    const device = new SlowFrontend();
    stdio.connect(device);
    listeners[0]!(Buffer.from([0x01]));
    listeners[0]!(Buffer.from('ls'));
    expect(device.received).toEqual([0x6c, 0x73]);
    stdio.write(Uint8Array.of(0x24));
    expect(written).toEqual([0x24]);
    stdio.close();
    expect(modes).toEqual([true, false]);
    expect(listeners).toHaveLength(0);
  });
});
