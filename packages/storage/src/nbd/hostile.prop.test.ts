/**
 * Fuzzing both ends of NBD for a bounded time. The server meets clients that
 * send random or mutated handshakes and requests; the client meets a server
 * whose every answer may be wrong. Neither may throw out, hang past a bound,
 * or hold more than its limits. fast-check prints the seed and the path of a
 * failing case: `FC_SEED=<seed>` replays it (see vitest.setup.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fc, test } from '@fast-check/vitest';
import { type BlockBackend, BlockError } from '@tsvirt/interfaces';
import { MemoryBlockBackend } from '@tsvirt/interfaces/testing';
import { afterAll, describe, expect } from 'vitest';
import { NbdClient } from './client.js';
import { readCost } from './flow-control.js';
import * as nbd from './protocol.js';
import { NbdServer, type NbdServerEvent } from './server.js';
import { SocketReader } from './socket-reader.js';

const dir = mkdtempSync(join(tmpdir(), 'tsvirt-nbd-fuzz-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Each broad fuzz property stops starting new cases after this long, each
 * focused one after half of it (the cases are the same for a seed, only fewer
 * on a slow machine).
 */
const TIME_LIMIT_MS = 2500;
/** A case that takes longer than this is a hang. */
const CASE_TIMEOUT_MS = 5000;

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves true when `condition` holds, false if it does not within `ms`. */
async function within(ms: number, condition: () => boolean): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await delay(5)) if (condition()) return true;
  return condition();
}

/** Settles `promise`, or reports that it did not settle within `ms`. */
async function settle<T>(promise: Promise<T>, ms: number): Promise<{ value?: T; error?: unknown; hung?: true }> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([
    promise.then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    ),
    new Promise<{ hung: true }>((resolve) => (timer = setTimeout(() => resolve({ hung: true }), ms))),
  ]);
  clearTimeout(timer);
  return outcome;
}

// ---------------------------------------------------------------------------
// The server against adversarial clients.

const SERVER_LIMITS = {
  maxPayload: 64 << 10,
  requestsPerConnection: 4,
  bytesPerConnection: 2 * readCost(64 << 10),
  totalRequests: 8,
  totalBytes: 4 * readCost(64 << 10),
  writeBufferBytes: 64 << 10,
};
const DISK_SIZE = 256 << 10;

interface OptionStep {
  option: number;
  body: Uint8Array;
  /** A length field that lies about the body. */
  declaredLength: number | undefined;
}

interface RequestStep {
  type: number;
  flags: number;
  handle: bigint;
  offset: bigint;
  length: number;
  /** What follows a write's header: its payload, part of it, or nothing. */
  payload: 'exact' | 'short' | 'none';
}

interface ClientScript {
  clientFlags: number;
  options: OptionStep[];
  finish: { kind: 'go' | 'info' | 'export-name'; exportName: string; infos: number[] } | undefined;
  requests: RequestStep[];
  mutations: Array<[at: number, byte: number]>;
  truncate: number | undefined;
  readsReplies: boolean;
}

const u32 = fc.integer({ min: 0, max: 0xffffffff });

/** `arbitrary` once in `oneIn` cases, otherwise undefined. */
function sometimes<T>(arbitrary: fc.Arbitrary<T>, oneIn: number): fc.Arbitrary<T | undefined> {
  return fc.oneof({ weight: oneIn - 1, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary });
}

const exportNames = fc.oneof(fc.constantFrom('', 'ro', 'failing'), fc.string({ maxLength: 12 }));

/** A well-formed NBD_OPT_GO/INFO body, or random bytes. */
function goBody(exportName: string, infos: number[]): Uint8Array {
  const name = new TextEncoder().encode(exportName);
  const body = new Uint8Array(6 + name.length + infos.length * 2);
  const view = new DataView(body.buffer);
  view.setUint32(0, name.length);
  body.set(name, 4);
  view.setUint16(4 + name.length, infos.length);
  infos.forEach((info, index) => view.setUint16(6 + name.length + index * 2, info));
  return body;
}

function metaBody(exportName: string, queries: string[]): Uint8Array {
  const encoder = new TextEncoder();
  const name = encoder.encode(exportName);
  const encoded = queries.map((query) => encoder.encode(query));
  const body = new Uint8Array(8 + name.length + encoded.reduce((sum, query) => sum + 4 + query.length, 0));
  const view = new DataView(body.buffer);
  view.setUint32(0, name.length);
  body.set(name, 4);
  view.setUint32(4 + name.length, encoded.length);
  let at = 8 + name.length;
  for (const query of encoded) {
    view.setUint32(at, query.length);
    body.set(query, at + 4);
    at += 4 + query.length;
  }
  return body;
}

