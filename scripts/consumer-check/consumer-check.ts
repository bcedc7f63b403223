/**
 * Every published package as a consumer gets it: `pnpm pack` (workspace
 * dependencies become versions, as `pnpm publish` writes them), then, for each
 * package, a fresh project in a temporary directory that depends on that
 * package alone (plus the tsvirt packages its programs import, which must come
 * with it) and installs it with npm from the tarballs: no workspace, none of
 * our devDependencies. The tsvirt packages it brings are forced to the local
 * tarballs with npm `overrides`, so nothing of ours comes from the registry;
 * third-party dependencies (fzstd, fast-xml-parser) do.
 *
 * In each project: the README's executed examples (scripts/readme-examples.ts)
 * and the package's program in programs/<name>.ts are type-checked by `tsc`
 * against the installed declarations (NodeNext resolution, strict, library
 * checks on) and run with node; every export of the package is imported, and
 * an export that needs an optional peer (vitest, fast-check) must say so in the
 * README.
 *
 * The root `pnpm test` runs it (tests/consumer-check.test.ts) after building;
 * `pnpm consumer-check` runs it alone.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { executedExamples, importedPackages, manifestOf, packagesRoot, packagesWithCode, repositoryRoot, workspaceClosure } from '../readme-examples.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** The tools the check runs; the test skips without them outside CI. */
export const REQUIRED_TOOLS = ['pnpm', 'npm', 'tar', 'qemu-img', 'qemu-io', 'nasm'] as const;

export interface Step {
  what: string;
  ok: boolean;
  /** The command's output, or why the step failed. */
  output: string;
  ms: number;
}

export interface PackageReport {
  name: string;
  steps: Step[];
}

export interface ConsumerCheckReport {
  workDir: string;
  /** Packing and inspecting the tarballs. */
  tarballs: Step[];
  packages: PackageReport[];
  ms: number;
}

export interface ConsumerCheckOptions {
  /** Progress lines. */
  log?: (line: string) => void;
  /** Keep the temporary directory (its path is in the report). */
  keep?: boolean;
  /** How many packs, installs and checks run at once (2: CI has two cores). */
  parallel?: number;
  /** Check only these packages (directory names); all are packed regardless. */
  only?: readonly string[];
}

interface CommandResult {
  status: number | null;
  output: string;
}

/**
 * The environment for npm, tsc and the programs: without what pnpm and vitest
 * put there for their own children (npm_config_* of pnpm's settings, VITEST_*),
 * but with the registry and proxy settings npm needs.
 */
function cleanEnvironment(): NodeJS.ProcessEnv {
  const keep = /^npm_config_(registry|proxy|https_proxy|http_proxy|noproxy|no_proxy|cafile|ca|strict_ssl)$/i;
  return Object.fromEntries(
    Object.entries(process.env).filter(([key]) => keep.test(key) || !/^(npm_|pnpm_|VITEST|TURBO_|NODE_OPTIONS$|INIT_CWD$)/i.test(key)),
  );
}

function run(command: string, args: readonly string[], cwd: string, timeoutMs = 300_000): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env: cleanEnvironment(), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => {
      output += `\n[killed after ${timeoutMs / 1000} s]`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ status: null, output: `${output}${error.message}` });
    });
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, output });
    });
  });
}

async function inParallel<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Runs a step and records it; a step that throws or whose command fails is a failed step. */
async function step(steps: Step[], what: string, body: () => Promise<CommandResult | string>): Promise<boolean> {
  const start = performance.now();
  let ok = false;
  let output: string;
  try {
    const result = await body();
    if (typeof result === 'string') {
      ok = true;
      output = result;
    } else {
      ok = result.status === 0;
      output = result.output.trim() + (ok ? '' : `\n[exit status ${result.status}]`);
    }
  } catch (error) {
    output = error instanceof Error ? error.message : String(error);
  }
  steps.push({ what, ok, output, ms: Math.round(performance.now() - start) });
  return ok;
}

