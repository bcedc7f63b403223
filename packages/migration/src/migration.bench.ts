/**
 * Migration benchmarks over loopback TCP (127.0.0.1), both ends in this
 * process: an idle 1 GiB guest beside a plain socket copy of 1 GiB (the
 * limit), and a guest dirtying memory under a bandwidth cap.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connectMigration, listenForMigration, receiveMigration, startMigration, type MigrationOptions, type MigrationStats } from './index.js';
import type { BenchmarkReport } from '@tsvirt/interfaces/testing';
import { FakeVm, HostClock, type DirtyWorkload } from './testing/index.js';

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

async function migrateOverLoopback(source: FakeVm, destination: FakeVm, options: MigrationOptions): Promise<{ stats: MigrationStats; seconds: number }> {
  const listener = await listenForMigration({ host: '127.0.0.1', port: 0 });
  const started = performance.now();
  const incoming = listener.accept().then(async (channel) => {
    try {
      await receiveMigration(destination, channel);
    } finally {
      channel.destroy();
    }
  });
  incoming.catch(() => {});
  const channel = await connectMigration(listener.address);
  const migration = startMigration(source, channel, options);
  const stats = await migration.done;
  if (stats.status === 'completed') await incoming;
  const seconds = (performance.now() - started) / 1000;
  channel.destroy();
  await listener.close();
  return { stats, seconds };
}

/** Writes `total` bytes through a loopback socket in 256 KiB chunks, the receiver copying them into a buffer. */
async function plainSocketCopy(total: number): Promise<number> {
  const sink = new Uint8Array(4 * MIB);
  let received = 0;
  const done = new Promise<void>((resolve) => {
    const server = net.createServer((socket) => {
      socket.on('data', (data: Buffer) => {
        let at = 0;
        while (at < data.length) {
          const part = Math.min(data.length - at, sink.length - (received % sink.length));
          sink.set(data.subarray(at, at + part), received % sink.length);
          at += part;
          received += part;
        }
      });
      socket.on('end', () => {
        server.close();
        resolve();
      });
    });
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      const client = net.connect(port, '127.0.0.1', async () => {
        const chunk = new Uint8Array(256 * 1024).fill(0x5a);
        for (let sent = 0; sent < total; sent += chunk.length) {
          if (!client.write(chunk)) await new Promise((wake) => client.once('drain', wake));
        }
        client.end();
      });
    });
  });
  const started = performance.now();
  await done;
  return (performance.now() - started) / 1000;
}

/**
 * The destination in a second Node process, from the built package (as two
 * hosts would run it): it prints its port, receives, prints "done".
 */
async function migrateToChildProcess(source: FakeVm, memorySize: number, options: MigrationOptions = {}, workload?: DirtyWorkload): Promise<{ stats: MigrationStats; seconds: number }> {
  const dist = new URL('../dist/', import.meta.url).href;
  const directory = mkdtempSync(path.join(tmpdir(), 'tsvirt-bench-'));
  const script = path.join(directory, 'destination.mjs');
  writeFileSync(
    script,
    `import { listenForMigration, receiveMigration } from '${dist}index.js';
import { FakeVm, HostClock } from '${dist}testing/index.js';
const workload = ${JSON.stringify(workload ?? null)};
const vm = new FakeVm({ memorySize: ${memorySize}, ...(workload === null ? {} : { clock: new HostClock(), workload }) });
const listener = await listenForMigration({ host: '127.0.0.1', port: 0 });
console.log('port ' + listener.address.port);
const channel = await listener.accept();
await receiveMigration(vm, channel);
console.log('done ' + vm.running);
vm.pause();
channel.destroy();
await listener.close();
`,
  );
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    lines.push(...text.split('\n').filter((line) => line.length > 0));
    for (const wake of waiters.splice(0)) wake();
  });
  const line = async (prefix: string): Promise<string> => {
    for (;;) {
      const found = lines.find((candidate) => candidate.startsWith(prefix));
      if (found !== undefined) return found.slice(prefix.length);
      if (child.exitCode !== null) throw new Error(`destination process exited (${child.exitCode})`);
      await new Promise<void>((wake) => waiters.push(wake));
    }
  };
  try {
    const port = Number(await line('port '));
    const started = performance.now();
    const channel = await connectMigration({ host: '127.0.0.1', port });
    const stats = await startMigration(source, channel, options).done;
    const seconds = (performance.now() - started) / 1000;
    channel.destroy();
    if (stats.status === 'completed' && (await line('done ')) !== 'true') throw new Error('the destination did not resume');
    return { stats, seconds };
  } finally {
    child.kill();
    rmSync(directory, { recursive: true, force: true });
  }
}

