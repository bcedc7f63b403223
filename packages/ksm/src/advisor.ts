/** What the advisor knows at the end of a full scan. */
export interface AdvisorInput {
  /** `pages_to_scan` during the scan that just ended. */
  readonly pagesToScan: number;
  /** Seconds the full scan took on the scanner's clock. */
  readonly scanSeconds: number;
  readonly targetScanSeconds: number;
  /** CPU milliseconds the scan's ticks took, and the pages they scanned. */
  readonly cpuMilliseconds: number;
  readonly pagesScanned: number;
  /** The pause between ticks, in milliseconds. */
  readonly sleepMilliseconds: number;
  readonly maxCpuPercent: number;
  readonly minPagesToScan: number;
  readonly maxPagesToScan: number;
}

/**
 * The scan-time advisor (after Linux's `advisor_mode=scan-time`): picks the
 * next `pages_to_scan` so a full scan takes the target time, without letting
 * the scanner's CPU share exceed `maxCpuPercent`.
 *
 * A full scan takes a number of ticks proportional to 1/pages_to_scan, so
 * scaling pages_to_scan by `scanSeconds / target` aims the next scan at the
 * target; the step is halved (an even blend of old and new) to damp noise
 * from a changing guest. A tick of `p` pages costs `p * c` ms of CPU for a
 * measured per-page cost `c` and is followed by `sleep` ms of rest, so the
 * CPU share `p*c / (p*c + sleep)` stays at most `m` when
 * `p <= m * sleep / ((1 - m) * c)`.
 */
export function advisePagesToScan(input: AdvisorInput): number {
  const current = Math.max(1, input.pagesToScan);
  let next = current;
  if (input.scanSeconds > 0 && input.targetScanSeconds > 0) {
    const aimed = (current * input.scanSeconds) / input.targetScanSeconds;
    next = (current + aimed) / 2;
  }
  const share = input.maxCpuPercent / 100;
  if (share < 1 && input.pagesScanned > 0 && input.cpuMilliseconds > 0) {
    const perPage = input.cpuMilliseconds / input.pagesScanned;
    const cap = (share * Math.max(1, input.sleepMilliseconds)) / ((1 - share) * perPage);
    next = Math.min(next, cap);
  }
  return Math.round(Math.min(input.maxPagesToScan, Math.max(input.minPagesToScan, next)));
}
