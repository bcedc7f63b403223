import { createServer, type Server, type Socket } from 'node:net';
import { BlockError } from '@tsvirt/interfaces';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { NbdClient } from './client.js';
import * as nbd from './protocol.js';
import { SocketReader } from './socket-reader.js';

interface FakeRequest {
  handle: bigint;
  type: number;
  offset: number;
  length: number;
}

interface FakeServerOptions {
  size?: number;
  /** Answer NBD_OPT_SET_META_CONTEXT with base:allocation as this context id. */
  metaContext?: number;
  /** Replaces the answer to NBD_OPT_GO (the default: the export's size and flags, then ACK). */
  go?: (send: (type: number, data?: Uint8Array) => void) => void;
  /** Accept the connection and never say a word. */
  silent?: boolean;
}

const CONTEXT = 7;

/** A server that negotiates as told, then answers every request with `reply(request, socket)`. */
async function fakeServer(reply: (request: FakeRequest, socket: Socket) => void, options: FakeServerOptions = {}): Promise<{ server: Server; port: number; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer(async (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    if (options.silent) return;
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
        const send = (type: number, data: Uint8Array = new Uint8Array(0)) => {
          const out = new DataView(new ArrayBuffer(20));
          out.setBigUint64(0, nbd.OPTION_REPLY_MAGIC);
          out.setUint32(8, option);
          out.setUint32(12, type);
          out.setUint32(16, data.length);
          socket.write(new Uint8Array(out.buffer));
          socket.write(data);
        };
        if (option === nbd.OPT_GO) {
          if (options.go) options.go(send);
          else {
            const info = new DataView(new ArrayBuffer(12));
            info.setUint16(0, nbd.INFO_EXPORT);
            nbd.setU64(info, 2, options.size ?? 65536);
            info.setUint16(10, nbd.TRANSMIT_HAS_FLAGS | nbd.TRANSMIT_SEND_FLUSH);
            send(nbd.REP_INFO, new Uint8Array(info.buffer));
            send(nbd.REP_ACK);
          }
          break;
        }
        if (option === nbd.OPT_SET_META_CONTEXT && options.metaContext !== undefined) {
          const name = new TextEncoder().encode(nbd.BASE_ALLOCATION);
          const body = new Uint8Array(4 + name.length);
          new DataView(body.buffer).setUint32(0, options.metaContext);
          body.set(name, 4);
          send(nbd.REP_META_CONTEXT, body);
        }
        send(nbd.REP_ACK);
      }
      for (;;) {
        const request = new DataView((await reader.read(28)).buffer);
        reply({ handle: request.getBigUint64(8), type: request.getUint16(6), offset: nbd.u64(request, 16), length: request.getUint32(24) }, socket);
      }
    } catch {
      socket.destroy();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return { server, port: typeof address === 'object' && address ? address.port : 0, sockets };
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

function blockStatusChunk(socket: Socket, handle: bigint, extents: Array<[length: number, flags: number]>, context = CONTEXT, done = true): void {
  const payload = new Uint8Array(4 + extents.length * 8);
  const view = new DataView(payload.buffer);
  view.setUint32(0, context);
  extents.forEach(([length, flags], index) => {
    view.setUint32(4 + index * 8, length);
    view.setUint32(8 + index * 8, flags);
  });
  chunk(socket, handle, nbd.REPLY_TYPE_BLOCK_STATUS, payload, done ? nbd.REPLY_FLAG_DONE : 0);
}

function errorChunk(socket: Socket, handle: bigint, error: number, message: Uint8Array): void {
  const payload = new Uint8Array(6 + message.length);
  new DataView(payload.buffer).setUint32(0, error);
  new DataView(payload.buffer).setUint16(4, message.length);
  payload.set(message, 6);
  chunk(socket, handle, nbd.REPLY_TYPE_ERROR, payload);
}

/** A terminal-hostile string: escape sequences, a bell, CR/LF, a bidi override, NULs, padded to `length` bytes. */
function hostileText(length: number): Uint8Array {
  const text = '\x1b]0;pwned\x07\x1b[2J\r\ncleared\u202egnp.exe\0';
  const bytes = new Uint8Array(length).fill(0x41);
  bytes.set(new TextEncoder().encode(text).subarray(0, length));
  for (let at = 100; at + 2 < length; at += 997) bytes.set([0x1b, 0x5b, 0x4b], at);
  return bytes;
}

/** No C0/C1 control characters, no format (bidi, zero-width) characters, and short enough for one terminal line or two. */
function expectTerminalSafe(text: string): void {
  expect(text.length).toBeLessThanOrEqual(400);
  expect(text).not.toMatch(/[\p{Cc}\p{Cf}\u2028\u2029]/u);
}

/** Settles `promise` or says it is still pending after `ms` (a hang is a failure, not a stuck test). */
async function settleWithin<T>(promise: Promise<T>, ms: number): Promise<{ value?: T; error?: unknown; pending?: true }> {
  return Promise.race([
    promise.then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    ),
    new Promise<{ pending: true }>((resolve) => setTimeout(() => resolve({ pending: true }), ms)),
  ]);
}

describe('a hostile NBD server', () => {
  let running: { server: Server; sockets: Set<Socket> } | undefined;
  const clients: NbdClient[] = [];
  afterEach(async () => {
    vi.useRealTimers();
    for (const client of clients.splice(0)) client.close().catch(() => {});
    if (running) for (const socket of running.sockets) socket.destroy();
    running?.server.close();
    running = undefined;
  });

  async function serve(reply: (request: FakeRequest, socket: Socket) => void, options: FakeServerOptions = {}): Promise<number> {
    const fake = await fakeServer(reply, options);
    running = fake;
    return fake.port;
  }

  async function open(port: number, options: Parameters<typeof NbdClient.connect>[1] = {}): Promise<NbdClient> {
    const client = await NbdClient.connect({ host: '127.0.0.1', port, exportName: '' }, options);
    clients.push(client);
    return client;
  }

  it.each([
    ['a data chunk outside the request', ({ handle }: FakeRequest, socket: Socket) => {
      const payload = new Uint8Array(8 + 16);
      nbd.setU64(new DataView(payload.buffer), 0, 60000);
      chunk(socket, handle, nbd.REPLY_TYPE_OFFSET_DATA, payload);
    }],
    ['a hole chunk longer than the request', ({ handle }: FakeRequest, socket: Socket) => {
      const payload = new Uint8Array(12);
      new DataView(payload.buffer).setUint32(8, 1 << 30);
      chunk(socket, handle, nbd.REPLY_TYPE_OFFSET_HOLE, payload);
    }],
    ['a chunk claiming 4 GiB', ({ handle }: FakeRequest, socket: Socket) => {
      const head = new DataView(new ArrayBuffer(20));
      head.setUint32(0, nbd.STRUCTURED_REPLY_MAGIC);
      head.setUint16(6, nbd.REPLY_TYPE_OFFSET_DATA);
      head.setBigUint64(8, handle);
      head.setUint32(16, 0xffffffff);
      socket.write(new Uint8Array(head.buffer));
    }],
    ['a reply for a handle never sent', (_request: FakeRequest, socket: Socket) => chunk(socket, 999n, nbd.REPLY_TYPE_NONE, new Uint8Array(0))],
    ['garbage', (_request: FakeRequest, socket: Socket) => socket.write(new Uint8Array(64).fill(0x41))],
    ['an error chunk', ({ handle }: FakeRequest, socket: Socket) => errorChunk(socket, handle, nbd.EIO, new TextEncoder().encode('oops'))],
  ])('%s: the request fails with a BlockError, nothing is written outside its buffer', async (_name, reply) => {
    const client = await open(await serve(reply));
    const buffer = new Uint8Array(16);
    await expect(client.readAt(0, buffer)).rejects.toBeInstanceOf(BlockError);
    expect(buffer.every((byte) => byte === 0)).toBe(true);
  });

  it('an error message from the server reaches the caller cut short and without control characters', async () => {
    const client = await open(await serve(({ handle }, socket) => errorChunk(socket, handle, nbd.EIO, hostileText(65535))));
    const failure = await client.readAt(0, new Uint8Array(16)).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(BlockError);
    expectTerminalSafe((failure as Error).message);
    expect((failure as Error).message).toContain('cleared');
  });

  it('a refusal in the handshake is reported cut short and without control characters', async () => {
    const port = await serve(() => {}, { go: (send) => send(nbd.REP_ERR_UNKNOWN, hostileText(60000)) });
    const failure = await NbdClient.connect({ host: '127.0.0.1', port, exportName: 'disk' }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(BlockError);
    expectTerminalSafe((failure as Error).message);
  });

  it("the export's description (NBD_INFO_DESCRIPTION) is kept cut short and without control characters", async () => {
    const port = await serve(() => {}, {
      go: (send) => {
        const info = new DataView(new ArrayBuffer(12));
        info.setUint16(0, nbd.INFO_EXPORT);
        nbd.setU64(info, 2, 65536);
        info.setUint16(10, nbd.TRANSMIT_HAS_FLAGS);
        send(nbd.REP_INFO, new Uint8Array(info.buffer));
        const text = hostileText(30000);
        const description = new Uint8Array(2 + text.length);
        new DataView(description.buffer).setUint16(0, nbd.INFO_DESCRIPTION);
        description.set(text, 2);
        send(nbd.REP_INFO, description);
        send(nbd.REP_ACK);
      },
    });
    const client = await open(port);
    expect(typeof client.description).toBe('string');
    expectTerminalSafe(client.description!);
    expect(client.description).toContain('cleared');
  });

  it.each([
    ['a zero-length extent', 'zero-length-extent', ({ handle }: FakeRequest, socket: Socket) => blockStatusChunk(socket, handle, [[4096, 0], [0, 0], [4096, 0]])],
    ['an extent that starts past the requested range', 'extent-beyond-request', ({ handle, length }: FakeRequest, socket: Socket) => blockStatusChunk(socket, handle, [[length, 0], [4096, nbd.STATE_HOLE]])],
    ['an extent for a context never negotiated', 'bad-block-status', ({ handle }: FakeRequest, socket: Socket) => blockStatusChunk(socket, handle, [[4096, 0]], CONTEXT + 1)],
    ['two block status chunks for one context', 'bad-block-status', ({ handle }: FakeRequest, socket: Socket) => {
      blockStatusChunk(socket, handle, [[4096, 0]], CONTEXT, false);
      blockStatusChunk(socket, handle, [[4096, 0]]);
    }],
    ['a block status chunk without extents', 'bad-block-status', ({ handle }: FakeRequest, socket: Socket) => {
      const payload = new Uint8Array(4);
      new DataView(payload.buffer).setUint32(0, CONTEXT);
      chunk(socket, handle, nbd.REPLY_TYPE_BLOCK_STATUS, payload);
    }],
    ['no block status at all', 'missing-block-status', ({ handle }: FakeRequest, socket: Socket) => chunk(socket, handle, nbd.REPLY_TYPE_NONE, new Uint8Array(0))],
  ])('block status with %s fails with NbdProtocolError (%s)', async (_name, problem, reply) => {
    const client = await open(await serve(reply, { metaContext: CONTEXT }));
    const failure = await client.blockStatus(0, 65536).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(BlockError);
    expect(failure).toMatchObject({ name: 'NbdProtocolError', code: 'BLOCK_IO', problem });
  });

  it('a last extent that reaches past the request is cut at its end, as the protocol allows', async () => {
    const client = await open(await serve(({ handle }, socket) => blockStatusChunk(socket, handle, [[8192, nbd.STATE_HOLE | nbd.STATE_ZERO], [1 << 30, 0]]), { metaContext: CONTEXT }));
    expect(await client.blockStatus(4096, 16384)).toEqual([
      { offset: 4096, length: 8192, allocated: false, zero: true },
      { offset: 12288, length: 8192, allocated: true, zero: false },
    ]);
  });

  it.each([
    ['only a final empty chunk', ({ handle }: FakeRequest, socket: Socket) => chunk(socket, handle, nbd.REPLY_TYPE_NONE, new Uint8Array(0))],
    ['half the data', ({ handle, offset, length }: FakeRequest, socket: Socket) => {
      const payload = new Uint8Array(8 + length / 2).fill(1);
      nbd.setU64(new DataView(payload.buffer), 0, offset);
      chunk(socket, handle, nbd.REPLY_TYPE_OFFSET_DATA, payload);
    }],
    ['the same half twice', ({ handle, offset, length }: FakeRequest, socket: Socket) => {
      const payload = new Uint8Array(8 + length / 2).fill(1);
      nbd.setU64(new DataView(payload.buffer), 0, offset);
      chunk(socket, handle, nbd.REPLY_TYPE_OFFSET_DATA, payload, 0);
      chunk(socket, handle, nbd.REPLY_TYPE_OFFSET_DATA, payload);
    }],
    ['an empty hole', ({ handle, offset }: FakeRequest, socket: Socket) => {
      const payload = new Uint8Array(12);
      nbd.setU64(new DataView(payload.buffer), 0, offset);
      chunk(socket, handle, nbd.REPLY_TYPE_OFFSET_HOLE, payload);
    }],
  ])('a read answered with %s fails with NbdProtocolError instead of returning stale bytes', async (_name, reply) => {
    const client = await open(await serve(reply));
    const buffer = new Uint8Array(4096).fill(0xee);
    await expect(client.readAt(0, buffer)).rejects.toMatchObject({ name: 'NbdProtocolError', code: 'BLOCK_IO' });
  });

  it('connect gives up on a server that never greets, after connectTimeoutMs', async () => {
    const port = await serve(() => {}, { silent: true });
    const outcome = await settleWithin(NbdClient.connect({ host: '127.0.0.1', port, exportName: '' }, { connectTimeoutMs: 100 }), 2000);
    expect(outcome.pending).toBeUndefined();
    expect(outcome.error).toBeInstanceOf(BlockError);
    expect(outcome.error).toMatchObject({ name: 'NbdTimeoutError', phase: 'connect' });
  });

  it('a request gives up on a server that stops answering, after replyTimeoutMs, and the disk reports the lost connection', async () => {
    const client = await open(await serve(() => {}), { replyTimeoutMs: 100 });
    const outcome = await settleWithin(client.readAt(0, new Uint8Array(512)), 2000);
    expect(outcome.pending).toBeUndefined();
    expect(outcome.error).toMatchObject({ name: 'NbdTimeoutError', phase: 'reply', code: 'BLOCK_IO' });
    await expect(client.flush()).rejects.toBeInstanceOf(BlockError);
  });

  it('by default connect gives up after 30 s and a reply after 60 s of silence', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const port = await serve(() => {}, { silent: true });
    let connectOutcome: unknown = 'pending';
    NbdClient.connect({ host: '127.0.0.1', port, exportName: '' }).then(
      () => (connectOutcome = 'connected'),
      (error: unknown) => (connectOutcome = error),
    );
    await vi.advanceTimersByTimeAsync(29_900);
    expect(connectOutcome).toBe('pending');
    await vi.advanceTimersByTimeAsync(200);
    await vi.waitFor(() => expect(connectOutcome).toMatchObject({ name: 'NbdTimeoutError', phase: 'connect' }), { timeout: 2000 });

    const quiet = await serve(() => {});
    const client = await open(quiet);
    let readOutcome: unknown = 'pending';
    client.readAt(0, new Uint8Array(512)).then(
      () => (readOutcome = 'read'),
      (error: unknown) => (readOutcome = error),
    );
    await vi.advanceTimersByTimeAsync(59_900);
    expect(readOutcome).toBe('pending');
    await vi.advanceTimersByTimeAsync(200);
    await vi.waitFor(() => expect(readOutcome).toMatchObject({ name: 'NbdTimeoutError', phase: 'reply' }), { timeout: 2000 });
  });

  it("replyTimeoutMs: 'never' waits as long as the server takes, as qemu-img does", async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let answer: (() => void) | undefined;
    const port = await serve(({ handle }, socket) => {
      answer = () => {
        const payload = new Uint8Array(8 + 512).fill(0x5a);
        nbd.setU64(new DataView(payload.buffer), 0, 0);
        chunk(socket, handle, nbd.REPLY_TYPE_OFFSET_DATA, payload);
      };
    });
    const client = await open(port, { connectTimeoutMs: 'never', replyTimeoutMs: 'never' });
    const buffer = new Uint8Array(512);
    let outcome: unknown = 'pending';
    client.readAt(0, buffer).then(
      () => (outcome = 'read'),
      (error: unknown) => (outcome = error),
    );
    await vi.waitFor(() => expect(answer).toBeDefined(), { timeout: 2000 });
    await vi.advanceTimersByTimeAsync(24 * 3600_000);
    expect(outcome).toBe('pending');
    answer!();
    await vi.waitFor(() => expect(outcome).toBe('read'), { timeout: 2000 });
    expect(buffer.every((byte) => byte === 0x5a)).toBe(true);
  });
});