async function idleGuest(): Promise<BenchmarkReport> {
  const copySeconds = await plainSocketCopy(GIB);
  const source = new FakeVm({ memorySize: GIB, running: true, seed: 1 });
  source.populate(2, 0.9);
  const twoProcesses = await migrateToChildProcess(source, GIB);
  source.resume();
  const destination = new FakeVm({ memorySize: GIB });
  const { stats, seconds } = await migrateOverLoopback(source, destination, {});
  const migrated = stats.ram.total / MIB / seconds;
  const migratedTwo = twoProcesses.stats.ram.total / MIB / twoProcesses.seconds;
  return {
    title: 'Migration: idle 1 GiB guest over loopback TCP',
    description: 'A paused-workload guest with 1 GiB of RAM (90 % of pages random data, 10 % zero) migrated live over 127.0.0.1 to a destination in a second Node process (and, for comparison, within one process), beside a plain socket copy of 1 GiB (one process) in the same run.',
    columns: ['transfer', 'total time (s)', 'throughput (MiB/s of guest RAM)', 'bytes on the wire (MiB)', 'downtime (ms)'],
    rows: [
      ['plain socket copy, 1 GiB', copySeconds.toFixed(2), (1024 / copySeconds).toFixed(0), 1024, '-'],
      ['tsvirt live migration, 1 GiB guest, destination in a second process', twoProcesses.seconds.toFixed(2), migratedTwo.toFixed(0), (twoProcesses.stats.ram.transferred / MIB).toFixed(0), (twoProcesses.stats.downtime ?? 0).toFixed(1)],
      ['tsvirt live migration, 1 GiB guest, both ends in one process', seconds.toFixed(2), migrated.toFixed(0), (stats.ram.transferred / MIB).toFixed(0), (stats.downtime ?? 0).toFixed(1)],
    ],
    notes: [
      `Pages: ${stats.ram.normal} normal, ${stats.ram.duplicate} zero; ${stats.ram.iterations} pass(es), status ${stats.status}.`,
      'The migration reads every page, checksums every frame (CRC-32C, in JavaScript) on both ends and writes guest memory; the plain copy only moves bytes. With both ends in one process all of that shares one core.',
    ],
  };
}

async function dirtyingGuest(): Promise<BenchmarkReport> {
  const rows: (string | number)[][] = [];
  const cases: Array<{ name: string; workload: DirtyWorkload; xbzrle: boolean; autoConverge: boolean }> = [];
  const hot: DirtyWorkload = { writesPerSecond: 50_000, pattern: 'hot-set', hotSetPages: 16_384 };
  const heavy: DirtyWorkload = { writesPerSecond: 45_000, pattern: 'uniform' };
  for (const workload of [hot, heavy]) {
    for (const [xbzrle, autoConverge] of [[false, false], [true, false], [false, true], [true, true]] as const) {
      cases.push({ name: `${workload.pattern}, ${workload.writesPerSecond} page writes/s`, workload, xbzrle, autoConverge });
    }
  }
  const postcopyCases = [hot, heavy].map((workload) => ({ name: `${workload.pattern}, ${workload.writesPerSecond} page writes/s`, workload }));
  for (const test of cases) {
    const clock = new HostClock();
    const source = new FakeVm({ memorySize: 256 * MIB, clock, workload: test.workload, seed: 3, running: true });
    source.populate(4, 0.8);
    const { stats, seconds } = await migrateToChildProcess(source, 256 * MIB, {
      maxBandwidth: 128 * MIB,
      downtimeLimitMs: 300,
      xbzrle: test.xbzrle,
      autoConverge: test.autoConverge,
      timeout: { afterMs: 30_000, action: 'abort' },
    });
    source.pause();
    rows.push([
      test.name,
      test.xbzrle ? 'yes' : 'no',
      test.autoConverge ? 'yes' : 'no',
      stats.status === 'completed' ? 'completed' : `${stats.status} (${stats.errorDesc ?? ''})`,
      stats.downtime === undefined ? '-' : stats.downtime.toFixed(1),
      seconds.toFixed(2),
      stats.ram.iterations,
      stats.cpuThrottlePercentage,
      (stats.ram.transferred / MIB).toFixed(0),
      stats.xbzrleCache === undefined ? '-' : `${stats.xbzrleCache.pages} pages, ${stats.xbzrleCache.encodingRate.toFixed(0)}x`,
    ]);
  }
  for (const test of postcopyCases) {
    const clock = new HostClock();
    const source = new FakeVm({ memorySize: 256 * MIB, clock, workload: test.workload, seed: 3, running: true });
    source.populate(4, 0.8);
    // The destination runs the same workload once it takes over, faulting on pages still missing.
    const { stats, seconds } = await migrateToChildProcess(source, 256 * MIB, { maxBandwidth: 128 * MIB, downtimeLimitMs: 300, postcopy: { afterPasses: 1 } }, test.workload);
    rows.push([
      `${test.name}, post-copy after the bulk pass`,
      'no',
      'no',
      stats.status === 'completed' ? `completed (${stats.switchoverReason})` : `${stats.status} (${stats.errorDesc ?? ''})`,
      stats.downtime === undefined ? '-' : stats.downtime.toFixed(1),
      seconds.toFixed(2),
      stats.ram.iterations,
      stats.cpuThrottlePercentage,
      (stats.ram.transferred / MIB).toFixed(0),
      '-',
    ]);
  }
  return {
    title: 'Migration: a guest dirtying memory (256 MiB, max-bandwidth 128 MiB/s, downtime limit 300 ms)',
    description: 'The FakeVm workload writes 4 bytes into a page per write on a real-time clock while migrating over loopback TCP capped at 128 MiB/s; the 64 MiB hot set is re-dirtied faster than 300 ms at the cap can carry it, so it needs XBZRLE or auto-converge, and the uniform workload dirties more than the cap clears, so it needs auto-converge (otherwise the 30 s abort timeout ends it). The destination runs in a second process.',
    columns: ['workload', 'XBZRLE', 'auto-converge', 'status', 'downtime (ms)', 'total time (s)', 'passes', 'final throttle %', 'sent (MiB)', 'XBZRLE deltas'],
    rows,
    notes: ['Downtime is measured from the pause to the destination confirming it loaded everything (and resumed); in post-copy, to the destination confirming it runs (the pages still missing follow on demand and in the background); on a real-time clock it can overshoot the limit when the last pass measured a bandwidth the final burst does not get.', 'The throttle column shows the throttle at the end: a failed migration has already put it back to 0.'],
  };
}

export default async function (): Promise<BenchmarkReport[]> {
  return [await idleGuest(), await dirtyingGuest()];
}
