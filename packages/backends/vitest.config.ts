import { packageTestConfig } from '../../vitest.shared.js';

// This package's tests alone (`pnpm test` here); the root's `pnpm test` runs them with everything else.
export default packageTestConfig(import.meta.url);