const optionStep: fc.Arbitrary<OptionStep> = fc.oneof(
  fc.record({ option: fc.constant(nbd.OPT_STRUCTURED_REPLY), body: fc.constant(new Uint8Array(0)), declaredLength: fc.constant(undefined) }),
  fc.record({ option: fc.constantFrom(nbd.OPT_LIST, nbd.OPT_ABORT), body: fc.uint8Array({ maxLength: 8 }), declaredLength: fc.constant(undefined) }),
  fc
    .tuple(fc.constantFrom(nbd.OPT_SET_META_CONTEXT, nbd.OPT_LIST_META_CONTEXT), exportNames, fc.array(fc.constantFrom('base:allocation', 'base:', 'qemu:dirty-bitmap:x', ''), { maxLength: 3 }))
    .map(([option, name, queries]) => ({ option, body: metaBody(name, queries), declaredLength: undefined })),
  fc
    .tuple(exportNames, fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 4 }))
    .map(([name, infos]) => ({ option: nbd.OPT_INFO, body: goBody(name, infos), declaredLength: undefined })),
  fc.record({ option: u32, body: fc.uint8Array({ maxLength: 64 }), declaredLength: sometimes(fc.oneof(fc.nat({ max: 128 }), u32), 2) }),
);

const requestStep: fc.Arbitrary<RequestStep> = fc.record({
  type: fc.oneof(fc.constantFrom(nbd.CMD_READ, nbd.CMD_WRITE, nbd.CMD_FLUSH, nbd.CMD_TRIM, nbd.CMD_CACHE, nbd.CMD_WRITE_ZEROES, nbd.CMD_BLOCK_STATUS, nbd.CMD_DISC), fc.integer({ min: 0, max: 0xffff })),
  flags: fc.oneof(fc.constant(0), fc.constantFrom(nbd.CMD_FLAG_FUA, nbd.CMD_FLAG_NO_HOLE, nbd.CMD_FLAG_DF, nbd.CMD_FLAG_REQ_ONE), fc.integer({ min: 0, max: 0xffff })),
  handle: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  offset: fc.oneof(fc.bigInt({ min: 0n, max: BigInt(DISK_SIZE) }), fc.constantFrom(BigInt(DISK_SIZE - 1), 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })),
  length: fc.oneof(fc.nat({ max: 70_000 }), fc.constantFrom(0, 1, SERVER_LIMITS.maxPayload, SERVER_LIMITS.maxPayload + 1, 32 << 20, 0xffffffff), u32),
  payload: fc.constantFrom('exact' as const, 'exact' as const, 'short' as const, 'none' as const),
});

const clientScript: fc.Arbitrary<ClientScript> = fc.record({
  clientFlags: fc.oneof(fc.constant(nbd.FLAG_FIXED_NEWSTYLE | nbd.FLAG_NO_ZEROES), fc.constant(nbd.FLAG_FIXED_NEWSTYLE), u32),
  options: fc.array(optionStep, { maxLength: 5 }),
  // Nearly always the client gets to transmission; sometimes it never picks an export.
  finish: fc.oneof(
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 6, arbitrary: fc.record({ kind: fc.constantFrom('go' as const, 'go' as const, 'info' as const, 'export-name' as const), exportName: exportNames, infos: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }) }) },
  ),
  requests: fc.array(requestStep, { maxLength: 12 }),
  mutations: fc.oneof(fc.constant<Array<[number, number]>>([]), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 })),
  truncate: sometimes(fc.nat(), 5),
  readsReplies: fc.boolean(),
});

/** The bytes a scripted client sends, all at once: it never waits for the server. */
function encodeClient(script: ClientScript): Uint8Array {
  const parts: Uint8Array[] = [];
  const flags = new DataView(new ArrayBuffer(4));
  flags.setUint32(0, script.clientFlags);
  parts.push(new Uint8Array(flags.buffer));
  const option = (code: number, body: Uint8Array, declaredLength = body.length) => {
    const head = new DataView(new ArrayBuffer(16));
    head.setBigUint64(0, nbd.IHAVEOPT);
    head.setUint32(8, code);
    head.setUint32(12, declaredLength);
    parts.push(new Uint8Array(head.buffer), body);
  };
  for (const step of script.options) option(step.option, step.body, step.declaredLength);
  if (script.finish) {
    const { kind, exportName, infos } = script.finish;
    if (kind === 'export-name') option(nbd.OPT_EXPORT_NAME, new TextEncoder().encode(exportName));
    else option(kind === 'go' ? nbd.OPT_GO : nbd.OPT_INFO, goBody(exportName, infos));
  }
  for (const request of script.requests) {
    const head = new DataView(new ArrayBuffer(28));
    head.setUint32(0, nbd.REQUEST_MAGIC);
    head.setUint16(4, request.flags);
    head.setUint16(6, request.type);
    head.setBigUint64(8, request.handle);
    head.setBigUint64(16, request.offset);
    head.setUint32(24, request.length);
    parts.push(new Uint8Array(head.buffer));
    if (request.type === nbd.CMD_WRITE && request.payload !== 'none') {
      const whole = Math.min(request.length, 70_000);
      parts.push(new Uint8Array(request.payload === 'exact' ? whole : Math.floor(whole / 2)).fill(0x3c));
    }
  }
  const bytes = Buffer.concat(parts);
  for (const [at, byte] of script.mutations) if (bytes.length > 0) bytes[at % bytes.length] = byte;
  return script.truncate === undefined ? bytes : bytes.subarray(0, script.truncate % (bytes.length + 1));
}

