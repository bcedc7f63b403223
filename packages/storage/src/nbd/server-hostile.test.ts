import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BlockBackend } from '@tsvirt/interfaces';
import { MemoryBlockBackend } from '@tsvirt/interfaces/testing';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import * as nbd from './protocol.js';
import { NbdServer, type NbdServerEvent, type NbdServerOptions } from './server.js';
import { SocketReader } from './socket-reader.js';

const dir = mkdtempSync(join(tmpdir(), 'tsvirt-nbd-server-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A hand-driven NBD client: it sends exactly what a test says, and reads replies only when told to. */
class RawClient {
  private constructor(
    readonly socket: Socket,
    readonly reader: SocketReader,
  ) {}

  static async connect(where: { port?: number; path?: string }): Promise<RawClient> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const socket = where.path !== undefined ? connect(where.path) : connect(where.port ?? 0, '127.0.0.1');
      socket.once('connect', () => resolve(socket));
      socket.once('error', reject);
    });
    // A test that stops reading must not die of the server hanging up on it.
    socket.on('error', () => {});
    return new RawClient(socket, new SocketReader(socket));
  }

  option(option: number, data: Uint8Array = new Uint8Array(0)): void {
    const head = new DataView(new ArrayBuffer(16));
    head.setBigUint64(0, nbd.IHAVEOPT);
    head.setUint32(8, option);
    head.setUint32(12, data.length);
    this.socket.write(new Uint8Array(head.buffer));
    if (data.length > 0) this.socket.write(data);
  }

  async optionReply(): Promise<{ option: number; type: number; data: Uint8Array }> {
    const head = new DataView((await this.reader.read(20)).buffer);
    expect(head.getBigUint64(0)).toBe(nbd.OPTION_REPLY_MAGIC);
    return { option: head.getUint32(8), type: head.getUint32(12), data: await this.reader.read(head.getUint32(16)) };
  }

  /** Greeting, client flags, optional structured replies, then NBD_OPT_GO; returns what the server said about the export. */
  async handshake(exportName: string, structured = false): Promise<{ size: number; maxPayload: number }> {
    await this.greeting();
    if (structured) {
      this.option(nbd.OPT_STRUCTURED_REPLY);
      expect((await this.optionReply()).type).toBe(nbd.REP_ACK);
    }
    const name = new TextEncoder().encode(exportName);
    const go = new Uint8Array(8 + name.length);
    const view = new DataView(go.buffer);
    view.setUint32(0, name.length);
    go.set(name, 4);
    view.setUint16(4 + name.length, 1);
    view.setUint16(6 + name.length, nbd.INFO_BLOCK_SIZE);
    this.option(nbd.OPT_GO, go);
    let size = -1;
    let maxPayload = -1;
    for (;;) {
      const reply = await this.optionReply();
      if (reply.type === nbd.REP_ACK) break;
      expect(reply.type).toBe(nbd.REP_INFO);
      const info = new DataView(reply.data.buffer);
      if (info.getUint16(0) === nbd.INFO_EXPORT) size = nbd.u64(info, 2);
      if (info.getUint16(0) === nbd.INFO_BLOCK_SIZE) maxPayload = info.getUint32(10);
    }
    return { size, maxPayload };
  }

  async greeting(): Promise<void> {
    await this.reader.read(18);
    this.socket.write(new Uint8Array([0, 0, 0, nbd.FLAG_FIXED_NEWSTYLE | nbd.FLAG_NO_ZEROES]));
  }

  request(type: number, handle: number, offset: number, length: number, payload?: Uint8Array): void {
    const head = new DataView(new ArrayBuffer(28));
    head.setUint32(0, nbd.REQUEST_MAGIC);
    head.setUint16(6, type);
    head.setBigUint64(8, BigInt(handle));
    nbd.setU64(head, 16, offset);
    head.setUint32(24, length);
    this.socket.write(new Uint8Array(head.buffer));
    if (payload) this.socket.write(payload);
  }

  async simpleReply(dataLength = 0): Promise<{ error: number; handle: number; data: Uint8Array }> {
    const head = new DataView((await this.reader.read(16)).buffer);
    expect(head.getUint32(0)).toBe(nbd.SIMPLE_REPLY_MAGIC);
    const error = head.getUint32(4);
    return { error, handle: Number(head.getBigUint64(8)), data: error === 0 && dataLength > 0 ? await this.reader.read(dataLength) : new Uint8Array(0) };
  }

  async chunk(): Promise<{ flags: number; type: number; handle: number; payload: Uint8Array }> {
    const head = new DataView((await this.reader.read(20)).buffer);
    expect(head.getUint32(0)).toBe(nbd.STRUCTURED_REPLY_MAGIC);
    return { flags: head.getUint16(4), type: head.getUint16(6), handle: Number(head.getBigUint64(8)), payload: await this.reader.read(head.getUint32(16)) };
  }

  /** Resolves when the server has closed the connection. */
  closed(): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) resolve();
      this.socket.once('close', () => resolve());
      // Reading on is what lets the end of the stream be seen.
      this.socket.resume();
    });
  }
}