/** Packages a consumer can install: code, exports, not private. */
export function publishedPackages(): string[] {
  return packagesWithCode().filter((name) => {
    const manifest = manifestOf(name);
    return manifest.private !== true && manifest.exports !== undefined;
  });
}

interface Program {
  /** File in the project: `readme-<line>.ts`, `<name>.ts`. */
  file: string;
  source: string;
  language: 'ts' | 'js';
  /** One entry per run: the arguments after the fixtures directory. */
  runs: Array<{ args: string[]; before?: (project: string) => void }>;
}

/** Makes @tsvirt/storage's native addon unloadable in a project, as on a host where it cannot load. */
function removeStorageAddon(project: string): void {
  const addon = path.join(project, 'node_modules', '@tsvirt', 'storage', 'dist', 'storage-native.node');
  renameSync(addon, `${addon}.removed`);
}

function programsOf(name: string): Program[] {
  const programs: Program[] = executedExamples(name).map((example) => ({
    file: `readme-${example.line}.${example.language}`,
    source: example.code,
    language: example.language,
    runs: [{ args: [] }],
  }));
  const own = path.join(here, 'programs', `${name}.ts`);
  if (existsSync(own)) {
    const runs = name === 'storage' ? [{ args: ['addon'] }, { args: ['no-addon'], before: removeStorageAddon }] : [{ args: [] }];
    programs.push({ file: `${name}.ts`, source: readFileSync(own, 'utf8'), language: 'ts', runs });
  }
  return programs;
}

/** Imports every export of the package; one that needs a missing optional peer says which. */
function exportsProgram(name: string): string {
  return `import { readFileSync } from 'node:fs';
const manifest = JSON.parse(readFileSync(new URL('./node_modules/@tsvirt/${name}/package.json', import.meta.url), 'utf8'));
const optionalPeers = Object.keys(manifest.peerDependencies ?? {});
for (const subpath of Object.keys(manifest.exports)) {
  if (subpath === './package.json') continue;
  const specifier = subpath === '.' ? manifest.name : manifest.name + subpath.slice(1);
  try {
    const exported = Object.keys(await import(specifier));
    if (exported.length === 0) throw new Error(specifier + ' exports nothing');
    console.log(specifier + ': ' + exported.length + ' exports');
  } catch (error) {
    const missing = /Cannot find package '([^']+)'/.exec(error.message)?.[1];
    if (subpath === '.' || error.code !== 'ERR_MODULE_NOT_FOUND' || !optionalPeers.includes(missing)) throw error;
    console.log(specifier + ': needs ' + missing + ' (an optional peer dependency, not installed)');
  }
}
`;
}

function tarballName(name: string): string {
  return `tsvirt-${name}-${manifestOf(name).version}.tgz`;
}

/** Makes the files the programs read: qcow2 images from qemu-img, the multiboot kernel from nasm. */
async function makeFixtures(dir: string, steps: Step[]): Promise<boolean> {
  mkdirSync(dir, { recursive: true });
  // 4 MiB in 64 KiB chunks: random bytes, zeros, and a compressible pattern in turn.
  const data = new Uint8Array(4 << 20);
  let seed = 0x2545f491;
  for (let chunk = 0; chunk < 64; chunk++) {
    const start = chunk << 16;
    if (chunk % 3 === 0) for (let at = start; at < start + 0x10000; at++) data[at] = (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24;
    else if (chunk % 3 === 2) for (let at = start; at < start + 0x10000; at++) data[at] = (at >> 4) & 0xff;
  }
  writeFileSync(path.join(dir, 'data.raw'), data);
  const commands: Array<[string, string[]]> = [
    ['qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', 'data.raw', 'plain.qcow2']],
    ['qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', '-c', '-o', 'compression_type=zstd', 'data.raw', 'zstd.qcow2']],
    ['qemu-img', ['create', '-f', 'qcow2', '-b', 'plain.qcow2', '-F', 'qcow2', 'overlay.qcow2']],
    ['qemu-io', ['-c', 'write -P 0x5a 1M 64k', 'overlay.qcow2']],
    ['nasm', ['-f', 'bin', '-o', 'ticking-kernel.elf', path.join(here, '..', '..', 'packages', 'vm', 'src', 'machine', 'ticking-kernel.asm')]],
  ];
  for (const [command, args] of commands) {
    if (!(await step(steps, `fixture: ${command} ${args.join(' ')}`, () => run(command, args, dir)))) return false;
  }
  return true;
}