/** A backend that fails every request, in every way a backend can fail. */
function failingBackend(): BlockBackend {
  let calls = 0;
  const fail = (): Promise<never> => {
    calls++;
    if (calls % 3 === 0) throw new Error('thrown synchronously');
    return Promise.reject(calls % 3 === 1 ? new BlockError('BLOCK_IO', 'the disk is on fire\nreally') : new TypeError('not even a BlockError'));
  };
  return { size: DISK_SIZE, readOnly: false, readAt: fail, writeAt: fail, flush: fail, close: async () => {} };
}

/**
 * A fresh server for one case: fast-check abandons a run it interrupts (time
 * limit, timeout), and a run still going in the background must not disturb
 * the next one.
 */
async function serverForCase(): Promise<{ server: NbdServer; path: string; violations: string[] }> {
  const violations: string[] = [];
  const observer = (event: NbdServerEvent) => {
    if (event.kind === 'internal-error') violations.push(`internal error: ${event.message}`);
    if (event.kind === 'in-flight') {
      if (event.requests > SERVER_LIMITS.requestsPerConnection || event.bytes > SERVER_LIMITS.bytesPerConnection) violations.push(`connection above its limits: ${JSON.stringify(event)}`);
      if (event.totalRequests > SERVER_LIMITS.totalRequests || event.totalBytes > SERVER_LIMITS.totalBytes) violations.push(`server above its limits: ${JSON.stringify(event)}`);
    }
  };
  const server = new NbdServer({
    exports: [
      { name: '', backend: new MemoryBlockBackend(DISK_SIZE) },
      { name: 'ro', backend: new MemoryBlockBackend(DISK_SIZE), readOnly: true, description: 'read-only\x1b[31m' },
      { name: 'failing', backend: failingBackend() },
    ],
    limits: SERVER_LIMITS,
    observer,
  });
  const path = join(dir, `server-${process.hrtime.bigint()}.sock`);
  await server.listen({ path });
  return { server, path, violations };
}

describe('the NBD server against adversarial clients', () => {
  test.prop([clientScript], { numRuns: 150, timeout: CASE_TIMEOUT_MS, interruptAfterTimeLimit: TIME_LIMIT_MS, markInterruptAsFailure: false })(
    'never an uncaught error, never a hang, never above the limits, and everything given back',
    async (script) => {
      const { server, path, violations } = await serverForCase();
      try {
        const bytes = encodeClient(script);
        const socket = await new Promise<Socket>((resolve, reject) => {
          const socket = connect(path, () => resolve(socket));
          socket.once('error', reject);
        });
        socket.on('error', () => {});
        let closed = false;
        socket.on('close', () => (closed = true));
        if (script.readsReplies) socket.resume();
        else socket.pause();
        socket.write(bytes);
        if (script.readsReplies) {
          // A client that reads and then says it is done must be let go: the server finishes or refuses, and closes.
          socket.end();
          expect(await within(2000, () => closed), 'the server did not close the connection after the client finished').toBe(true);
        } else {
          await delay(10);
          socket.destroy();
        }
        // Whatever happened, the connection's budget comes back once it is gone.
        expect(await within(2000, () => server.usage().connections === 0), 'the server kept the connection').toBe(true);
        expect(server.usage()).toEqual({ connections: 0, requestsInFlight: 0, bytesInFlight: 0 });
        expect(violations).toEqual([]);
      } finally {
        await server.close();
      }
    },
  );
});

// ---------------------------------------------------------------------------
// The client against an adversarial server.

const CONTEXT = 3;

type ChunkPlan = {
  type: number;
  flags: number;
  otherHandle: boolean;
  /** Offset of data/hole chunks, relative to the request's. */
  offsetDelta: number;
  /** Length of data/hole chunks, relative to the request's. */
  lengthDelta: number;
  extents: Array<[number, number]>;
  wrongContext: boolean;
  error: number;
  message: Uint8Array;
  /** A length field that lies about the payload. */
  declaredLength: number | undefined;
};

type ReplyPlan =
  | { kind: 'proper' }
  | { kind: 'simple'; error: number }
  | { kind: 'chunks'; chunks: ChunkPlan[] }
  /** Read data and holes at offsets relative to the request's, the last chunk marked done. */
  | { kind: 'pieces'; pieces: Array<{ start: number; end: number; hole: boolean }> }
  | { kind: 'garbage'; bytes: Uint8Array }
  | { kind: 'silence' }
  | { kind: 'hang-up' };

interface ServerScript {
  greeting: 'valid' | 'silent' | 'garbage' | 'not-fixed';
  structured: boolean;
  metaContext: boolean;
  size: number;
  infos: Array<{ type: number; data: Uint8Array }>;
  refusal: { type: number; message: Uint8Array } | undefined;
  /** Byte changes in the negotiation replies: [reply index, position, byte]. */
  mutations: Array<[number, number, number]>;
  replies: ReplyPlan[];
}