/** A backend that counts the reads it serves. */
function countingReads(backend: BlockBackend): BlockBackend & { reads: number } {
  const counted = Object.assign(Object.create(backend) as BlockBackend, { reads: 0 });
  counted.readAt = async (offset: number, into: Uint8Array) => {
    counted.reads++;
    await backend.readAt(offset, into);
  };
  return counted;
}

/** A huge export that must never be read or written (requests to it are refused before any I/O). */
function untouchable(size = 2 ** 40): BlockBackend {
  const refuse = async () => {
    throw new Error('the backend was used');
  };
  return { size, readOnly: false, readAt: refuse, writeAt: refuse, flush: async () => {}, close: async () => {} };
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function pattern(length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 7 + 3) & 0xff);
}

/** The in-flight accounting the server reported, as maxima. */
function peaks(events: NbdServerEvent[]): { requests: number; bytes: number; totalRequests: number; totalBytes: number; reports: number } {
  const flows = events.filter((event) => event.kind === 'in-flight');
  return {
    requests: Math.max(0, ...flows.map((event) => event.requests)),
    bytes: Math.max(0, ...flows.map((event) => event.bytes)),
    totalRequests: Math.max(0, ...flows.map((event) => event.totalRequests)),
    totalBytes: Math.max(0, ...flows.map((event) => event.totalBytes)),
    reports: flows.length,
  };
}

