/**
 * What a `*.bench.ts` file's default export resolves to (an array of these):
 * one table per report, which `pnpm bench` writes into BENCHMARKS.md.
 */
export interface BenchmarkReport {
  readonly title: string;
  readonly description: string;
  readonly columns: readonly string[];
  readonly rows: ReadonlyArray<ReadonlyArray<string | number>>;
  readonly notes?: readonly string[];
}
