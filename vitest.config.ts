import { defineConfig } from 'vitest/config';
import { sharedTestConfig } from './vitest.shared.js';

/**
 * The whole suite (`pnpm test` at the root): every package's tests and the
 * repository's own (tests/, scripts/). A package's tests alone run with
 * packages/<name>/vitest.config.ts (`pnpm test` in that directory).
 */
export default defineConfig({
  ...sharedTestConfig,
  test: {
    ...sharedTestConfig.test,
    include: ['packages/*/src/**/*.test.ts', 'tests/**/*.test.ts', 'scripts/**/*.test.ts'],
    globalSetup: ['./vitest.global-setup.ts'],
    // The JSON report feeds the closing summary line CI prints (.ci/run).
    reporters: ['default', 'json'],
    outputFile: { json: '.cache/vitest-results.json' },
  },
});
