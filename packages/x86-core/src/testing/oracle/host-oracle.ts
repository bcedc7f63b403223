import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { access, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HARNESS_SOURCE } from './harness-source.js';
import { crashResult, decodeResults, encodeCases, validateCase } from './protocol.js';
import { Flag, type OracleBits, type OracleCase, type OracleResult } from './types.js';

export interface HostOracleOptions {
  /** C compiler to build the harness with. Default: $CC, else `gcc`. */
  readonly compiler?: string;
  /** Where compiled harnesses are cached. Default: <os temp dir>/tsvirt-x86-oracle. */
  readonly cacheDirectory?: string;
  /**
   * Modes that must work for the oracle to count as available. Default [64, 32].
   * Pass [64] to run 64-bit cases on a kernel without 32-bit support.
   */
  readonly requireBits?: readonly OracleBits[];
}

/** Why the oracle cannot run here, phrased for a test's skip message. */
export interface OracleUnavailable {
  readonly unavailable: string;
}

const HOW_TO_ENABLE =
  'The host-CPU oracle needs Linux on x86-64 with a C compiler and C library headers ' +
  '(Debian/Ubuntu: apt-get install gcc libc6-dev; or set CC), and for 32-bit cases a kernel ' +
  'with IA32 emulation (CONFIG_IA32_EMULATION, not booted with ia32_emulation=0).';

const COMPILER_FLAGS = ['-O2', '-no-pie', '-std=gnu11'] as const;

/**
 * Runs x86 instruction sequences on the host CPU, in batches, through a small
 * native harness compiled on first use. See README.md in this folder.
 */
export class HostOracle {
  /** Modes this host can run; always contains 64. */
  readonly supportedBits: readonly OracleBits[];
  /** Why 32-bit cases cannot run, when they cannot. */
  readonly unavailable32: string | undefined;
  readonly #binary: string;
  #spawnCount = 0;

  private constructor(binary: string, unavailable32: string | undefined) {
    this.#binary = binary;
    this.unavailable32 = unavailable32;
    this.supportedBits = unavailable32 === undefined ? [64, 32] : [64];
  }

  /** Path of the compiled harness. */
  get binary(): string {
    return this.#binary;
  }

  /** How many harness processes this instance has started (a batch normally needs one). */
  get spawnCount(): number {
    return this.#spawnCount;
  }

  /**
   * Builds (or finds in the cache) the harness and checks that it runs.
   * Resolves to `{ unavailable }` instead of throwing when the host cannot run
   * it, so tests can skip with that message.
   */
  static async create(options: HostOracleOptions = {}): Promise<HostOracle | OracleUnavailable> {
    if (process.platform !== 'linux' || process.arch !== 'x64') {
      return unavailable(`this host is ${process.platform}/${process.arch}, not linux/x64`);
    }
    const compiler = options.compiler ?? process.env.CC ?? 'gcc';
    const built = await buildHarness(compiler, options.cacheDirectory ?? join(tmpdir(), 'tsvirt-x86-oracle'));
    if ('unavailable' in built) return built;

    const oracle = new HostOracle(built.binary, undefined);
    let probe: OracleResult[];
    try {
      probe = await oracle.run([PROBE_64, PROBE_32]);
    } catch (error) {
      return unavailable(`the harness does not run: ${(error as Error).message}`);
    }
    const [result64, result32] = probe;
    if (!probeSucceeded(result64, 0x8000_0000n)) {
      return unavailable(`the harness gave a wrong result for a 64-bit probe: ${describe(result64)}`);
    }
    if (probeSucceeded(result32, 0x7fff_ffffn)) return oracle;
    const reason =
      `32-bit code does not run in compatibility mode on this kernel (probe: ${describe(result32)}); ` +
      'IA32 emulation is probably disabled';
    if ((options.requireBits ?? [64, 32]).includes(32)) return unavailable(reason);
    return new HostOracle(built.binary, reason);
  }

  /**
   * Runs the cases in order, in one harness process (restarted only if a case
   * kills it), and returns one result per case. Throws TypeError for malformed
   * cases and Error when the harness cannot be started.
   */
  async run(cases: readonly OracleCase[]): Promise<OracleResult[]> {
    cases.forEach((testCase, index) => {
      validateCase(testCase, index);
      if (testCase.bits === 32 && this.unavailable32 !== undefined) {
        throw new Error(`oracle case ${index} is 32-bit, but ${this.unavailable32}`);
      }
    });
    const results: OracleResult[] = [];
    while (results.length < cases.length) {
      const remaining = cases.slice(results.length);
      const outcome = await this.#runProcess(remaining);
      results.push(...outcome.results);
      if (outcome.results.length < remaining.length) {
        const crashed = remaining[outcome.results.length];
        if (crashed === undefined) break;
        if (outcome.exitCode === HARNESS_SETUP_FAILURE) {
          throw new Error(`oracle harness failed: ${outcome.stderr.trim()}`);
        }
        results.push(crashResult(crashed, `harness ${outcome.exitDescription}; ${outcome.stderr.trim()}`));
      }
    }
    return results;
  }

