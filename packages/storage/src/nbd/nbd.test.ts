import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlockError } from '@tsvirt/interfaces';
import { blockBackendContract, MemoryBlockBackend } from '@tsvirt/interfaces/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryImageFile, NodeImageFile } from '../image-file.js';
import { createQcow2 } from '../qcow2/create.js';
import { QemuTools } from '../testing/qemu-tools.js';
import { NbdClient, parseNbdUri } from './client.js';
import { NbdServer } from './server.js';
import { runImgCommand } from '../tools/img-command.js';
import { openImage } from '../open.js';

const qemu = QemuTools.find();
const dir = mkdtempSync(join(tmpdir(), 'tsvirt-nbd-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function pattern(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 31 + seed) & 0xff);
}

async function serve(exports: ConstructorParameters<typeof NbdServer>[0]['exports']): Promise<{ server: NbdServer; port: number }> {
  const server = new NbdServer({ exports });
  const { port } = await server.listen({ port: 0 });
  return { server, port: port! };
}

blockBackendContract('NBD client against our NBD server', async (size) => {
  const { server, port } = await serve([{ name: 'disk', backend: new MemoryBlockBackend(size) }]);
  const client = await NbdClient.connect({ host: '127.0.0.1', port, exportName: 'disk' });
  const close = client.close.bind(client);
  client.close = async () => {
    await close();
    await server.close();
  };
  return client;
});

describe('NBD client and server together', () => {
  it('parses qemu NBD URIs', () => {
    expect(parseNbdUri('nbd://localhost:10810/disk')).toEqual({ host: 'localhost', port: 10810, exportName: 'disk' });
    expect(parseNbdUri('nbd://example')).toEqual({ host: 'example', port: 10809, exportName: '' });
    expect(parseNbdUri('nbd+unix:///vm?socket=/run/x.sock')).toEqual({ path: '/run/x.sock', exportName: 'vm' });
  });

  it('tsvirt img convert to and from nbd:// URIs', async () => {
    const target = new MemoryBlockBackend(1 << 20);
    const { server, port } = await serve([{ name: 'target', backend: target }]);
    try {
      const source = join(dir, 'convert-source.qcow2');
      const image = await createQcow2(await NodeImageFile.open(source, { create: true }), { size: 1 << 20 });
      await image.writeAt(5000, pattern(70000, 4));
      await image.close();
      const quiet = { stdout: () => {}, stderr: () => {} };
      expect(await runImgCommand(['convert', '-O', 'raw', source, `nbd://127.0.0.1:${port}/target`], quiet)).toBe(0);
      expect(target.bytes.subarray(5000, 75000)).toEqual(pattern(70000, 4));
      const back = join(dir, 'from-nbd.qcow2');
      expect(await runImgCommand(['convert', '-O', 'qcow2', `nbd://127.0.0.1:${port}/target`, back], quiet)).toBe(0);
      const reopened = await openImage(back, { readOnly: true });
      const bytes = new Uint8Array(1 << 20);
      await reopened.backend.readAt(0, bytes);
      await reopened.backend.close();
      expect(bytes).toEqual(target.bytes);
    } finally {
      await server.close();
    }
  });

  it('several exports, read-only refusal, trim, zeroes, block status, over a Unix socket', async () => {
    const image = await createQcow2(new MemoryImageFile(), { size: 1 << 20, clusterSize: 4096 });
    await image.writeAt(8192, pattern(10000, 1));
    const server = new NbdServer({
      exports: [
        { name: 'image', backend: image },
        { name: 'frozen', backend: new MemoryBlockBackend(pattern(4096, 2)), readOnly: true },
      ],
    });
    const socket = join(dir, 'server.sock');
    await server.listen({ path: socket });
    try {
      const frozen = await NbdClient.connect({ path: socket, exportName: 'frozen' });
      expect(frozen.readOnly).toBe(true);
      await expect(frozen.writeAt(0, new Uint8Array(1))).rejects.toBeInstanceOf(BlockError);
      const back = new Uint8Array(4096);
      await frozen.readAt(0, back);
      expect(back).toEqual(pattern(4096, 2));
      await frozen.close();

      const client = await NbdClient.connect({ path: socket, exportName: 'image' });
      expect(client.size).toBe(1 << 20);
      const status = await client.blockStatus(0, 1 << 20);
      expect(status[0]).toEqual({ offset: 0, length: 8192, allocated: false, zero: true });
      expect(status[1]).toMatchObject({ offset: 8192, allocated: true, zero: false });
      await client.writeZeroes(8192, 4096);
      await client.discard(12288, 4096);
      await client.flush();
      const after = new Uint8Array(4096 * 3);
      await client.readAt(8192, after);
      expect(after.subarray(0, 8192).every((byte) => byte === 0)).toBe(true);
      expect(after.subarray(8192, 8192 + 1808)).toEqual(pattern(10000, 1).subarray(8192, 10000));
      // Many requests in flight at once come back matched to the right callers.
      const reads = Array.from({ length: 20 }, (_, i) => new Uint8Array(100 + i));
      await Promise.all(reads.map((buffer, i) => client.readAt(16384 + i * 7, buffer)));
      reads.forEach((buffer, i) => expect(buffer).toEqual(pattern(10000, 1).subarray(8192 + i * 7, 8192 + i * 7 + 100 + i)));
      await client.close();
      await expect(NbdClient.connect({ path: socket, exportName: 'missing' })).rejects.toThrow(/missing/);
    } finally {
      await server.close();
    }
  });

  it("an export's description reaches clients that ask for it (NBD_INFO_DESCRIPTION)", async () => {
    const { server, port } = await serve([{ name: 'described', backend: new MemoryBlockBackend(4096), description: 'scratch disk' }, { name: 'plain', backend: new MemoryBlockBackend(4096) }]);
    try {
      const described = await NbdClient.connect({ host: '127.0.0.1', port, exportName: 'described' });
      expect(described.description).toBe('scratch disk');
      await described.close();
      const plain = await NbdClient.connect({ host: '127.0.0.1', port, exportName: 'plain' });
      expect(plain.description).toBeUndefined();
      await plain.close();
    } finally {
      await server.close();
    }
  });

  it('hostile clients are disconnected, and the server keeps serving others', async () => {
    const { server, port } = await serve([{ name: '', backend: new MemoryBlockBackend(65536) }]);
    try {
      const rude = async (bytes: Uint8Array) =>
        new Promise<void>((resolve) => {
          const socket = connect(port, '127.0.0.1', () => socket.write(bytes));
          socket.on('data', () => {});
          socket.on('close', () => resolve());
          socket.on('error', () => resolve());
          setTimeout(() => socket.destroy(), 2000);
        });
      // Bad client flags, then garbage options, then an option claiming 4 GiB.
      await rude(new Uint8Array([0xff, 0xff, 0xff, 0xff]));
      await rude(new Uint8Array([0, 0, 0, 3, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]));
      await rude(new Uint8Array([0, 0, 0, 3, 0x49, 0x48, 0x41, 0x56, 0x45, 0x4f, 0x50, 0x54, 0, 0, 0, 7, 0xff, 0xff, 0xff, 0xff]));
      const client = await NbdClient.connect({ host: '127.0.0.1', port, exportName: '' });
      await expect(client.readAt(65000, new Uint8Array(1000))).rejects.toBeInstanceOf(BlockError);
      await client.readAt(0, new Uint8Array(10));
      await client.close();
    } finally {
      await server.close();
    }
  });
});

describe.skipIf(!qemu)('NBD against QEMU', () => {
  const tools = qemu!;

  it('qemu-img info/convert/map and qemu-io against our server', async () => {
    const path = join(dir, 'served.qcow2');
    const image = await createQcow2(await NodeImageFile.open(path, { create: true }), { size: 2 << 20 });
    await image.writeAt(100_000, pattern(200_000, 3));
    const { server, port } = await serve([{ name: 'vm', backend: image }]);
    try {
      const uri = `nbd://127.0.0.1:${port}/vm`;
      const info = await tools.run('qemu-img', ['info', '--output=json', uri]);
      expect(info.status).toBe(0);
      expect((JSON.parse(info.stdout) as Record<string, unknown>)['virtual-size']).toBe(2 << 20);
      const raw = join(dir, 'from-nbd.raw');
      expect((await tools.run('qemu-img', ['convert', '-O', 'raw', uri, raw])).status).toBe(0);
      const expected = new Uint8Array(2 << 20);
      expected.set(pattern(200_000, 3), 100_000);
      expect(Buffer.compare(readFileSync(raw), expected)).toBe(0);
      const map = await tools.run('qemu-img', ['map', '--output=json', '--image-opts', `driver=nbd,host=127.0.0.1,port=${port},export=vm`]);
      const extents = JSON.parse(map.stdout) as Array<{ start: number; length: number; data: boolean }>;
      expect(extents.filter((extent) => extent.data).map((extent) => extent.start)).toEqual([65536]);
      const io = await tools.run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x77 0 4096', '-c', 'write -z 131072 65536', '-c', 'discard 196608 65536', '-c', 'flush', uri]);
      expect(io.status).toBe(0);
      const back = new Uint8Array(4096);
      await image.readAt(0, back);
      expect(back.every((byte) => byte === 0x77)).toBe(true);
      const zeroed = new Uint8Array(131072);
      await image.readAt(131072, zeroed);
      expect(zeroed.every((byte) => byte === 0)).toBe(true);
    } finally {
      await server.close();
      await image.close();
    }
    expect(tools.check(path).status).toBe(0);
  });

  it('our client against qemu-nbd', async () => {
    const path = join(dir, 'qemu-served.qcow2');
    tools.img(['create', '-q', '-f', 'qcow2', path, '1M']);
    tools.io(path, 'qcow2', ['write -P 0x42 65536 65536']);
    const socket = join(dir, 'qemu-nbd.sock');
    const child: ChildProcess = spawn('qemu-nbd', ['-f', 'qcow2', '-x', 'exp', '-D', 'the \x1b[1mtest\x1b[0m disk', '-k', socket, path], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 100 && !existsSync(socket); i++) await new Promise((resolve) => setTimeout(resolve, 50));
      const client = await NbdClient.connect({ path: socket, exportName: 'exp' });
      expect(client.size).toBe(1 << 20);
      // qemu-nbd -D answers NBD_INFO_DESCRIPTION; the escape characters do not reach us.
      expect(client.description).toBe('the  [1mtest [0m disk');
      const data = new Uint8Array(65536 * 2);
      await client.readAt(0, data);
      expect(data.subarray(0, 65536).every((byte) => byte === 0)).toBe(true);
      expect(data.subarray(65536).every((byte) => byte === 0x42)).toBe(true);
      const status = await client.blockStatus(0, 1 << 20);
      expect(status.find((extent) => extent.allocated)).toMatchObject({ offset: 65536, length: 65536 });
      await client.writeAt(300_000, pattern(5000, 9));
      await client.writeZeroes(65536, 4096);
      await client.discard(131072, 65536);
      await client.flush();
      await client.close();
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
    const raw = join(dir, 'qemu-served.raw');
    tools.img(['convert', '-O', 'raw', path, raw]);
    const bytes = readFileSync(raw);
    expect(Buffer.compare(bytes.subarray(300_000, 305_000), pattern(5000, 9))).toBe(0);
    expect(bytes.subarray(65536, 65536 + 4096).every((byte) => byte === 0)).toBe(true);
    expect(bytes[65536 + 4096]).toBe(0x42);
    expect(tools.check(path).status).toBe(0);
  });
});
