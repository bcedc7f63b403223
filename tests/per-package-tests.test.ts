/**
 * Each package's tests run on their own, as a contributor to that one package
 * runs them: `pnpm test` in packages/<name> (or `pnpm --filter @tsvirt/<name>
 * test` from the root) builds what the package needs with turbo and runs
 * vitest with the package's own vitest.config.ts (vitest.shared.ts), which
 * takes that package's tests and no others.
 *
 * Here: every package's configuration loads and lists exactly its own test
 * files, and one package's `test` script runs for real from the root.
 */
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { packagesRoot, packagesWithCode, repositoryRoot } from '../scripts/readme-examples.js';

const TEST_SCRIPT = 'turbo run build --output-logs=errors-only && vitest run';

function testFiles(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const relative = `${prefix}${entry.name}`;
    if (entry.isDirectory()) return testFiles(path.join(dir, entry.name), `${relative}/`);
    return entry.name.endsWith('.test.ts') ? [relative] : [];
  });
}

/** Runs a command without the variables the surrounding vitest run gives its workers. */
function run(command: string, args: readonly string[], cwd: string): Promise<{ status: number | null; stdout: string; output: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('VITEST')));
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env: { ...env, FORCE_COLOR: '0', NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => ((stdout += chunk.toString()), (output += chunk.toString())));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('close', (status) => resolve({ status, stdout, output }));
  });
}

describe.each(packagesWithCode())('@tsvirt/%s tests on their own', (name) => {
  const dir = path.join(packagesRoot, name);

  it('has a test script that builds with turbo and runs the package vitest config', () => {
    const manifest = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
    expect(manifest.scripts?.test).toBe(TEST_SCRIPT);
    expect(readFileSync(path.join(dir, 'vitest.config.ts'), 'utf8')).toMatch(/packageTestConfig\(import\.meta\.url\)/);
  });

  it('lists exactly its own test files from its own directory', async () => {
    const { status, stdout, output } = await run(process.execPath, [path.join(repositoryRoot, 'node_modules', 'vitest', 'vitest.mjs'), 'list', '--filesOnly', '--json'], dir);
    expect(status, output).toBe(0);
    const listed = (JSON.parse(stdout) as Array<{ file: string }>).map((entry) => path.relative(dir, entry.file)).sort();
    const expected = testFiles(path.join(dir, 'src'), 'src/').sort();
    expect(expected.length, `packages/${name} has no tests`).toBeGreaterThan(0);
    expect(listed).toEqual(expected);
  });
});

describe('a package test script run from the root', () => {
  it('pnpm --filter @tsvirt/memory test builds, runs only that package\'s tests and passes', async () => {
    const { status, output } = await run('pnpm', ['--filter', '@tsvirt/memory', 'test'], repositoryRoot);
    expect(status, output).toBe(0);
    expect(output).toMatch(/fast-check seed: \d+/);
    const files = Number(/Test Files\s+(\d+) passed/.exec(output)?.[1]);
    expect(files, output).toBe(testFiles(path.join(packagesRoot, 'memory', 'src')).length);
  }, 600_000);
});
