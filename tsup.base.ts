import { existsSync } from 'node:fs';
import { defineConfig, type Options } from 'tsup';

/**
 * The one tsup configuration every package uses. tsup emits JavaScript only:
 * declarations come from `tsc -b` (project references), so types and code
 * are built from the same sources without a second type pass.
 */
export function packageConfig(extra: Options = {}) {
  const entry = ['src/index.ts'];
  if (existsSync('src/testing/index.ts')) entry.push('src/testing/index.ts');
  return defineConfig({
    entry,
    format: ['esm'],
    target: 'node20',
    platform: 'node',
    outDir: 'dist',
    dts: false,
    clean: false,
    sourcemap: true,
    splitting: true,
    // Test helpers are peers of ./testing, never bundled.
    external: ['vitest', '@fast-check/vitest', 'fast-check'],
    ...extra,
  });
}