/** Text with everything a terminal could be tricked by. */
const hostileText = fc
  .tuple(fc.array(fc.oneof(fc.constantFrom('\x1b[2J', '\x1b]0;x\x07', '\r', '\n', '\0', '\u202e', '\u200b', '\x9b', 'é', '😀'), fc.string({ maxLength: 8 })), { maxLength: 12 }), fc.nat({ max: 3 }))
  .map(([pieces, repeat]) => new TextEncoder().encode(pieces.join('').repeat(repeat === 3 ? 400 : 1)).subarray(0, 60_000));

/** A chunk type chosen to fit the request it answers (data or a hole for a read, block status for block status). */
const FITTING = -1;

const chunkPlan: fc.Arbitrary<ChunkPlan> = fc.record({
  type: fc.oneof(
    { weight: 3, arbitrary: fc.constant(FITTING) },
    { weight: 2, arbitrary: fc.constantFrom(nbd.REPLY_TYPE_NONE, nbd.REPLY_TYPE_OFFSET_DATA, nbd.REPLY_TYPE_OFFSET_HOLE, nbd.REPLY_TYPE_BLOCK_STATUS, nbd.REPLY_TYPE_ERROR, nbd.REPLY_TYPE_ERROR_OFFSET) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }) },
  ),
  flags: fc.oneof(fc.constant(nbd.REPLY_FLAG_DONE), fc.constant(0), fc.integer({ min: 0, max: 0xffff })),
  otherHandle: fc.oneof({ weight: 7, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  offsetDelta: fc.oneof(fc.constant(0), fc.integer({ min: -4096, max: 4096 }), fc.constantFrom(2 ** 40, -(2 ** 20))),
  lengthDelta: fc.oneof(fc.constant(0), fc.integer({ min: -4096, max: 4096 })),
  extents: fc.array(fc.tuple(fc.oneof(fc.constant(0), fc.nat({ max: 10_000 }), u32), fc.integer({ min: 0, max: 3 })), { maxLength: 5 }),
  wrongContext: fc.oneof({ weight: 3, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  error: fc.oneof(fc.constantFrom(0, nbd.EIO, nbd.EINVAL, nbd.ENOSPC), u32),
  message: hostileText,
  declaredLength: sometimes(fc.oneof(fc.nat({ max: 64 }), u32), 8),
});

const replyPlan: fc.Arbitrary<ReplyPlan> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ kind: 'proper' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('simple' as const), error: fc.oneof(fc.constant(0), fc.constant(nbd.EIO), u32) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('chunks' as const), chunks: fc.array(chunkPlan, { minLength: 1, maxLength: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('garbage' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'silence' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'hang-up' as const }) },
);

const serverScript: fc.Arbitrary<ServerScript> = fc.record({
  greeting: fc.constantFrom('valid' as const, 'valid' as const, 'valid' as const, 'valid' as const, 'valid' as const, 'silent' as const, 'garbage' as const, 'not-fixed' as const),
  structured: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  metaContext: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  size: fc.oneof(fc.constant(65536), fc.nat({ max: 1 << 20 }), fc.constantFrom(0, 2 ** 60)),
  infos: fc.array(
    fc.oneof(
      fc.tuple(fc.constant(nbd.INFO_DESCRIPTION), hostileText).map(([type, text]) => ({ type, data: text })),
      fc.tuple(fc.constant(nbd.INFO_BLOCK_SIZE), u32, u32, u32).map(([type, minimum, preferred, maximum]) => {
        const data = new DataView(new ArrayBuffer(12));
        data.setUint32(0, minimum);
        data.setUint32(4, preferred);
        data.setUint32(8, maximum);
        return { type, data: new Uint8Array(data.buffer) };
      }),
      fc.record({ type: fc.integer({ min: 0, max: 0xffff }), data: fc.uint8Array({ maxLength: 20 }) }),
    ),
    { maxLength: 3 },
  ),
  refusal: sometimes(fc.record({ type: fc.constantFrom(nbd.REP_ERR_UNKNOWN, nbd.REP_ERR_POLICY, 0x80000000 + 77), message: hostileText }), 8),
  mutations: fc.oneof(fc.constant<Array<[number, number, number]>>([]), fc.array(fc.tuple(fc.nat({ max: 8 }), fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 })),
  replies: fc.array(replyPlan, { minLength: 1, maxLength: 6 }),
});

/** What the client is asked to do: `at` is a fraction of the export's size. */
type ClientOperation = { kind: 'read' | 'write' | 'status' | 'flush' | 'zeroes' | 'discard'; at: number; length: number };

const clientOperations: fc.Arbitrary<ClientOperation[]> = fc.array(
  fc.record({ kind: fc.constantFrom('read' as const, 'read' as const, 'status' as const, 'status' as const, 'write' as const, 'flush' as const, 'zeroes' as const, 'discard' as const), at: fc.double({ min: 0, max: 1, noNaN: true }), length: fc.nat({ max: 9000 }) }),
  { minLength: 1, maxLength: 5 },
);

/** Plays a scripted server on one connection. */
async function playServer(socket: Socket, script: ServerScript): Promise<void> {
  const reader = new SocketReader(socket);
  let replyIndex = 0;
  const send = (bytes: Uint8Array) => {
    const copy = Uint8Array.from(bytes);
    for (const [index, at, byte] of script.mutations) if (index === replyIndex && copy.length > 0) copy[at % copy.length] = byte;
    replyIndex++;
    socket.write(copy);
  };
  if (script.greeting === 'silent') return;
  if (script.greeting === 'garbage') {
    socket.write(new TextEncoder().encode('SSH-2.0-OpenSSH_9.2\r\n'));
    return;
  }
  const greeting = new DataView(new ArrayBuffer(18));
  greeting.setBigUint64(0, nbd.NBDMAGIC);
  greeting.setBigUint64(8, nbd.IHAVEOPT);
  greeting.setUint16(16, script.greeting === 'not-fixed' ? 0 : nbd.FLAG_FIXED_NEWSTYLE | nbd.FLAG_NO_ZEROES);
  send(new Uint8Array(greeting.buffer));
  await reader.read(4);
  const optionReply = (option: number, type: number, data: Uint8Array = new Uint8Array(0)) => {
    const head = new DataView(new ArrayBuffer(20 + data.length));
    head.setBigUint64(0, nbd.OPTION_REPLY_MAGIC);
    head.setUint32(8, option);
    head.setUint32(12, type);
    head.setUint32(16, data.length);
    const bytes = new Uint8Array(head.buffer);
    bytes.set(data, 20);
    send(bytes);
  };
  for (;;) {
    const head = new DataView((await reader.read(16)).buffer);
    const option = head.getUint32(8);
    await reader.read(head.getUint32(12));
    if (option === nbd.OPT_STRUCTURED_REPLY) optionReply(option, script.structured ? nbd.REP_ACK : nbd.REP_ERR_UNSUP);
    else if (option === nbd.OPT_SET_META_CONTEXT) {
      if (script.metaContext) {
        const name = new TextEncoder().encode(nbd.BASE_ALLOCATION);
        const body = new Uint8Array(4 + name.length);
        new DataView(body.buffer).setUint32(0, CONTEXT);
        body.set(name, 4);
        optionReply(option, nbd.REP_META_CONTEXT, body);
      }
      optionReply(option, nbd.REP_ACK);
    } else if (option === nbd.OPT_GO) {
      if (script.refusal) {
        optionReply(option, script.refusal.type, script.refusal.message);
        return;
      }
      const info = new DataView(new ArrayBuffer(12));
      info.setUint16(0, nbd.INFO_EXPORT);
      nbd.setU64(info, 2, script.size);
      info.setUint16(10, nbd.TRANSMIT_HAS_FLAGS | nbd.TRANSMIT_SEND_FLUSH | nbd.TRANSMIT_SEND_TRIM | nbd.TRANSMIT_SEND_WRITE_ZEROES);
      optionReply(option, nbd.REP_INFO, new Uint8Array(info.buffer));
      for (const extra of script.infos) {
        const body = new Uint8Array(2 + extra.data.length);
        new DataView(body.buffer).setUint16(0, extra.type);
        body.set(extra.data, 2);
        optionReply(option, nbd.REP_INFO, body);
      }
      optionReply(option, nbd.REP_ACK);
      break;
    } else optionReply(option, nbd.REP_ERR_UNSUP);
  }
  for (let index = 0; ; index++) {
    const request = new DataView((await reader.read(28)).buffer);
    const type = request.getUint16(6);
    const handle = request.getBigUint64(8);
    const offset = nbd.u64(request, 16);
    const length = request.getUint32(24);
    if (type === nbd.CMD_DISC) return;
    if (type === nbd.CMD_WRITE) await reader.read(length);
    const plan = script.replies[index % script.replies.length]!;
    answer(socket, plan, { type, handle, offset, length }, script.structured);
    if (plan.kind === 'hang-up') return;
  }
}

function chunkBytes(handle: bigint, flags: number, type: number, payload: Uint8Array, declaredLength = payload.length): Uint8Array {
  const bytes = new Uint8Array(20 + payload.length);
  const head = new DataView(bytes.buffer);
  head.setUint32(0, nbd.STRUCTURED_REPLY_MAGIC);
  head.setUint16(4, flags);
  head.setUint16(6, type);
  head.setBigUint64(8, handle);
  head.setUint32(16, declaredLength);
  bytes.set(payload, 20);
  return bytes;
}

function answer(socket: Socket, plan: ReplyPlan, request: { type: number; handle: bigint; offset: number; length: number }, structured: boolean): void {
  const { type, handle, offset, length } = request;
  switch (plan.kind) {
    case 'silence':
      return;
    case 'hang-up':
      socket.destroy();
      return;
    case 'garbage':
      socket.write(plan.bytes);
      return;
    case 'simple': {
      const head = new DataView(new ArrayBuffer(16));
      head.setUint32(0, nbd.SIMPLE_REPLY_MAGIC);
      head.setUint32(4, plan.error);
      head.setBigUint64(8, handle);
      socket.write(new Uint8Array(head.buffer));
      if (plan.error === 0 && type === nbd.CMD_READ) socket.write(new Uint8Array(length).fill(0x11));
      return;
    }
    case 'proper': {
      if (!structured) {
        const head = new DataView(new ArrayBuffer(16));
        head.setUint32(0, nbd.SIMPLE_REPLY_MAGIC);
        head.setBigUint64(8, handle);
        socket.write(new Uint8Array(head.buffer));
        if (type === nbd.CMD_READ) socket.write(new Uint8Array(length).fill(0x22));
        return;
      }
      if (type === nbd.CMD_READ && length > 0) {
        const payload = new Uint8Array(8 + length).fill(0x22);
        nbd.setU64(new DataView(payload.buffer), 0, offset);
        socket.write(chunkBytes(handle, nbd.REPLY_FLAG_DONE, nbd.REPLY_TYPE_OFFSET_DATA, payload));
      } else if (type === nbd.CMD_BLOCK_STATUS) {
        const payload = new DataView(new ArrayBuffer(12));
        payload.setUint32(0, CONTEXT);
        payload.setUint32(4, length);
        socket.write(chunkBytes(handle, nbd.REPLY_FLAG_DONE, nbd.REPLY_TYPE_BLOCK_STATUS, new Uint8Array(payload.buffer)));
      } else socket.write(chunkBytes(handle, nbd.REPLY_FLAG_DONE, nbd.REPLY_TYPE_NONE, new Uint8Array(0)));
      return;
    }
    case 'pieces':
      plan.pieces.forEach((piece, index) => {
        const flags = index === plan.pieces.length - 1 ? nbd.REPLY_FLAG_DONE : 0;
        const length = Math.max(0, piece.end - piece.start);
        const payload = new Uint8Array(piece.hole ? 12 : 8 + length).fill(0x33);
        const view = new DataView(payload.buffer);
        nbd.setU64(view, 0, Math.max(0, offset + piece.start));
        if (piece.hole) view.setUint32(8, length);
        socket.write(chunkBytes(handle, flags, piece.hole ? nbd.REPLY_TYPE_OFFSET_HOLE : nbd.REPLY_TYPE_OFFSET_DATA, payload));
      });
      return;
    case 'chunks':
      for (const chunk of plan.chunks) {
        const target = chunk.otherHandle ? handle + 1n : handle;
        const fitting = type === nbd.CMD_BLOCK_STATUS ? nbd.REPLY_TYPE_BLOCK_STATUS : type === nbd.CMD_READ ? (chunk.error % 2 === 0 ? nbd.REPLY_TYPE_OFFSET_DATA : nbd.REPLY_TYPE_OFFSET_HOLE) : nbd.REPLY_TYPE_NONE;
        const chunkType = chunk.type === FITTING ? fitting : chunk.type;
        let payload: Uint8Array;
        if (chunkType === nbd.REPLY_TYPE_OFFSET_DATA || chunkType === nbd.REPLY_TYPE_OFFSET_HOLE) {
          const partLength = Math.max(0, Math.min(70_000, length + chunk.lengthDelta));
          const partOffset = Math.max(0, offset + chunk.offsetDelta);
          payload = new Uint8Array(chunkType === nbd.REPLY_TYPE_OFFSET_DATA ? 8 + partLength : 12).fill(0x33);
          const view = new DataView(payload.buffer);
          nbd.setU64(view, 0, partOffset);
          if (chunkType === nbd.REPLY_TYPE_OFFSET_HOLE) view.setUint32(8, partLength);
        } else if (chunkType === nbd.REPLY_TYPE_BLOCK_STATUS) {
          payload = new Uint8Array(4 + chunk.extents.length * 8);
          const view = new DataView(payload.buffer);
          view.setUint32(0, chunk.wrongContext ? CONTEXT + 1 : CONTEXT);
          chunk.extents.forEach(([extentLength, state], index) => {
            view.setUint32(4 + index * 8, extentLength);
            view.setUint32(8 + index * 8, state);
          });
        } else if (chunkType & 0x8000) {
          payload = new Uint8Array(6 + chunk.message.length);
          const view = new DataView(payload.buffer);
          view.setUint32(0, chunk.error);
          view.setUint16(4, Math.min(0xffff, chunk.message.length + (chunk.wrongContext ? 5 : 0)));
          payload.set(chunk.message, 6);
        } else payload = new Uint8Array(0);
        socket.write(chunkBytes(target, chunk.flags, chunkType, payload, chunk.declaredLength));
      }
      return;
  }
}

/** What may reach a terminal: no control or format characters, and short. */
function terminalSafe(text: string): boolean {
  return text.length <= 700 && !/[\p{Cc}\p{Cf}\u2028\u2029]/u.test(text);
}

/** A scripted server of its own for one case (see `serverForCase`); closing it cuts every connection it has. */
async function fakeServerForCase(script: ServerScript): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const fake: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.setNoDelay(true);
    playServer(socket, script).catch(() => socket.destroy());
  });
  await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
  return {
    port: (fake.address() as { port: number }).port,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => fake.close(() => resolve()));
    },
  };
}

