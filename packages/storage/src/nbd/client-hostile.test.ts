import { createServer, type Server, type Socket } from 'node:net';
import { BlockError } from '@tsvirt/interfaces';
import { afterEach, describe, expect, it } from 'vitest';
import { NbdClient } from './client.js';
import * as nbd from './protocol.js';
import { SocketReader } from './socket-reader.js';

/** A server that negotiates correctly, then answers every request with `reply(handle, socket)`. */
async function fakeServer(reply: (handle: bigint, socket: Socket) => void, size = 65536): Promise<{ server: Server; port: number }> {
  const server = createServer(async (socket) => {
    const reader = new SocketReader(socket);
    const greeting = new DataView(new ArrayBuffer(18));
    greeting.setBigUint64(0, nbd.NBDMAGIC);
    greeting.setBigUint64(8, nbd.IHAVEOPT);
    greeting.setUint16(16, nbd.FLAG_FIXED_NEWSTYLE | nbd.FLAG_NO_ZEROES);
    socket.write(new Uint8Array(greeting.buffer));
    try {
      await reader.read(4);
      for (;;) {
        const head = new DataView((await reader.read(16)).buffer);
        const option = head.getUint32(8);
        await reader.read(head.getUint32(12));
        const send = (type: number, data = new Uint8Array(0)) => {
          const out = new DataView(new ArrayBuffer(20));
          out.setBigUint64(0, nbd.OPTION_REPLY_MAGIC);
          out.setUint32(8, option);
          out.setUint32(12, type);
          out.setUint32(16, data.length);
          socket.write(new Uint8Array(out.buffer));
          socket.write(data);
        };
        if (option === nbd.OPT_GO) {
          const info = new DataView(new ArrayBuffer(12));
          info.setUint16(0, nbd.INFO_EXPORT);
          nbd.setU64(info, 2, size);
          info.setUint16(10, nbd.TRANSMIT_HAS_FLAGS | nbd.TRANSMIT_SEND_FLUSH);
          send(nbd.REP_INFO, new Uint8Array(info.buffer));
          send(nbd.REP_ACK);
          break;
        }
        send(nbd.REP_ACK);
      }
      for (;;) {
        const request = new DataView((await reader.read(28)).buffer);
        reply(request.getBigUint64(8), socket);
      }
    } catch {
      socket.destroy();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return { server, port: typeof address === 'object' && address ? address.port : 0 };
}

function chunk(socket: Socket, handle: bigint, type: number, payload: Uint8Array, flags = nbd.REPLY_FLAG_DONE): void {
  const head = new DataView(new ArrayBuffer(20));
  head.setUint32(0, nbd.STRUCTURED_REPLY_MAGIC);
  head.setUint16(4, flags);
  head.setUint16(6, type);
  head.setBigUint64(8, handle);
  head.setUint32(16, payload.length);
  socket.write(new Uint8Array(head.buffer));
  socket.write(payload);
}

describe('a hostile NBD server', () => {
  let running: Server | undefined;
  afterEach(() => running?.close());

  it.each([
    ['a data chunk outside the request', (handle: bigint, socket: Socket) => {
      const payload = new Uint8Array(8 + 16);
      nbd.setU64(new DataView(payload.buffer), 0, 60000);
      chunk(socket, handle, nbd.REPLY_TYPE_OFFSET_DATA, payload);
    }],
    ['a hole chunk longer than the request', (handle: bigint, socket: Socket) => {
      const payload = new Uint8Array(12);
      new DataView(payload.buffer).setUint32(8, 1 << 30);
      chunk(socket, handle, nbd.REPLY_TYPE_OFFSET_HOLE, payload);
    }],
    ['a chunk claiming 4 GiB', (handle: bigint, socket: Socket) => {
      const head = new DataView(new ArrayBuffer(20));
      head.setUint32(0, nbd.STRUCTURED_REPLY_MAGIC);
      head.setUint16(6, nbd.REPLY_TYPE_OFFSET_DATA);
      head.setBigUint64(8, handle);
      head.setUint32(16, 0xffffffff);
      socket.write(new Uint8Array(head.buffer));
    }],
    ['a reply for a handle never sent', (_handle: bigint, socket: Socket) => chunk(socket, 999n, nbd.REPLY_TYPE_NONE, new Uint8Array(0))],
    ['garbage', (_handle: bigint, socket: Socket) => socket.write(new Uint8Array(64).fill(0x41))],
    ['an error chunk', (handle: bigint, socket: Socket) => {
      const payload = new Uint8Array(6 + 4);
      new DataView(payload.buffer).setUint32(0, nbd.EIO);
      new DataView(payload.buffer).setUint16(4, 4);
      payload.set(new TextEncoder().encode('oops'), 6);
      chunk(socket, handle, nbd.REPLY_TYPE_ERROR, payload);
    }],
  ])('%s: the request fails with a BlockError, nothing is written outside its buffer', async (_name, reply) => {
    const { server, port } = await fakeServer(reply);
    running = server;
    const client = await NbdClient.connect({ host: '127.0.0.1', port, exportName: '' });
    const buffer = new Uint8Array(16);
    await expect(client.readAt(0, buffer)).rejects.toBeInstanceOf(BlockError);
    expect(buffer.every((byte) => byte === 0)).toBe(true);
    await client.close();
  });
});
