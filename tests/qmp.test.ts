/**
 * QEMU is the reference for QMP: one conversation runs against
 * `qemu-system-x86_64` and against `tsvirt run`, and every answer must have
 * the same shape — the same keys, value types, error classes, run states and
 * events — as a management client (libvirt) needs. Version numbers,
 * timestamps and error texts may differ. Then a paused tsvirt guest is
 * watched: its console stops while paused and goes on after `cont`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { assemble } from '@tsvirt/x86-core/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { QmpClient, type QmpMessage } from './support/qmp-client.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const missing = ['qemu-system-x86_64', 'nasm'].filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status !== 0);
const hint = missing.length > 0 ? ` (skipped: ${missing.join(', ')} missing; scripts/install-system-deps.sh installs them)` : '';
const dir = mkdtempSync(path.join(tmpdir(), 'tsvirt-qmp-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Message = QmpMessage;

/** Values worth comparing as they are; everything else is compared by type. */
const COMPARED_AS_VALUES = new Set(['class', 'status', 'running', 'singlestep', 'event', 'guest', 'reason', 'id', 'capabilities', 'target']);

function shape(value: unknown, key?: string): unknown {
  if (key !== undefined && COMPARED_AS_VALUES.has(key)) return value;
  if (value === null) return 'null';
  if (Array.isArray(value)) return [...new Set(value.map((element) => JSON.stringify(shape(element))))].sort().map((text) => JSON.parse(text) as unknown);
  if (typeof value === 'object') return Object.fromEntries(Object.entries(value).sort(([a], [b]) => a.localeCompare(b)).map(([name, member]) => [name, shape(member, name)]));
  return typeof value;
}

/** Guest-made events (a firmware's reset while it boots) depend on the guest, not on the monitor. */
const fromHost = (events: readonly Message[]) => events.filter((event) => (event.data as { guest?: boolean } | undefined)?.guest !== true);

/** The conversation: two monitors, A and B; a transcript of shapes. */
async function converse(socketA: string, socketB: string, exited: Promise<number | null>): Promise<unknown[]> {
  const transcript: unknown[] = [];
  const note = (step: string, result: { events: Message[]; answer: Message }) => transcript.push({ step, events: shape(fromHost(result.events)), answer: shape(result.answer) });
  const a = await QmpClient.open(socketA);
  const b = await QmpClient.open(socketB);
  transcript.push({ step: 'greeting A', answer: shape(await a.next()) });
  transcript.push({ step: 'greeting B', answer: shape(await b.next()) });
  note('B before qmp_capabilities', await b.request('{"execute":"query-status","id":"early"}'));
  note('A qmp_capabilities', await a.request('{"execute":"qmp_capabilities","id":1}'));
  note('A qmp_capabilities again', await a.request('{"execute":"qmp_capabilities"}'));
  note('query-status (-S)', await a.request('{"execute":"query-status"}'));
  note('cont', await a.request('{"execute":"cont","id":{"nested":[1,"two"]}}'));
  note('query-status running', await a.request('{"execute":"query-status"}'));
  note('stop', await a.request('{"execute":"stop"}'));
  note('query-status paused', await a.request('{"execute":"query-status"}'));
  note('stop again', await a.request('{"execute":"stop"}'));
  note('cont again', await a.request('{"execute":"cont"}'));
  note('query-version', await a.request('{"execute":"query-version"}'));
  note('query-name', await a.request('{"execute":"query-name"}'));
  note('query-kvm', await a.request('{"execute":"query-kvm"}'));
  note('query-cpus-fast', await a.request('{"execute":"query-cpus-fast"}'));
  note('query-commands', await a.request('{"execute":"query-commands"}'));
  note('unknown command', await a.request('{"execute":"no-such-command","id":7}'));
  note('bad argument', await a.request('{"execute":"cont","arguments":{"frob":1}}'));
  note('arguments not an object', await a.request('{"execute":"stop","arguments":[]}'));
  note('unexpected member', await a.request('{"execute":"stop","id":8,"frob":{}}'));
  note('malformed JSON', await a.request('{bad json}\n'));
  note('not an object', await a.request('[1,2]'));
  note('after the errors', await a.request('{"execute":"query-status"}'));
  note('B qmp_capabilities', await b.request('{"execute":"qmp_capabilities"}'));
  note('system_powerdown', await a.request('{"execute":"system_powerdown"}'));
  note('system_reset', await a.request('{"execute":"system_reset"}'));
  note('quit', await a.request('{"execute":"quit"}'));
  await a.waitClosed();
  await b.waitClosed();
  transcript.push({ step: 'events B saw', events: fromHost(b.takeEvents()).map((event) => shape(event)) });
  transcript.push({ step: 'exit status', status: await exited });
  return transcript;
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.on('exit', (code) => resolve(code)));
}