describe('the NBD client against an adversarial server', () => {
  test.prop([serverScript, clientOperations], { numRuns: 150, timeout: CASE_TIMEOUT_MS, interruptAfterTimeLimit: TIME_LIMIT_MS, markInterruptAsFailure: false })(
    'only BlockErrors with terminal-safe messages, never a hang, never a byte outside the buffer',
    async (script, operations) => {
      const { port, close } = await fakeServerForCase(script);
      try {
        const connected = await settle(NbdClient.connect({ host: '127.0.0.1', port, exportName: 'x' }, { connectTimeoutMs: 150, replyTimeoutMs: 60 }), 1500);
        expect(connected.hung, 'connect hung').toBeUndefined();
        if (connected.error !== undefined) {
          expect(connected.error).toBeInstanceOf(BlockError);
          expect(terminalSafe((connected.error as Error).message), (connected.error as Error).message).toBe(true);
          return;
        }
        const client = connected.value!;
        if (client.description !== undefined) expect(terminalSafe(client.description)).toBe(true);
        for (const operation of operations) {
          const offset = Math.floor(operation.at * client.size);
          const length = Math.min(operation.length, client.size - offset);
          const guarded = new Uint8Array(length + 32).fill(0xa5);
          const buffer = guarded.subarray(16, 16 + length);
          let action: Promise<unknown>;
          switch (operation.kind) {
            case 'read':
              action = client.readAt(offset, buffer);
              break;
            case 'write':
              action = client.writeAt(offset, buffer);
              break;
            case 'status':
              action = client.blockStatus(offset, length);
              break;
            case 'flush':
              action = client.flush();
              break;
            case 'zeroes':
              action = client.writeZeroes(offset, length);
              break;
            case 'discard':
              action = client.discard(offset, length);
              break;
          }
          const outcome = await settle(action, 1500);
          expect(outcome.hung, `${operation.kind} hung`).toBeUndefined();
          expect(guarded.subarray(0, 16).every((byte) => byte === 0xa5) && guarded.subarray(16 + length).every((byte) => byte === 0xa5), 'bytes outside the buffer changed').toBe(true);
          if (outcome.error !== undefined) {
            expect(outcome.error).toBeInstanceOf(BlockError);
            expect(terminalSafe((outcome.error as Error).message), (outcome.error as Error).message).toBe(true);
          } else if (operation.kind === 'status') {
            // Consecutive, non-empty extents from the offset asked for, never past the end asked for.
            const extents = outcome.value as Array<{ offset: number; length: number }>;
            let at = offset;
            for (const extent of extents) {
              expect(extent.offset).toBe(at);
              expect(extent.length).toBeGreaterThan(0);
              at += extent.length;
            }
            expect(at).toBe(offset + length);
          }
        }
        expect((await settle(client.close(), 1500)).hung, 'close hung').toBeUndefined();
      } finally {
        await close();
      }
    },
  );

  /** A server that negotiates properly and answers every request with `reply`. */
  async function answeredBy(reply: ReplyPlan): Promise<{ client: NbdClient; close: () => Promise<void> }> {
    const fake = await fakeServerForCase({ greeting: 'valid', structured: true, metaContext: true, size: 65536, infos: [], refusal: undefined, mutations: [], replies: [reply] });
    const client = await NbdClient.connect({ host: '127.0.0.1', port: fake.port, exportName: '' }, { connectTimeoutMs: 1000, replyTimeoutMs: 500 });
    return {
      client,
      close: async () => {
        await client.close();
        await fake.close();
      },
    };
  }

  const span = fc.tuple(fc.nat({ max: 60_000 }), fc.integer({ min: 1, max: 2000 })).map(([offset, length]) => ({ offset, length: Math.min(length, 65536 - offset) }));

  test.prop(
    [span, fc.array(fc.tuple(fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 3000 }), u32), fc.integer({ min: 0, max: 3 })), { maxLength: 6 })],
    { numRuns: 100, timeout: CASE_TIMEOUT_MS, interruptAfterTimeLimit: TIME_LIMIT_MS / 2, markInterruptAsFailure: false },
  )('block status: whatever extents come back, the caller gets consecutive non-empty extents covering the request, or an NbdProtocolError', async ({ offset, length }, extents) => {
    const chunk: ChunkPlan = { type: FITTING, flags: nbd.REPLY_FLAG_DONE, otherHandle: false, offsetDelta: 0, lengthDelta: 0, extents, wrongContext: false, error: 0, message: new Uint8Array(0), declaredLength: undefined };
    const { client, close } = await answeredBy({ kind: 'chunks', chunks: [chunk] });
    try {
      const outcome = await settle(client.blockStatus(offset, length), 1500);
      expect(outcome.hung).toBeUndefined();
      if (outcome.error !== undefined) {
        expect(outcome.error).toMatchObject({ name: 'NbdProtocolError' });
        return;
      }
      let at = offset;
      for (const extent of outcome.value!) {
        expect(extent.offset).toBe(at);
        expect(extent.length).toBeGreaterThan(0);
        at += extent.length;
      }
      // The client asks again for what a reply did not cover (and gets the same extents, from there on).
      expect(at).toBe(offset + length);
    } finally {
      await close();
    }
  });

  test.prop(
    [hostileText, fc.oneof(fc.constant('error-chunk' as const), fc.constant('refusal' as const), fc.constant('description' as const)), fc.integer({ min: 1, max: 0xffffffff })],
    { numRuns: 100, timeout: CASE_TIMEOUT_MS, interruptAfterTimeLimit: TIME_LIMIT_MS / 2, markInterruptAsFailure: false },
  )('text from the server (error messages, refusals, descriptions) reaches the caller without control characters and cut short', async (text, where, error) => {
    const chunk: ChunkPlan = { type: nbd.REPLY_TYPE_ERROR, flags: nbd.REPLY_FLAG_DONE, otherHandle: false, offsetDelta: 0, lengthDelta: 0, extents: [], wrongContext: false, error, message: text, declaredLength: undefined };
    const fake = await fakeServerForCase({
      greeting: 'valid',
      structured: true,
      metaContext: false,
      size: 65536,
      infos: where === 'description' ? [{ type: nbd.INFO_DESCRIPTION, data: text }] : [],
      refusal: where === 'refusal' ? { type: nbd.REP_ERR_POLICY, message: text } : undefined,
      mutations: [],
      replies: [{ kind: 'chunks', chunks: [chunk] }],
    });
    try {
      const connected = await settle(NbdClient.connect({ host: '127.0.0.1', port: fake.port, exportName: '' }, { connectTimeoutMs: 1000, replyTimeoutMs: 500 }), 1500);
      if (where === 'refusal') {
        expect(connected.error).toBeInstanceOf(BlockError);
        expect(terminalSafe((connected.error as Error).message), (connected.error as Error).message).toBe(true);
        return;
      }
      const client = connected.value!;
      if (where === 'description') expect(terminalSafe(client.description ?? ''), client.description).toBe(true);
      const outcome = await settle(client.readAt(0, new Uint8Array(512)), 1500);
      expect(outcome.error).toBeInstanceOf(BlockError);
      expect(terminalSafe((outcome.error as Error).message), (outcome.error as Error).message).toBe(true);
      await client.close();
    } finally {
      await fake.close();
    }
  });

  /** Pieces that cover the read exactly, shuffled, then perhaps spoiled: one dropped, one repeated, one moved or resized. */
  const readPieces = fc
    .tuple(
      fc.integer({ min: 1, max: 5000 }),
      fc.array(fc.nat(), { maxLength: 6 }),
      fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }),
      fc.infiniteStream(fc.nat()),
      fc.constantFrom('none', 'none', 'drop', 'repeat', 'move', 'resize'),
      fc.integer({ min: -100, max: 100 }),
    )
    .map(([length, cuts, holes, order, spoil, by]) => {
      const points = [...new Set(cuts.map((cut) => cut % length).filter((cut) => cut > 0))].sort((a, b) => a - b);
      const bounds = [0, ...points, length];
      const pieces = bounds.slice(1).map((end, index) => ({ start: bounds[index]!, end, hole: holes[index % holes.length]! }));
      const shuffled: typeof pieces = [];
      const picks = order[Symbol.iterator]();
      while (pieces.length > 0) shuffled.push(pieces.splice(picks.next().value! % pieces.length, 1)[0]!);
      const victim = Math.abs(by) % shuffled.length;
      if (spoil === 'drop' && shuffled.length > 1) shuffled.splice(victim, 1);
      if (spoil === 'repeat') shuffled.push({ ...shuffled[victim]! });
      if (spoil === 'move' && by !== 0) shuffled[victim] = { ...shuffled[victim]!, start: shuffled[victim]!.start + by, end: shuffled[victim]!.end + by };
      if (spoil === 'resize' && by !== 0) shuffled[victim] = { ...shuffled[victim]!, end: shuffled[victim]!.end + by };
      return { length, pieces: shuffled };
    });

  test.prop([readPieces, fc.nat({ max: 60_000 })], { numRuns: 100, timeout: CASE_TIMEOUT_MS, interruptAfterTimeLimit: TIME_LIMIT_MS / 2, markInterruptAsFailure: false })(
    'reads: whatever data and holes come back, a read that succeeds has every byte answered, and one that fails is an NbdProtocolError',
    async ({ length, pieces }, start) => {
      const offset = Math.min(start, 65536 - length);
      const { client, close } = await answeredBy({ kind: 'pieces', pieces });
      try {
        const guarded = new Uint8Array(length + 32).fill(0xee);
        const buffer = guarded.subarray(16, 16 + length);
        const outcome = await settle(client.readAt(offset, buffer), 1500);
        expect(outcome.hung).toBeUndefined();
        expect(guarded.subarray(0, 16).every((byte) => byte === 0xee) && guarded.subarray(16 + length).every((byte) => byte === 0xee)).toBe(true);
        if (outcome.error !== undefined) expect(outcome.error).toMatchObject({ name: 'NbdProtocolError' });
        else expect(buffer.every((byte) => byte === 0x33 || byte === 0)).toBe(true);
      } finally {
        await close();
      }
    },
  );
});
