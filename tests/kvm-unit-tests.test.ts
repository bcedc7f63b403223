/**
 * kvm-unit-tests, the suite KVM and QEMU check their x86 with, run through
 * the built `tsvirt run` as upstream's runner (x86/run) runs QEMU:
 * `-nodefaults -device pc-testdev -device isa-debug-exit,iobase=0xf4,iosize=0x4
 * -device pci-testdev -smp 1 -m M -kernel FILE -append ARGS` plus the entry's
 * own `extra_params`. Every single-CPU entry of unittests.cfg that QEMU 7.2
 * TCG passes on this machine class (qemu-tcg-baseline.tsv) must pass here
 * too, unless it is in KNOWN_FAILURES below, which says what is missing and
 * is itself checked: an entry listed there must still end as described, so
 * the table cannot outlive the gap it records.
 *
 * The suite is built upstream code, not installable from Debian or npm: it
 * is found at ../shared/kvm-unit-tests beside the repository or at
 * $KVM_UNIT_TESTS_DIR, and without it this test is skipped with a warning.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = path.join(ROOT, 'packages/cli/dist/bin.js');
const SUITE = process.env.KVM_UNIT_TESTS_DIR ?? path.resolve(ROOT, '../shared/kvm-unit-tests');
const present = existsSync(path.join(SUITE, 'x86/unittests.cfg')) && existsSync(path.join(SUITE, 'qemu-tcg-baseline.tsv'));
if (!present) {
  console.warn(
    `kvm-unit-tests: skipped, the suite is not at ${SUITE}. Build upstream kvm-unit-tests for x86_64 ` +
      '(./configure --arch=x86_64 && make) and point KVM_UNIT_TESTS_DIR at a directory holding its x86/*.flat, ' +
      'x86/unittests.cfg and a qemu-tcg-baseline.tsv of what QEMU TCG does with each entry.',
  );
}

/** Upstream's runner gives every test 256 MiB unless the entry's `-m` says otherwise. */
const DEFAULT_MEMORY = '256';
/** Per entry; QEMU TCG passes each of these well within it on this machine class (sieve, the slowest, in about a minute). */
const TIMEOUT_MS = 75_000;
/** Two guests at a time: the machines this runs on have two cores. */
const PARALLEL = 2;

type Result = 'pass' | 'fail' | 'skip' | 'timeout' | 'error';

interface Entry {
  readonly name: string;
  readonly file: string;
  readonly testArgs: string;
  readonly qemuParams: string;
}

interface Outcome {
  readonly result: Result;
  readonly status: number | null;
  readonly summary: string | undefined;
  readonly output: string;
  readonly seconds: number;
}

interface KnownFailure {
  readonly result: Result;
  /** Text the run must still print, so a known failure that changes its nature is noticed too. */
  readonly output?: RegExp;
  /** What is missing. */
  readonly reason: string;
  /** A shorter time limit for an entry known to time out, to keep the run short. */
  readonly timeoutMs?: number;
}

/** Entries tsvirt cannot pass yet: how each ends now, and why. */
const KNOWN_FAILURES: Readonly<Record<string, KnownFailure>> = {
  sieve: {
    result: 'timeout',
    // The static and the identity-mapped sieves (1 MB each) are right; three sieves over 100 MB of vmalloc'ed
    // 4 KiB pages take tsvirt's interpreter minutes where QEMU TCG needs under two.
    output: /static:78498 out of 1000000[\s\S]*mapped:78498 out of 1000000/,
    reason: 'speed, not correctness: the 100 MB sieves take minutes (QEMU TCG: under 120 s)',
    timeoutMs: 40_000,
  },
  access: {
    result: 'timeout',
    // Every combination of page-table bits and access kinds: hours of work for an interpreter (QEMU TCG times out too).
    output: /starting test\s+run\s+\./,
    reason: 'speed: the exhaustive access-rights walk runs for hours (QEMU TCG also times out); the combinations it reaches pass',
    timeoutMs: 30_000,
  },
  debug: {
    result: 'timeout',
    output: /FAIL: Single-Step \+ ICEBP #DB w\/ MOVSS blocking/,
    reason: 'ICEBP (INT1) with TF set in a MOV SS shadow reports the wrong DR6, and a later check never ends (QEMU TCG times out too)',
    timeoutMs: 30_000,
  },
  ...Object.fromEntries(
    ['pcid-enabled', 'pcid-disabled', 'pcid-asymmetric'].map((name) => [
      name,
      { result: 'error', output: /CPU feature switch '[+-]pcid'/, reason: 'PCID and INVPCID are not implemented, so `--cpu` refuses ±pcid and ±invpcid' },
    ]),
  ),
};

/** unittests.cfg: `[name]` sections of `key = value` lines. */
function parseConfig(text: string): Map<string, Map<string, string>> {
  const sections = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const line of text.split('\n')) {
    const header = /^\[(.+)\]\s*$/.exec(line);
    if (header !== null) {
      current = new Map();
      sections.set(header[1]!, current);
      continue;
    }
    const pair = /^([a-z_]+)\s*=\s*(.*)$/.exec(line);
    if (pair !== null && current !== undefined) current.set(pair[1]!, pair[2]!.trim());
  }
  return sections;
}