describe('NBD server bounds against hostile clients', () => {
  const servers: NbdServer[] = [];
  const clients: RawClient[] = [];
  afterEach(async () => {
    for (const client of clients.splice(0)) client.socket.destroy();
    for (const server of servers.splice(0)) await server.close();
  });

  async function start(options: NbdServerOptions, unix = false): Promise<{ server: NbdServer; where: { port?: number; path?: string } }> {
    const server = new NbdServer(options);
    servers.push(server);
    const where = await server.listen(unix ? { path: join(dir, `s${servers.length}-${Date.now()}.sock`) } : { port: 0 });
    return { server, where };
  }

  async function client(where: { port?: number; path?: string }): Promise<RawClient> {
    const raw = await RawClient.connect(where);
    clients.push(raw);
    return raw;
  }

  it('a client that does not read its replies: the server stops reading it, and its bytes and requests in flight stay within the bounds', async () => {
    const events: NbdServerEvent[] = [];
    const backend = countingReads(new MemoryBlockBackend(pattern(4 << 20)));
    const limits = { maxPayload: 1 << 20, bytesPerConnection: 3 << 20, writeBufferBytes: 1 << 20 };
    const { server, where } = await start({ exports: [{ name: 'disk', backend }], limits, observer: (event) => events.push(event) }, true);
    const rude = await client(where);
    await rude.handshake('disk');
    rude.socket.pause();
    const count = 64;
    for (let i = 0; i < count; i++) rude.request(nbd.CMD_READ, i, (i % 4) << 20, 1 << 20);
    await delay(400);
    // Unbounded, every read would be served and its 1 MiB reply queued in memory.
    expect(backend.reads).toBeLessThan(count);
    await vi.waitFor(() => expect(events).toContainEqual(expect.objectContaining({ kind: 'reading-paused' })), { timeout: 5000 });
    const peak = peaks(events);
    expect(peak.reports).toBeGreaterThan(0);
    expect(peak.bytes).toBeLessThanOrEqual(limits.bytesPerConnection);
    expect(peak.requests).toBeLessThanOrEqual(16);
    // Once it reads, everything is answered, in order, and the accounting returns to zero.
    rude.socket.resume();
    const contents = pattern(4 << 20);
    for (let i = 0; i < count; i++) {
      const reply = await rude.simpleReply(1 << 20);
      expect(reply).toMatchObject({ error: 0, handle: i });
      expect(Buffer.compare(reply.data, contents.subarray((i % 4) << 20, ((i % 4) + 1) << 20))).toBe(0);
    }
    expect(events).toContainEqual(expect.objectContaining({ kind: 'reading-resumed' }));
    await vi.waitFor(() => expect(server.usage()).toMatchObject({ requestsInFlight: 0, bytesInFlight: 0 }), { timeout: 2000 });
  });

  it('many small requests from a client that does not read: at most 16 are in flight, then the server waits', async () => {
    const events: NbdServerEvent[] = [];
    const backend = countingReads(new MemoryBlockBackend(65536));
    const { server, where } = await start({ exports: [{ name: '', backend }], observer: (event) => events.push(event) }, true);
    const rude = await client(where);
    await rude.handshake('');
    rude.socket.pause();
    const count = 20000;
    const batch = new Uint8Array(28 * count);
    const view = new DataView(batch.buffer);
    for (let i = 0; i < count; i++) {
      view.setUint32(i * 28, nbd.REQUEST_MAGIC);
      view.setUint16(i * 28 + 6, nbd.CMD_READ);
      view.setBigUint64(i * 28 + 8, BigInt(i));
      view.setUint32(i * 28 + 24, 16);
    }
    rude.socket.write(batch);
    await delay(400);
    expect(backend.reads).toBeLessThan(count);
    await vi.waitFor(() => expect(events).toContainEqual(expect.objectContaining({ kind: 'reading-paused', reason: 'budget' })), { timeout: 5000 });
    const peak = peaks(events);
    expect(peak.requests).toBe(16);
    rude.socket.resume();
    const replies = new DataView((await rude.reader.read(count * 32)).buffer);
    for (let i = 0; i < count; i++) {
      expect(replies.getUint32(i * 32)).toBe(nbd.SIMPLE_REPLY_MAGIC);
      expect(replies.getUint32(i * 32 + 4)).toBe(0);
      expect(replies.getBigUint64(i * 32 + 8)).toBe(BigInt(i));
    }
    await vi.waitFor(() => expect(server.usage()).toMatchObject({ requestsInFlight: 0, bytesInFlight: 0 }), { timeout: 2000 });
  });

  it('the total budget is shared by all connections: three clients that do not read never hold more than totalBytes', async () => {
    const events: NbdServerEvent[] = [];
    const backend = countingReads(new MemoryBlockBackend(pattern(1 << 20)));
    const limits = { maxPayload: 1 << 20, bytesPerConnection: 3 << 20, totalBytes: 4 << 20, writeBufferBytes: 16 << 20 };
    const { server, where } = await start({ exports: [{ name: '', backend }], limits, observer: (event) => events.push(event) }, true);
    const rude = [await client(where), await client(where), await client(where)];
    for (const raw of rude) {
      await raw.handshake('');
      raw.socket.pause();
    }
    for (const raw of rude) for (let i = 0; i < 16; i++) raw.request(nbd.CMD_READ, i, 0, 1 << 20);
    await delay(400);
    expect(backend.reads).toBeLessThan(48);
    await vi.waitFor(() => expect(events).toContainEqual(expect.objectContaining({ kind: 'reading-paused', reason: 'budget' })), { timeout: 5000 });
    const peak = peaks(events);
    expect(peak.reports).toBeGreaterThan(0);
    expect(peak.totalBytes).toBeLessThanOrEqual(limits.totalBytes);
    // More than one connection held budget at once: the total, not one connection's share, was the bound.
    expect(peak.totalBytes).toBeGreaterThan(limits.bytesPerConnection);
    expect(peak.bytes).toBeLessThanOrEqual(limits.bytesPerConnection);
    // A waiting connection is served once the others read.
    await Promise.all(
      rude.map(async (raw) => {
        raw.socket.resume();
        for (let i = 0; i < 16; i++) expect(await raw.simpleReply(1 << 20)).toMatchObject({ error: 0, handle: i });
      }),
    );
    expect(backend.reads).toBe(48);
    await vi.waitFor(() => expect(server.usage()).toMatchObject({ requestsInFlight: 0, bytesInFlight: 0 }), { timeout: 2000 });
  });

  it('a client that hangs up while it holds budget gives it all back, and the next client is served', async () => {
    const limits = { maxPayload: 1 << 20, bytesPerConnection: 3 << 20, totalBytes: 3 << 20, writeBufferBytes: 16 << 20 };
    const { server, where } = await start({ exports: [{ name: '', backend: new MemoryBlockBackend(1 << 20) }], limits }, true);
    const rude = await client(where);
    await rude.handshake('');
    rude.socket.pause();
    for (let i = 0; i < 16; i++) rude.request(nbd.CMD_READ, i, 0, 1 << 20);
    await vi.waitFor(() => expect(server.usage().bytesInFlight).toBeGreaterThan(2 << 20), { timeout: 2000 });
    rude.socket.destroy();
    await vi.waitFor(() => expect(server.usage()).toMatchObject({ connections: 0, requestsInFlight: 0, bytesInFlight: 0 }), { timeout: 2000 });
    const polite = await client(where);
    await polite.handshake('');
    polite.request(nbd.CMD_READ, 1, 0, 1 << 20);
    expect(await polite.simpleReply(1 << 20)).toMatchObject({ error: 0, handle: 1 });
  });

  it('a client that keeps sending while its request is served is not read without bound', async () => {
    let release: () => void = () => {};
    const stalled = new Promise<void>((resolve) => (release = resolve));
    const backend = new MemoryBlockBackend(65536);
    const slow: BlockBackend = Object.assign(Object.create(backend) as BlockBackend, {
      readAt: async (offset: number, into: Uint8Array) => {
        await stalled;
        await backend.readAt(offset, into);
      },
    });
    const { where } = await start({ exports: [{ name: '', backend: slow }] }, true);
    const eager = await client(where);
    await eager.handshake('');
    eager.request(nbd.CMD_READ, 1, 0, 512);
    // 16 MiB of requests while the first one is stuck in the backend.
    const flood = new Uint8Array(16 << 20);
    const view = new DataView(flood.buffer);
    for (let at = 0; at + 28 <= flood.length; at += 28) {
      view.setUint32(at, nbd.REQUEST_MAGIC);
      view.setUint16(at + 6, nbd.CMD_FLUSH);
    }
    eager.socket.write(flood);
    await delay(400);
    // The server took at most a small buffer's worth: the rest waits on the client's side.
    expect(eager.socket.writableLength).toBeGreaterThan(14 << 20);
    release();
  });

  it('a client that sends its requests and then half-closes still gets every reply', async () => {
    const backend = new MemoryBlockBackend(pattern(65536));
    // A backend that takes its time, so the FIN arrives while requests are still being served.
    const slow: BlockBackend = Object.assign(Object.create(backend) as BlockBackend, {
      readAt: async (offset: number, into: Uint8Array) => {
        await delay(5);
        await backend.readAt(offset, into);
      },
    });
    const { where } = await start({ exports: [{ name: '', backend: slow }] });
    const raw = await client(where);
    await raw.handshake('');
    for (let i = 0; i < 10; i++) raw.request(nbd.CMD_READ, i, i * 4096, 4096);
    raw.socket.end();
    for (let i = 0; i < 10; i++) {
      const reply = await raw.simpleReply(4096);
      expect(reply).toMatchObject({ error: 0, handle: i });
      expect(Buffer.compare(reply.data, pattern(65536).subarray(i * 4096, (i + 1) * 4096))).toBe(0);
    }
    await raw.closed();
  });

  it.each([
    ['the default 32 MiB', undefined, 32 << 20],
    ['a configured 1 MiB', 1 << 20, 1 << 20],
  ])('with %s maximum payload, advertised in NBD_INFO_BLOCK_SIZE, a larger read or cache gets EINVAL as from qemu-nbd, and the connection goes on', async (_name, maxPayload, expected) => {
    const backend = untouchable();
    const { where } = await start({ exports: [{ name: 'big', backend }], limits: maxPayload === undefined ? undefined : { maxPayload } });
    const raw = await client(where);
    expect((await raw.handshake('big')).maxPayload).toBe(expected);
    raw.request(nbd.CMD_READ, 1, 0, expected + 1);
    expect(await raw.simpleReply()).toMatchObject({ error: nbd.EINVAL, handle: 1 });
    raw.request(nbd.CMD_CACHE, 2, 0, expected + 1);
    expect(await raw.simpleReply()).toMatchObject({ error: nbd.EINVAL, handle: 2 });
    raw.request(nbd.CMD_FLUSH, 3, 0, 0);
    expect(await raw.simpleReply()).toMatchObject({ error: 0, handle: 3 });
  });

  it('a structured reply to an oversized read is an EINVAL error chunk that names the maximum', async () => {
    const { where } = await start({ exports: [{ name: '', backend: untouchable() }] });
    const raw = await client(where);
    await raw.handshake('', true);
    raw.request(nbd.CMD_READ, 7, 0, (32 << 20) + 1);
    const chunk = await raw.chunk();
    expect(chunk).toMatchObject({ flags: nbd.REPLY_FLAG_DONE, type: nbd.REPLY_TYPE_ERROR, handle: 7 });
    const view = new DataView(chunk.payload.buffer);
    expect(view.getUint32(0)).toBe(nbd.EINVAL);
    expect(new TextDecoder().decode(chunk.payload.subarray(6, 6 + view.getUint16(4)))).toContain(String(32 << 20));
  });

  it('a write larger than the maximum payload gets EINVAL, then the server hangs up without taking the payload (as qemu-nbd does)', async () => {
    const events: NbdServerEvent[] = [];
    const { where } = await start({ exports: [{ name: '', backend: untouchable() }], observer: (event) => events.push(event) });
    const raw = await client(where);
    await raw.handshake('');
    raw.request(nbd.CMD_WRITE, 9, 0, (32 << 20) + 1, new Uint8Array(4096));
    expect(await raw.simpleReply()).toMatchObject({ error: nbd.EINVAL, handle: 9 });
    await raw.closed();
    expect(events).toContainEqual(expect.objectContaining({ kind: 'protocol-error' }));
  });

  it('negotiation: a client that sends options without reading the replies is paused, then answered in full', async () => {
    const events: NbdServerEvent[] = [];
    const name = 'x'.repeat(4000);
    const { where } = await start({ exports: [{ name, backend: new MemoryBlockBackend(4096) }], limits: { writeBufferBytes: 256 << 10 }, observer: (event) => events.push(event) }, true);
    const rude = await client(where);
    await rude.greeting();
    rude.socket.pause();
    const count = 3000;
    for (let i = 0; i < count; i++) rude.option(nbd.OPT_LIST);
    await vi.waitFor(() => expect(events).toContainEqual(expect.objectContaining({ kind: 'reading-paused', reason: 'write-buffer' })), { timeout: 5000 });
    rude.socket.resume();
    for (let i = 0; i < count; i++) {
      expect((await rude.optionReply()).type).toBe(nbd.REP_SERVER);
      expect((await rude.optionReply()).type).toBe(nbd.REP_ACK);
    }
  });
});
