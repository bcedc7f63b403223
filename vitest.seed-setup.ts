import { randomInt } from 'node:crypto';

/**
 * One fast-check seed for the whole run, chosen here so every worker uses the
 * same one. It is printed before any test runs; `FC_SEED=<n> pnpm test`
 * replays it exactly. The global setup of a package's own tests
 * (vitest.shared.ts); the whole suite's (vitest.global-setup.ts) calls it too.
 */
export default function chooseFastCheckSeed(): void {
  const given = process.env.FC_SEED;
  if (given !== undefined && !/^-?\d+$/.test(given)) {
    throw new Error(`FC_SEED must be an integer, got ${JSON.stringify(given)}`);
  }
  const seed = given === undefined ? randomInt(0, 2 ** 31 - 1) : Number(given);
  process.env.FC_SEED = String(seed);
  console.log(`fast-check seed: ${seed} (replay with FC_SEED=${seed})`);
}
