import { KsmError } from './errors.js';

/**
 * The scanner's tunables, named as Linux names them in /sys/kernel/mm/ksm.
 * Defaults are Linux's.
 */
export interface KsmKnobs {
  /** 0 stops scanning and keeps merged pages; 1 scans; 2 stops and unmerges everything. */
  readonly run: 0 | 1 | 2;
  /** Pages scanned per tick (a tick runs every `sleep_millisecs`). */
  readonly pages_to_scan: number;
  /** Pause between ticks, in milliseconds of the injected clock. */
  readonly sleep_millisecs: number;
  /** Most mappings of one merged frame; more identical pages start a new frame in the same chain. At least 2. */
  readonly max_page_sharing: number;
  /** Give all-zero pages their frame back instead of merging them (they read as zeros without one). */
  readonly use_zero_pages: boolean;
  /** Skip, with growing back-off, pages that did not merge on earlier scans. */
  readonly smart_scan: boolean;
  /** 'scan-time' lets the advisor set `pages_to_scan` so a full scan takes `advisor_target_scan_time`. */
  readonly advisor_mode: 'none' | 'scan-time';
  /** CPU share, in percent, the advisor may give the scanner. */
  readonly advisor_max_cpu: number;
  readonly advisor_min_pages_to_scan: number;
  readonly advisor_max_pages_to_scan: number;
  /** Seconds a full scan should take under the advisor. */
  readonly advisor_target_scan_time: number;
}

export const DEFAULT_KNOBS: KsmKnobs = {
  run: 0,
  pages_to_scan: 100,
  sleep_millisecs: 20,
  max_page_sharing: 256,
  use_zero_pages: false,
  smart_scan: true,
  advisor_mode: 'none',
  advisor_max_cpu: 70,
  advisor_min_pages_to_scan: 500,
  advisor_max_pages_to_scan: 30_000,
  advisor_target_scan_time: 200,
};

/** Upper bounds that keep one tick's work and every timer deadline finite. */
export const KNOB_LIMITS = {
  pages_to_scan: 1 << 24,
  sleep_millisecs: 3_600_000,
  max_page_sharing: 1 << 24,
  advisor_target_scan_time: 86_400,
} as const;

const integerKnobs: Record<string, readonly [number, number]> = {
  pages_to_scan: [0, KNOB_LIMITS.pages_to_scan],
  sleep_millisecs: [0, KNOB_LIMITS.sleep_millisecs],
  max_page_sharing: [2, KNOB_LIMITS.max_page_sharing],
  advisor_max_cpu: [1, 100],
  advisor_min_pages_to_scan: [1, KNOB_LIMITS.pages_to_scan],
  advisor_max_pages_to_scan: [1, KNOB_LIMITS.pages_to_scan],
  advisor_target_scan_time: [1, KNOB_LIMITS.advisor_target_scan_time],
};

/** Checks every field of `changes` against `current` and returns the merged knobs, or throws {@link KsmError}. */
export function applyKnobs(current: KsmKnobs, changes: Partial<Record<keyof KsmKnobs, unknown>>): KsmKnobs {
  const next: Record<string, unknown> = { ...current };
  for (const [name, value] of Object.entries(changes)) {
    if (value === undefined) continue;
    if (!(name in DEFAULT_KNOBS)) throw new KsmError('KSM_KNOB', `unknown knob ${JSON.stringify(name)}`);
    const range = integerKnobs[name];
    if (range !== undefined) {
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < range[0] || value > range[1]) {
        throw new KsmError('KSM_KNOB', `${name} must be an integer in [${range[0]}, ${range[1]}], got ${String(value)}`);
      }
    } else if (name === 'run') {
      if (value !== 0 && value !== 1 && value !== 2) throw new KsmError('KSM_KNOB', `run must be 0, 1 or 2, got ${String(value)}`);
    } else if (name === 'advisor_mode') {
      if (value !== 'none' && value !== 'scan-time') throw new KsmError('KSM_KNOB', `advisor_mode must be 'none' or 'scan-time', got ${String(value)}`);
    } else if (typeof value !== 'boolean') {
      throw new KsmError('KSM_KNOB', `${name} must be a boolean, got ${String(value)}`);
    }
    next[name] = value;
  }
  const knobs = next as unknown as KsmKnobs;
  if (knobs.advisor_min_pages_to_scan > knobs.advisor_max_pages_to_scan) {
    throw new KsmError('KSM_KNOB', 'advisor_min_pages_to_scan must not exceed advisor_max_pages_to_scan');
  }
  // As in Linux: while the advisor drives pages_to_scan, setting it by hand is refused.
  if (knobs.advisor_mode === 'scan-time' && current.advisor_mode === 'scan-time' && changes.pages_to_scan !== undefined) {
    throw new KsmError('KSM_KNOB', 'pages_to_scan is set by the advisor while advisor_mode is scan-time');
  }
  return knobs;
}