function tickingKernelFile(): string {
  const source = readFileSync(path.join(root, 'packages/vm/src/machine/ticking-kernel.asm'), 'utf8');
  const file = path.join(dir, 'ticking-forever.bin');
  writeFileSync(file, assemble(source, { TICK_FOREVER: 1 }));
  return file;
}

/**
 * `tsvirt run` from the sources: tsx's loader in the process itself (no
 * child process that could outlive a kill), resolving @tsvirt/* through
 * tsconfig.check.json's paths.
 */
function startTsvirt(args: readonly string[]): ChildProcess {
  const env = { ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('VITEST'))), TSX_TSCONFIG_PATH: path.join(root, 'tsconfig.check.json') };
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'packages/cli/src/bin.ts'), 'run', ...args], { cwd: root, env, stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.setEncoding('utf8').on('data', (text: string) => process.stderr.write(`tsvirt: ${text}`));
  return child;
}

const TIMEOUT = 120_000;

describe.skipIf(missing.length > 0 && !process.env.CI)(`QMP against QEMU's${hint}`, () => {
  it(
    'one conversation gets answers of the same shape from qemu-system-x86_64 and from tsvirt run',
    async () => {
      const kernel = tickingKernelFile();
      const socket = (name: string) => path.join(dir, name);
      const qmpArgs = (a: string, b: string) => ['-qmp', `unix:${a},server=on,wait=off`, '-qmp', `unix:${b},server=on,wait=off`];

      const qemu = spawn('qemu-system-x86_64', ['-display', 'none', '-nodefaults', '-m', '32', '-name', 'qmp-test', '-S', '-kernel', kernel, ...qmpArgs(socket('qemu-a'), socket('qemu-b'))], { stdio: 'ignore' });
      let reference: unknown[];
      try {
        reference = await converse(socket('qemu-a'), socket('qemu-b'), exitOf(qemu));
      } finally {
        qemu.kill('SIGKILL');
      }

      const tsvirt = startTsvirt(['--kernel', kernel, '--memory', '32M', '--serial', `file:${path.join(dir, 'console-1')}`, '--name', 'qmp-test', '-S', ...qmpArgs(socket('tsvirt-a'), socket('tsvirt-b')).map((arg) => arg.replace(/^-qmp$/, '--qmp'))]);
      let ours: unknown[];
      try {
        ours = await converse(socket('tsvirt-a'), socket('tsvirt-b'), exitOf(tsvirt));
      } finally {
        tsvirt.kill('SIGKILL');
      }
      expect(ours).toEqual(reference);
      // A sanity check of the comparison itself: errors and events are there, as QEMU sends them.
      expect(JSON.stringify(reference)).toContain('"class":"CommandNotFound"');
      expect(JSON.stringify(reference)).toContain('"event":"SHUTDOWN"');
    },
    TIMEOUT,
  );

  it(
    'a paused tsvirt guest stops: its console prints nothing until cont, then goes on',
    async () => {
      const kernel = tickingKernelFile();
      const consoleFile = path.join(dir, 'console-2');
      const qmpSocket = path.join(dir, 'pause.qmp');
      const tsvirt = startTsvirt(['--kernel', kernel, '--memory', '32M', '--serial', `file:${consoleFile}`, '--qmp', `unix:${qmpSocket},server=on,wait=off`]);
      const exited = exitOf(tsvirt);
      try {
        const client = await QmpClient.open(qmpSocket);
        await client.next();
        await client.request('{"execute":"qmp_capabilities"}');
        const printed = () => statSync(consoleFile, { throwIfNoEntry: false })?.size ?? 0;
        const until = async (condition: () => boolean, what: string) => {
          for (let waited = 0; !condition(); waited += 20) {
            if (waited > 60_000) throw new Error(`timed out waiting for ${what}`);
            await sleep(20);
          }
        };
        // The guest ticks every 10 ms of its time, printing a '.' each time.
        await until(() => printed() >= 5, 'ticks before the pause');
        expect((await client.request('{"execute":"stop"}')).events.map((event) => event.event)).toEqual(['STOP']);
        await sleep(50);
        const atPause = printed();
        await sleep(500);
        expect(printed(), 'the console of a paused guest').toBe(atPause);
        expect((await client.request('{"execute":"query-status"}')).answer).toEqual({ return: { status: 'paused', singlestep: false, running: false } });
        expect((await client.request('{"execute":"cont"}')).events.map((event) => event.event)).toEqual(['RESUME']);
        await until(() => printed() >= atPause + 5, 'ticks after cont');
        await client.request('{"execute":"quit"}');
        expect(await exited).toBe(0);
      } finally {
        tsvirt.kill('SIGKILL');
      }
    },
    TIMEOUT,
  );
});
