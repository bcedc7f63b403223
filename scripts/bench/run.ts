/**
 * `pnpm bench [filter]`: runs every `packages/*\/src/**\/*.bench.ts` (or those
 * whose path contains `filter`) and writes their reports into BENCHMARKS.md,
 * each under a marker so a filtered run replaces only its own sections.
 *
 * A bench file's default export is `() => Promise<BenchmarkReport[]>`.
 */
import { execSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import type { BenchmarkReport } from '@tsvirt/interfaces/testing';

// The in-process benchmarks (the interpreter's MIPS) run with the inlining budget `tsvirt` sets (packages/cli/src/bin.ts).
setFlagsFromString('--max-inlined-bytecode-size-cumulative=30000 --max-inlined-bytecode-size-absolute=10000');

const root = fileURLToPath(new URL('../../', import.meta.url));
const output = path.join(root, 'BENCHMARKS.md');

function findBenchFiles(filter: string | undefined): string[] {
  const found: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory() && entry.name !== 'node_modules' && entry.name !== 'dist') walk(full);
      else if (entry.name.endsWith('.bench.ts')) found.push(path.relative(root, full));
    }
  };
  for (const name of readdirSync(path.join(root, 'packages'))) {
    const src = path.join(root, 'packages', name, 'src');
    if (existsSync(src)) walk(src);
  }
  return found.sort().filter((file) => filter === undefined || file.includes(filter));
}

function machine(): string {
  const cpus = os.cpus();
  const model = cpus[0]?.model.trim() ?? 'unknown CPU';
  let commit = 'uncommitted';
  try {
    commit = execSync('git rev-parse --short HEAD', { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    // Not a git checkout: leave it as uncommitted.
  }
  return `${model}, ${cpus.length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}, Node ${process.version}, commit ${commit}`;
}

function renderTable(report: BenchmarkReport): string {
  const lines = [`### ${report.title}`, '', report.description, '', `| ${report.columns.join(' | ')} |`, `|${report.columns.map(() => '---').join('|')}|`];
  for (const row of report.rows) lines.push(`| ${row.map((cell) => (typeof cell === 'number' ? formatNumber(cell) : cell)).join(' | ')} |`);
  for (const note of report.notes ?? []) lines.push('', note);
  return lines.join('\n');
}

function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US');
  return value.toPrecision(3);
}

async function main(): Promise<void> {
  const filter = process.argv[2];
  const files = findBenchFiles(filter);
  if (files.length === 0) throw new Error(`no bench files${filter ? ` matching ${filter}` : ''}`);
  const existing = existsSync(output) ? readFileSync(output, 'utf8') : '';
  const sections = new Map<string, string>();
  for (const match of existing.matchAll(/<!-- bench:(\S+) -->\n([\s\S]*?)<!-- \/bench -->/g)) sections.set(match[1]!, match[2]!);
  for (const file of files) {
    console.log(`running ${file}`);
    const started = new Date();
    const module = (await import(pathToFileURL(path.join(root, file)).href)) as { default: () => Promise<BenchmarkReport[]> };
    const reports = await module.default();
    const body = [`_${machine()}; ${started.toISOString().slice(0, 10)}; \`pnpm bench ${file}\`_`, '', ...reports.map(renderTable)].join('\n\n');
    sections.set(file, `${body}\n`);
    for (const report of reports) console.log(`\n${renderTable(report)}\n`);
  }
  const document = [
    '# Benchmarks',
    '',
    'Written by `pnpm bench` (scripts/bench/run.ts); each section names the machine, the date and the command that produced it.',
    'Figures are from one run; re-run the command to reproduce them on your machine.',
    '',
    ...[...sections].sort(([a], [b]) => a.localeCompare(b)).map(([file, body]) => `<!-- bench:${file} -->\n${body}<!-- /bench -->\n`),
  ].join('\n');
  writeFileSync(output, document);
  console.log(`wrote ${path.relative(process.cwd(), output)}`);
}

await main();
