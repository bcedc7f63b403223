/**
 * Runs every `@example` in the TSDoc of the packages below, so the examples
 * in our API documentation cannot rot. An example sees the package's exports,
 * node's `assert`, and the fixtures it names in a first line
 * `// given: name, ...` (see `fixtures`).
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as interfaces from '@tsvirt/interfaces';
import { ManualClock, MapBus, MemoryBlockBackend, RecordingIrqLine } from '@tsvirt/interfaces/testing';
import * as memory from '@tsvirt/memory';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

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