const unquote = (text: string) => text.replace(/^(['"])(.*)\1$/, '$2');

/**
 * Entries QEMU TCG does not pass (it times out, or refuses its options) but
 * whose outcome the architecture defines, so tsvirt must pass them too.
 */
const ARCHITECTURE_ENTRIES = ['access', 'debug', 'idt_test', 'emulator', 'msr', 'msr64', 'la57', 'pcid-enabled', 'pcid-disabled', 'pcid-asymmetric'];

/** The entries QEMU TCG passes with one CPU (from the baseline and unittests.cfg), then ARCHITECTURE_ENTRIES. */
function selectedEntries(): Entry[] {
  const config = parseConfig(readFileSync(path.join(SUITE, 'x86/unittests.cfg'), 'utf8'));
  const baseline = readFileSync(path.join(SUITE, 'qemu-tcg-baseline.tsv'), 'utf8').split('\n').slice(1);
  const entries: Entry[] = [];
  for (const line of baseline) {
    const [name, result] = line.split('\t');
    if (name === undefined || (result !== 'PASS' && !ARCHITECTURE_ENTRIES.includes(name))) continue;
    const section = config.get(name);
    if (section === undefined) throw new Error(`the baseline names '${name}', which unittests.cfg does not have`);
    if (Number(section.get('smp') ?? '1') !== 1) continue;
    entries.push({ name, file: section.get('file')!, testArgs: unquote(section.get('test_args') ?? ''), qemuParams: section.get('qemu_params') ?? section.get('extra_params') ?? '' });
  }
  return entries;
}

/** QEMU's options in an entry's parameters, as `tsvirt run` spells them. */
function runArguments(entry: Entry): string[] {
  const qemu = entry.qemuParams.split(/\s+/).filter((word) => word !== '');
  let memory = DEFAULT_MEMORY;
  const extra: string[] = [];
  for (let i = 0; i < qemu.length; i++) {
    const option = qemu[i]!;
    const value = qemu[++i];
    if (option === '-cpu' && value !== undefined) extra.push('--cpu', value);
    else if (option === '-m' && value !== undefined) memory = value;
    else throw new Error(`${entry.name}: '${option}' has no tsvirt equivalent yet`);
  }
  return [
    CLI, 'run',
    '--device', 'pc-testdev',
    '--device', 'isa-debug-exit,iobase=0xf4,iosize=0x4',
    '--device', 'pci-testdev',
    '--smp', '1',
    '--memory', memory,
    '--kernel', path.join(SUITE, 'x86', entry.file),
    '--append', entry.testArgs,
    '--no-reboot',
    ...extra,
  ];
}

/** Runs one entry and judges it as upstream's runner does: status 1 passes, 77 skips, a timeout is a timeout. */
function run(entry: Entry): Promise<Outcome> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, runArguments(entry), { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => chunks.push(chunk));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, KNOWN_FAILURES[entry.name]?.timeoutMs ?? TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      const output = Buffer.concat(chunks).toString('latin1');
      const summary = /^SUMMARY: .*$/m.exec(output)?.[0];
      const failed = summary !== undefined && /[1-9]\d* unexpected failures/.test(summary);
      const result: Result = timedOut ? 'timeout' : status === 77 ? 'skip' : status === 1 && !failed ? 'pass' : status === 3 || failed ? 'fail' : 'error';
      resolve({ result, status, summary, output, seconds: (performance.now() - started) / 1000 });
    });
  });
}

describe.skipIf(!present)('kvm-unit-tests: every single-CPU entry QEMU TCG passes, and those the architecture defines', () => {
  const entries = present ? selectedEntries() : [];
  const outcomes = new Map<string, Outcome>();

  beforeAll(async () => {
    // Known timeouts first: they take longest, and the rest fill the other slot meanwhile.
    const queue = [...entries].sort((a, b) => Number(KNOWN_FAILURES[b.name]?.result === 'timeout') - Number(KNOWN_FAILURES[a.name]?.result === 'timeout'));
    const worker = async () => {
      for (let entry = queue.shift(); entry !== undefined; entry = queue.shift()) outcomes.set(entry.name, await run(entry));
    };
    const started = performance.now();
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    const line = (name: string) => {
      const outcome = outcomes.get(name)!;
      return `  ${name.padEnd(26)} ${outcome.result.padEnd(8)} ${outcome.seconds.toFixed(1).padStart(5)} s  ${outcome.summary ?? `exit status ${String(outcome.status)}`}`;
    };
    console.log(`kvm-unit-tests (${((performance.now() - started) / 1000).toFixed(0)} s):\n${entries.map((entry) => line(entry.name)).join('\n')}`);
  }, 240_000);

  it('has the entries the baseline promises', () => {
    expect(entries.length).toBeGreaterThan(25);
    for (const name of ARCHITECTURE_ENTRIES) expect(entries.map((entry) => entry.name), `unittests.cfg lacks ${name}`).toContain(name);
    for (const name of Object.keys(KNOWN_FAILURES)) expect(entries.map((entry) => entry.name), `KNOWN_FAILURES names ${name}`).toContain(name);
  });

  it.each(entries.map((entry) => entry.name))('%s', (name) => {
    const outcome = outcomes.get(name)!;
    const tail = outcome.output.split('\n').slice(-30).join('\n');
    const known = KNOWN_FAILURES[name];
    if (known === undefined) {
      expect(outcome.result, tail).toBe('pass');
      return;
    }
    expect(outcome.result, `${name} is a known failure (${known.reason}) but ended differently:\n${tail}`).toBe(known.result);
    if (known.output !== undefined) expect(outcome.output, `${name}: ${known.reason}`).toMatch(known.output);
  });
});
