/**
 * Runs every `@example` in the TSDoc of the packages below, so the examples
 * in our API documentation cannot rot. An example sees the package's exports,
 * node's `assert`, and the fixtures it names in a first line
 * `// given: name, ...` (see `fixtures`).
 *
 * Then the READMEs: each package's README says at its top what the package
 * is, how to install it alone (`## Install`) and has an example marked
 * `<!-- Executed in CI -->` (scripts/readme-examples.ts), which runs here as
 * its own program against the sources, in a fresh directory. The same
 * examples run from the packed tarballs in tests/consumer-check.test.ts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as interfaces from '@tsvirt/interfaces';
import { ManualClock, MapBus, MemoryBlockBackend, RecordingIrqLine } from '@tsvirt/interfaces/testing';
import * as memory from '@tsvirt/memory';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { executedExamples, importedPackages, manifestOf, packagesWithCode, repositoryRoot, workspaceClosure, type ReadmeExample } from '../scripts/readme-examples.js';

const packagesRoot = fileURLToPath(new URL('../packages/', import.meta.url));
const scopes: Record<string, Record<string, unknown>> = { interfaces, memory };

const fixtures: Record<string, () => Record<string, unknown>> = {
  memory: () => ({ memory: new memory.GuestRam({ size: 1 << 20 }) }),
  pio: () => ({ pio: new MapBus() }),
  mmio: () => ({ mmio: new MapBus() }),
  irq: () => ({ irq: new RecordingIrqLine() }),
  disk: () => ({ disk: new MemoryBlockBackend(1 << 20) }),
  clock: () => {
    const clock = new ManualClock();
    return { clock, advance: (nanoseconds: number) => clock.advance(nanoseconds) };
  },
};

interface Example {
  file: string;
  line: number;
  code: string;
}

function examplesIn(file: string): Example[] {
  const text = readFileSync(file, 'utf8');
  const found: Example[] = [];
  for (const match of text.matchAll(/@example\s*\n((?:\s*\*.*\n)*?)\s*\*\/|@example\s*\n((?:\s*\*.*\n)*)/g)) {
    const block = (match[1] ?? match[2] ?? '').split('\n').map((line) => line.replace(/^\s*\* ?/, ''));
    const start = block.findIndex((line) => line.startsWith('```'));
    const end = block.findIndex((line, index) => index > start && line.startsWith('```'));
    if (start < 0 || end < 0) continue;
    found.push({ file, line: text.slice(0, match.index).split('\n').length, code: block.slice(start + 1, end).join('\n') });
  }
  return found;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') && !entry.name.includes('.test.') && !entry.name.includes('.bench.') ? [full] : [];
  });
}

for (const [name, exports] of Object.entries(scopes)) {
  const examples = sourceFiles(path.join(packagesRoot, name, 'src')).flatMap(examplesIn);
  describe(`@tsvirt/${name} documentation examples`, () => {
    it('has examples', () => expect(examples.length).toBeGreaterThan(0));
    for (const example of examples) {
      it(`${path.relative(packagesRoot, example.file)}:${example.line}`, async () => {
        let given = /^\/\/ given: ([^\n]*)/.exec(example.code)?.[1] ?? '';
        // Descriptions in parentheses are for readers; the names outside them are fixtures.
        while (/\([^()]*\)/.test(given)) given = given.replace(/\([^()]*\)/g, '');
        const scope: Record<string, unknown> = { ...interfaces, ...exports, assert };
        for (const fixture of given.split(',').map((part) => part.trim()).filter(Boolean)) {
          const make = fixtures[fixture];
          if (make === undefined) throw new Error(`example names an unknown fixture "${fixture}" (known: ${Object.keys(fixtures).join(', ')})`);
          Object.assign(scope, make());
        }
        const javascript = ts.transpileModule(example.code, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } }).outputText;
        const names = Object.keys(scope).filter((key) => /^[A-Za-z_$][\w$]*$/.test(key));
        const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (...args: string[]) => (...values: unknown[]) => Promise<void>;
        await new AsyncFunction(...names, javascript)(...names.map((key) => scope[key]));
      });
    }
  });
}

/** Runs one README example with tsx, resolving `@tsvirt/*` to the sources (tsconfig.check.json's paths). */
async function runReadmeExample(example: ReadmeExample): Promise<{ status: number | null; output: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), `tsvirt-readme-${example.packageName}-`));
  try {
    writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
    const file = `example.${example.language}`;
    writeFileSync(path.join(dir, file), example.code);
    const tsx = createRequire(import.meta.url).resolve('tsx/cli');
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('VITEST')));
    const child = spawn(process.execPath, [tsx, '--tsconfig', path.join(repositoryRoot, 'tsconfig.check.json'), file], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
    return { status, output };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe.each(packagesWithCode())('@tsvirt/%s README', (name) => {
  const readme = readFileSync(path.join(packagesRoot, name, 'README.md'), 'utf8');
  const lines = readme.split('\n');
  const headings = lines.flatMap((line, index) => (/^## /.test(line) ? [{ line: index + 1, text: line }] : []));
  const examples = executedExamples(name, readme);

  it('says what the package is, then how to install it alone, then runs an example', () => {
    expect(lines[0]).toBe(`# @tsvirt/${name}`);
    expect(lines[1]).toBe('');
    expect(lines[2], 'a paragraph saying what the package is follows the title').toMatch(/^[^#\s|`-]/);
    expect(headings[0]?.text, 'the first section is ## Install').toBe('## Install');
    const install = lines.slice(headings[0]!.line, headings[1]?.line ?? lines.length).join('\n');
    expect(install).toMatch(new RegExp(`^npm install (--global )?@tsvirt/${name}\\b`, 'm'));
    expect(examples.length, 'an example marked <!-- Executed in CI: ... --> (scripts/readme-examples.ts)').toBeGreaterThan(0);
    expect(examples[0]!.line, 'the executed example is in ## Install or the section after it').toBeLessThan(headings[2]?.line ?? Infinity);
  });

  it('documents its ./testing export for consumers, or says it has none', () => {
    const manifest = manifestOf(name);
    if (manifest.exports?.['./testing'] !== undefined) expect(readme).toContain(`@tsvirt/${name}/testing`);
    else expect(readme).toMatch(/no\s+`\.\/testing`\s+export/);
  });

  it('imports in its examples only what installing it alone brings', () => {
    const reachable = workspaceClosure(name);
    for (const example of examples) expect(importedPackages(example.code).filter((imported) => !reachable.includes(imported)), `README.md:${example.line}`).toEqual([]);
  });

  for (const example of examples) {
    it(`README.md:${example.line} runs`, async () => {
      const { status, output } = await runReadmeExample(example);
      expect(status, output).toBe(0);
    });
  }
});