  /** Runs a single case (a convenience over `run`). */
  async runOne(testCase: OracleCase): Promise<OracleResult> {
    const [result] = await this.run([testCase]);
    if (result === undefined) throw new Error('oracle returned no result');
    return result;
  }

  async #runProcess(cases: readonly OracleCase[]): Promise<ProcessOutcome> {
    this.#spawnCount++;
    const input = encodeCases(cases);
    return new Promise<ProcessOutcome>((resolve, reject) => {
      const child = spawn(this.#binary, [], { stdio: ['pipe', 'pipe', 'pipe'] });
      const output: Buffer[] = [];
      const errors: Buffer[] = [];
      child.stdout.on('data', (chunk: Buffer) => output.push(chunk));
      child.stderr.on('data', (chunk: Buffer) => errors.push(chunk));
      // The harness may die before reading all input; the exit status tells the story.
      child.stdin.on('error', () => undefined);
      child.on('error', reject);
      child.on('close', (exitCode, signal) => {
        const buffer = Buffer.concat(output);
        resolve({
          results: decodeResults(new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength), cases),
          exitCode,
          exitDescription: signal === null ? `exited with status ${String(exitCode)}` : `was killed by ${signal}`,
          stderr: Buffer.concat(errors).toString('utf8'),
        });
      });
      child.stdin.end(input);
    });
  }
}

interface ProcessOutcome {
  readonly results: OracleResult[];
  readonly exitCode: number | null;
  readonly exitDescription: string;
  readonly stderr: string;
}

/** Exit status the harness uses when it cannot set itself up or the input is malformed. */
const HARNESS_SETUP_FAILURE = 3;

// add eax, ebx with 0x7fffffff + 1 in 64-bit mode, and `dec eax` (0x48, a REX
// prefix in 64-bit mode) in 32-bit mode: a wrong mode gives a different value.
const PROBE_64: OracleCase = {
  bits: 64,
  code: Uint8Array.of(0x01, 0xd8),
  registers: [0x7fff_ffffn, 0n, 0n, 1n, 0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n],
};
const PROBE_32: OracleCase = {
  bits: 32,
  code: Uint8Array.of(0x48, 0x90),
  registers: [0x8000_0000n, 0n, 0n, 0n, 0n, 0n, 0n, 0n],
};

function probeSucceeded(result: OracleResult | undefined, expectedAccumulator: bigint): boolean {
  return result !== undefined && result.fault === undefined && result.registers[0] === expectedAccumulator;
}

function describe(result: OracleResult | undefined): string {
  if (result === undefined) return 'no result';
  if (result.fault !== undefined) {
    return `${result.fault.kind} ${result.fault.name} (${result.fault.signal}) at rip 0x${result.rip.toString(16)}`;
  }
  return `accumulator 0x${(result.registers[0] ?? 0n).toString(16)}, rflags 0x${(result.rflags & ~Flag.IF).toString(16)}`;
}

function unavailable(reason: string): OracleUnavailable {
  return { unavailable: `host-CPU oracle unavailable: ${reason}. ${HOW_TO_ENABLE}` };
}

async function buildHarness(
  compiler: string,
  cacheRoot: string,
): Promise<{ readonly binary: string } | OracleUnavailable> {
  const key = createHash('sha256')
    .update(HARNESS_SOURCE)
    .update('\0')
    .update(compiler)
    .update('\0')
    .update(COMPILER_FLAGS.join(' '))
    .digest('hex')
    .slice(0, 16);
  const directory = join(cacheRoot, key);
  const binary = join(directory, 'harness');
  if (await isExecutable(binary)) return { binary };

  // Unique names, then an atomic rename: parallel test workers may build at once.
  const unique = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const source = join(directory, `harness-${unique}.c`);
  const output = join(directory, `harness-${unique}`);
  try {
    await mkdir(directory, { recursive: true });
    await writeFile(source, HARNESS_SOURCE);
    await compile(compiler, [...COMPILER_FLAGS, '-o', output, source]);
    await rename(output, binary);
  } catch (error) {
    await rm(output, { force: true });
    return unavailable(`building the harness with \`${compiler}\` failed: ${(error as Error).message}`);
  } finally {
    await rm(source, { force: true });
  }
  return { binary };
}

function compile(compiler: string, args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(compiler, args, { timeout: 60_000 }, (error, _stdout, stderr) => {
      if (error === null) {
        resolve();
        return;
      }
      const code = (error as NodeJS.ErrnoException).code;
      reject(new Error(code === 'ENOENT' ? `${compiler} not found` : `${error.message.split('\n')[0]}\n${stderr}`));
    });
  });
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}
