import fc from 'fast-check';

// The seed comes from vitest.global-setup.ts; fast-check prints it (and the
// shrink path) in every failure report.
const seed = Number(process.env.FC_SEED);
fc.configureGlobal({
  seed: Number.isInteger(seed) ? seed : undefined,
  numRuns: process.env.FC_NUM_RUNS ? Number(process.env.FC_NUM_RUNS) : undefined,
});