/** Lists a tarball and reads its package.json. */
async function inspectTarball(name: string, file: string): Promise<string> {
  const listing = await run('tar', ['-tzf', file], path.dirname(file));
  if (listing.status !== 0) throw new Error(listing.output);
  const entries = listing.output.split('\n').filter(Boolean);
  const manifestText = await run('tar', ['-xzOf', file, 'package/package.json'], path.dirname(file));
  const manifest = JSON.parse(manifestText.output) as { dependencies?: Record<string, string> };
  const problems: string[] = [];
  for (const [dependency, range] of Object.entries(manifest.dependencies ?? {})) {
    if (/^(workspace|file|link):/.test(range)) problems.push(`dependency ${dependency} is "${range}", not a version`);
  }
  for (const required of ['package/package.json', 'package/README.md', 'package/dist/index.js', 'package/dist/index.d.ts']) {
    if (!entries.includes(required)) problems.push(`${required} is missing`);
  }
  if (name === 'storage' && process.platform === 'linux' && !entries.includes('package/dist/storage-native.node')) problems.push('the native addon dist/storage-native.node is missing');
  const tests = entries.filter((entry) => /\.test\.|\/src\//.test(entry));
  if (tests.length > 0) problems.push(`tests or sources in the tarball: ${tests.slice(0, 3).join(', ')}`);
  if (problems.length > 0) throw new Error(problems.join('\n'));
  return `${entries.length} files, dependencies ${JSON.stringify(manifest.dependencies ?? {})}`;
}

function consumerTsconfig(): string {
  const types = path.join(repositoryRoot, 'node_modules', '@types');
  return JSON.stringify(
    {
      compilerOptions: {
        target: 'ES2022',
        lib: ['ES2022'],
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        // Our declarations are checked too, as a strict consumer's build would.
        skipLibCheck: false,
        outDir: 'out',
        rootDir: '.',
        // Node's types only (a consumer has @types/node); nothing else of the workspace is visible.
        types: ['node'],
        typeRoots: [types],
      },
      include: ['*.ts'],
    },
    null,
    2,
  );
}

async function checkPackage(name: string, workDir: string, packs: string, published: readonly string[], fixtures: string): Promise<PackageReport> {
  const steps: Step[] = [];
  const report: PackageReport = { name, steps };
  const project = path.join(workDir, name);
  mkdirSync(project, { recursive: true });
  const programs = programsOf(name);
  // Without one the package is still installed and imported below, but the check fails.
  await step(steps, 'has a program to run: an executed README example', async () => {
    if (programs.length === 0) throw new Error(`packages/${name}/README.md has no example marked <!-- Executed in CI: ... --> (see tests/doc-examples.test.ts)`);
    return programs.map((program) => program.file).join(', ');
  });
  const closure = workspaceClosure(name);
  const imported = [...new Set(programs.flatMap((program) => importedPackages(program.source)))].filter((other) => other !== name);
  const outside = imported.filter((other) => !closure.includes(other));
  if (!(await step(steps, 'programs import only what the package brings', async () => {
    if (outside.length > 0) throw new Error(`they import ${outside.map((other) => `@tsvirt/${other}`).join(', ')}, which @tsvirt/${name} does not bring`);
    return `imports: ${[name, ...imported].map((other) => `@tsvirt/${other}`).join(', ')}`;
  }))) return report;

  const spec = (other: string): string => `file:${path.relative(project, path.join(packs, tarballName(other)))}`;
  const direct = [name, ...imported].sort();
  writeFileSync(
    path.join(project, 'package.json'),
    `${JSON.stringify(
      {
        name: `tsvirt-consumer-of-${name}`,
        private: true,
        type: 'module',
        dependencies: Object.fromEntries(direct.map((other) => [`@tsvirt/${other}`, spec(other)])),
        // What the package brings comes from our tarballs, never from the registry.
        overrides: Object.fromEntries(published.filter((other) => !direct.includes(other)).map((other) => [`@tsvirt/${other}`, spec(other)])),
      },
      null,
      2,
    )}\n`,
  );
  if (!(await step(steps, 'npm install', () => run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], project)))) return report;

  if (!(await step(steps, 'installs exactly the package and the tsvirt packages it depends on, from the tarballs', async () => {
    const lock = JSON.parse(readFileSync(path.join(project, 'package-lock.json'), 'utf8')) as { packages: Record<string, { resolved?: string; version?: string }> };
    const installed = Object.entries(lock.packages).filter(([key]) => key !== '');
    const ours = installed.filter(([key]) => /(^|\/)node_modules\/@tsvirt\//.test(key));
    const names = [...new Set(ours.map(([key]) => key.split('node_modules/@tsvirt/').pop()!))].sort();
    const problems: string[] = [];
    if (JSON.stringify(names) !== JSON.stringify(closure)) problems.push(`installed @tsvirt/{${names.join(',')}}, expected @tsvirt/{${closure.join(',')}}`);
    for (const [key, entry] of ours) if (!entry.resolved?.startsWith('file:')) problems.push(`${key} came from ${entry.resolved}, not a local tarball`);
    const peers = installed.filter(([key]) => /node_modules\/(vitest|fast-check|@fast-check\/vitest|typescript)$/.test(key));
    if (peers.length > 0) problems.push(`test tools were installed: ${peers.map(([key]) => key).join(', ')}`);
    if (problems.length > 0) throw new Error(problems.join('\n'));
    const thirdParty = installed.filter(([key]) => !key.includes('@tsvirt/')).map(([key]) => key.replace(/^.*node_modules\//, ''));
    return `@tsvirt/{${names.join(',')}}${thirdParty.length > 0 ? ` and ${thirdParty.join(', ')}` : ''}`;
  }))) return report;

  writeFileSync(path.join(project, 'tsconfig.json'), consumerTsconfig());
  for (const program of programs) writeFileSync(path.join(project, program.language === 'ts' ? program.file : program.file.replace(/\.js$/, '.mjs')), program.source);
  writeFileSync(path.join(project, 'exports.mjs'), exportsProgram(name));
  const tsc = path.join(path.dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc');
  if (programs.some((program) => program.language === 'ts')) {
    if (!(await step(steps, 'tsc: the programs type-check against the installed declarations', () => run(process.execPath, [tsc, '-p', project], project)))) return report;
  }

  await step(steps, 'every export imports', async () => {
    const result = await run(process.execPath, ['exports.mjs'], project, 60_000);
    if (result.status !== 0) return result;
    const readme = readFileSync(path.join(packagesRoot, name, 'README.md'), 'utf8');
    for (const [, specifier, peer] of result.output.matchAll(/^(\S+): needs (\S+) /gm)) {
      if (!readme.includes(`\`${peer}\``)) throw new Error(`${specifier} needs ${peer}, which the README does not name:\n${result.output}`);
    }
    return result;
  });

  for (const program of programs) {
    for (const [index, { args, before }] of program.runs.entries()) {
      const scratch = path.join(project, `run-${program.file.replace(/\.\w+$/, '')}-${index}`);
      mkdirSync(scratch);
      const script = program.language === 'ts' ? path.join(project, 'out', program.file.replace(/\.ts$/, '.js')) : path.join(project, program.file.replace(/\.js$/, '.mjs'));
      await step(steps, `node ${path.relative(project, script)} ${args.join(' ')}`.trim(), async () => {
        before?.(project);
        return run(process.execPath, [script, fixtures, ...args], scratch, 180_000);
      });
    }
  }
  return report;
}

/** Packs every published package and checks each as a consumer installs it. */
export async function runConsumerCheck(options: ConsumerCheckOptions = {}): Promise<ConsumerCheckReport> {
  const log = options.log ?? (() => {});
  const parallel = options.parallel ?? 2;
  const start = performance.now();
  const published = publishedPackages();
  const missingBuild = published.filter((name) => !existsSync(path.join(packagesRoot, name, 'dist', 'index.js')));
  if (missingBuild.length > 0) throw new Error(`no build of ${missingBuild.map((name) => `@tsvirt/${name}`).join(', ')}: run pnpm build first (pnpm test does)`);
  for (const name of published) {
    for (const dependency of Object.keys(manifestOf(name).dependencies ?? {})) {
      if (dependency.startsWith('@tsvirt/') && !published.includes(dependency.slice(8))) throw new Error(`@tsvirt/${name} depends on ${dependency}, which is not a published package with code`);
    }
  }

  const workDir = mkdtempSync(path.join(tmpdir(), 'tsvirt-consumers-'));
  const report: ConsumerCheckReport = { workDir, tarballs: [], packages: [], ms: 0 };
  try {
    const packs = path.join(workDir, 'packs');
    mkdirSync(packs);
    await inParallel(published, parallel, async (name) => {
      const ok = await step(report.tarballs, `pnpm pack @tsvirt/${name}`, () => run('pnpm', ['pack', '--pack-destination', packs], path.join(packagesRoot, name)));
      if (ok) await step(report.tarballs, `${tarballName(name)} is what a consumer should get`, () => inspectTarball(name, path.join(packs, tarballName(name))));
    });
    log(`packed ${published.length} packages (${readdirSync(packs).join(', ')})`);
    const fixtures = path.join(workDir, 'fixtures');
    if (!(await makeFixtures(fixtures, report.tarballs)) || report.tarballs.some((entry) => !entry.ok)) return report;

    const checked = options.only === undefined ? published : published.filter((name) => options.only!.includes(name));
    report.packages = await inParallel(checked, parallel, async (name) => {
      const result = await checkPackage(name, workDir, packs, published, fixtures);
      const failed = result.steps.filter((entry) => !entry.ok);
      log(`@tsvirt/${name}: ${failed.length === 0 ? 'ok' : `FAILED at ${failed[0]!.what}`} (${result.steps.length} steps, ${(result.steps.reduce((sum, entry) => sum + entry.ms, 0) / 1000).toFixed(1)} s)`);
      return result;
    });
    return report;
  } finally {
    report.ms = Math.round(performance.now() - start);
    if (!options.keep) rmSync(workDir, { recursive: true, force: true });
  }
}

/** One line per step, failures with their output. */
export function formatReport(report: ConsumerCheckReport): string {
  const lines: string[] = [];
  const show = (entry: Step, indent: string): void => {
    lines.push(`${indent}${entry.ok ? 'ok  ' : 'FAIL'} ${entry.what} (${(entry.ms / 1000).toFixed(1)} s)`);
    const output = entry.ok ? entry.output.split('\n').filter((line) => /^(storage|x86-core|devices-emulated|vm|cli): |^@tsvirt\/\S+: |^@tsvirt\/\{|^imports: /.test(line)) : entry.output.split('\n');
    for (const line of output) lines.push(`${indent}       ${line}`);
  };
  lines.push('tarballs:');
  for (const entry of report.tarballs) show(entry, '  ');
  for (const result of report.packages) {
    lines.push(`@tsvirt/${result.name}:`);
    for (const entry of result.steps) show(entry, '  ');
  }
  lines.push(`consumer check: ${report.packages.length} packages in ${(report.ms / 1000).toFixed(1)} s`);
  return lines.join('\n');
}
