import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { QmpListener } from './qmp-listener.js';
import { QmpServer } from './qmp-server.js';

const dir = mkdtempSync(path.join(tmpdir(), 'tsvirt-qmp-listener-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function connectTo(target: { path: string } | { port: number }): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const socket = 'path' in target ? connect(target.path, () => resolve(socket)) : connect(target.port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** A server on a Unix socket named `name`, for the duration of `run`. */
async function withUnixServer(name: string, run: (server: QmpServer, socketPath: string) => Promise<void>): Promise<void> {
  const socketPath = path.join(dir, name);
  const server = await QmpServer.start({ endpoints: [{ kind: 'unix', path: socketPath }] });
  try {
    await run(server, socketPath);
  } finally {
    await server.close();
  }
}

/** A raw client: collects every parsed message. */
async function client(target: { path: string } | { port: number }) {
  const socket = await connectTo(target);
  const messages: Record<string, unknown>[] = [];
  let buffer = '';
  socket.setEncoding('utf8');
  socket.on('data', (text: string) => {
    buffer += text;
    const lines = buffer.split('\r\n');
    buffer = lines.pop()!;
    for (const line of lines) messages.push(JSON.parse(line) as Record<string, unknown>);
  });
  const waitFor = async (count: number) => {
    for (let waited = 0; messages.length < count; waited++) {
      if (waited > 2000) throw new Error(`expected ${count} messages, got ${JSON.stringify(messages)}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return messages.splice(0, count);
  };
  return { socket, waitFor, send: (data: string | Uint8Array) => socket.write(data) };
}

describe('QmpListener', () => {
  it('serves several clients at once on TCP, each negotiating for itself', async () => {
    const server = await QmpServer.start({ endpoints: [{ kind: 'tcp', host: '127.0.0.1', port: 0 }], name: 'vm' });
    try {
      const port = server.listeners[0]!.port!;
      const [first, second] = await Promise.all([client({ port }), client({ port })]);
      expect((await first.waitFor(1))[0]).toHaveProperty('QMP');
      expect((await second.waitFor(1))[0]).toHaveProperty('QMP');
      first.send('{"execute":"qmp_capabilities"}\r\n{"execute":"query-name"}\r\n');
      expect(await first.waitFor(2)).toEqual([{ return: {} }, { return: { name: 'vm' } }]);
      second.send('{"execute":"query-name"}');
      expect((await second.waitFor(1))[0]).toMatchObject({ error: { class: 'CommandNotFound' } });
      first.socket.destroy();
      second.socket.destroy();
    } finally {
      await server.close();
    }
  });

  it('survives hostile input: a huge value, deep nesting and binary garbage each get an error, and the session goes on', async () => {
    await withUnixServer('hostile.qmp', async (_server, socketPath) => {
      const qmp = await client({ path: socketPath });
      await qmp.waitFor(1);
      qmp.send('{"execute":"qmp_capabilities"}');
      await qmp.waitFor(1);
      // 8 MiB of one string, in pieces: dropped as it arrives, never stored whole.
      qmp.send('{"execute":"');
      for (let i = 0; i < 8; i++) qmp.send('x'.repeat(1 << 20));
      qmp.send('"}');
      expect(await qmp.waitFor(1)).toEqual([{ error: { class: 'GenericError', desc: 'JSON token size limit exceeded' } }]);
      qmp.send(`${'['.repeat(200_000)}${']'.repeat(200_000)}`);
      expect(await qmp.waitFor(1)).toEqual([{ error: { class: 'GenericError', desc: 'JSON nesting depth limit exceeded' } }]);
      qmp.send(Uint8Array.from({ length: 1 << 20 }, (_, i) => 0x80 | ((i * 7919) & 0x7f)));
      expect(await qmp.waitFor(1)).toEqual([{ error: { class: 'GenericError', desc: "JSON parse error, stray '\\x80'" } }]);
      qmp.send('\n{"execute":"query-status","id":"still here"}');
      expect(await qmp.waitFor(1)).toEqual([{ return: { status: 'running', singlestep: false, running: true }, id: 'still here' }]);
      qmp.socket.destroy();
    });
  });

  it('reads no further from a client that does not read its answers, and loses nothing once it does', async () => {
    await withUnixServer('slow-reader.qmp', async (server, socketPath) => {
      // Count what the session is given.
      let received = 0;
      const connectSession = server.monitor.connect.bind(server.monitor);
      server.monitor.connect = (sink) => {
        const session = connectSession(sink);
        const receive = session.receive.bind(session);
        session.receive = (bytes) => {
          received += bytes.length;
          receive(bytes);
        };
        return session;
      };
      const socket = await connectTo({ path: socketPath });
      socket.pause();
      const requests = 200_000;
      socket.write('{"execute":"qmp_capabilities"}');
      for (let sent = 0; sent < requests; sent += 1000) socket.write('{"execute":"query-name"}'.repeat(1000));
      // Until the monitor has read all it will read: the bytes it took stop changing.
      let taken = -1;
      for (let polls = 0; polls < 100 && received !== taken; polls++) {
        taken = received;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      // It stopped once its unread answers passed 1 MiB (about 1.6 MB of requests), far short of the 4.8 MB sent.
      expect(taken).toBeGreaterThan(1_000_000);
      expect(taken).toBeLessThan(2_500_000);
      let answers = 0;
      let tail = '';
      socket.setEncoding('utf8');
      socket.on('data', (text: string) => {
        const lines = (tail + text).split('\r\n');
        tail = lines.pop()!;
        answers += lines.length;
      });
      socket.resume();
      for (let waited = 0; answers < requests + 2; waited++) {
        if (waited > 1000) throw new Error(`${answers} answers`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      // The greeting, qmp_capabilities' answer, and one answer per request.
      expect(answers).toBe(requests + 2);
      socket.destroy();
    });
  });

  it('replaces a stale Unix socket, removes its socket when closed, and reports a path it cannot listen on', async () => {
    const socketPath = path.join(dir, 'stale.qmp');
    // A process that died without cleaning up leaves its socket behind.
    spawnSync(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(socketPath)}, () => process.exit(0))`]);
    expect(existsSync(socketPath)).toBe(true);
    const server = await QmpServer.start({ endpoints: [{ kind: 'unix', path: socketPath }] });
    const qmp = await client({ path: socketPath });
    expect((await qmp.waitFor(1))[0]).toHaveProperty('QMP');
    await server.close();
    expect(existsSync(socketPath)).toBe(false);
    await expect(QmpListener.listen(server.monitor, { kind: 'unix', path: path.join(dir, 'no/such/dir/x.qmp') })).rejects.toThrow(/^cannot listen on unix:.*x\.qmp: the directory .*no\/such\/dir does not exist$/);
  });
});
