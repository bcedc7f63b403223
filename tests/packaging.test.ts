/**
 * Every package with code publishes cleanly: publint finds nothing (run on
 * the build that `pnpm test` makes first), exports list types first, a
 * README and a CHANGELOG exist, and tests stay out of the tarball.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { publint } from 'publint';
import { describe, expect, it } from 'vitest';

const packagesRoot = fileURLToPath(new URL('../packages/', import.meta.url));
const names = readdirSync(packagesRoot).sort();

describe.each(names)('@tsvirt/%s packaging', (name) => {
  const dir = path.join(packagesRoot, name);
  const manifest = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const hasCode = existsSync(path.join(dir, 'src', 'index.ts'));

  it('has a README and a CHANGELOG', () => {
    expect(readFileSync(path.join(dir, 'README.md'), 'utf8')).toMatch(new RegExp(`^# @tsvirt/${name}`));
    expect(existsSync(path.join(dir, 'CHANGELOG.md'))).toBe(true);
  });

  if (!hasCode) it('says plainly that it has no code yet', () => {
    expect(readFileSync(path.join(dir, 'README.md'), 'utf8')).toMatch(/No code yet/);
    expect(manifest.exports).toBeUndefined();
  });

  if (hasCode) it('is ESM with types-first exports and no tests in files', () => {
    expect(manifest.type).toBe('module');
    for (const [subpath, target] of Object.entries<Record<string, string> | string>(manifest.exports)) {
      if (typeof target === 'string') continue;
      expect(Object.keys(target)[0], `exports["${subpath}"]`).toBe('types');
    }
    expect(manifest.files).toContain('!dist/**/*.test.*');
  });

  if (hasCode) it('passes publint (strict)', async () => {
    expect(existsSync(path.join(dir, 'dist', 'index.js')), 'dist/ is missing: run pnpm build first (pnpm test does)').toBe(true);
    const { messages } = await publint({ pkgDir: dir, strict: true, level: 'suggestion' });
    expect(messages.map((message) => `${message.type} ${message.code} ${JSON.stringify(message.args)}`)).toEqual([]);
  });
});
