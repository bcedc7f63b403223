import { provisionGuestsForCi } from './tests/support/guests.js';
import chooseFastCheckSeed from './vitest.seed-setup.js';

/**
 * The whole suite's global setup: the fast-check seed (vitest.seed-setup.ts),
 * then, in CI, the Debian guests the boot tests need.
 */
export default function setup(): void {
  chooseFastCheckSeed();
  // The Debian boot tests never skip in CI: fetch their kernels and busybox first.
  provisionGuestsForCi();
}
