import { fileURLToPath } from 'node:url';
import { defineConfig, type ViteUserConfig } from 'vitest/config';

/**
 * What the whole suite (vitest.config.ts) and every package's own
 * vitest.config.ts share, so `pnpm test` at the root and `pnpm test` in
 * packages/<name> run a package's tests the same way.
 */
const repositoryRoot = fileURLToPath(new URL('./', import.meta.url));
const packages = `${repositoryRoot}packages/`;

export const sharedTestConfig = {
  resolve: {
    // Tests run against each package's sources, so a test never sees a stale build.
    alias: [
      { find: /^@tsvirt\/([a-z0-9-]+)\/testing$/, replacement: `${packages}$1/src/testing/index.ts` },
      { find: /^@tsvirt\/([a-z0-9-]+)$/, replacement: `${packages}$1/src/index.ts` },
    ],
  },
  test: {
    setupFiles: [`${repositoryRoot}vitest.setup.ts`],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
} satisfies ViteUserConfig;

/**
 * The configuration of one package's tests, for packages/<name>/vitest.config.ts:
 * that package's `src/**` tests only, with the fast-check seed chosen and
 * printed as in the whole suite (but no Debian guests: no package test boots one).
 *
 * @param configUrl `import.meta.url` of the package's vitest.config.ts
 */
export function packageTestConfig(configUrl: string): ViteUserConfig {
  const root = fileURLToPath(new URL('./', configUrl));
  const name = /packages\/([a-z0-9-]+)\/$/.exec(root)?.[1];
  if (name === undefined) throw new Error(`packageTestConfig: ${configUrl} is not packages/<name>/vitest.config.ts`);
  return defineConfig({
    ...sharedTestConfig,
    root,
    test: {
      ...sharedTestConfig.test,
      name: `@tsvirt/${name}`,
      root,
      include: ['src/**/*.test.ts'],
      globalSetup: [`${repositoryRoot}vitest.seed-setup.ts`],
    },
  });
}
