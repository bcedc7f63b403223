import { StateReader, type SavedState } from '@tsvirt/interfaces';
import { KNOB_LIMITS, type KsmKnobs } from './knobs.js';

/** The scanner's saved state: knobs and counters. The indexes are rebuilt from the memories. */
export interface KsmState extends SavedState {
  readonly version: 1;
  readonly knobs: KsmKnobs;
  readonly counters: { readonly pages_scanned: number; readonly pages_skipped: number; readonly full_scans: number };
}

/** Reads an untrusted saved state, throwing StateError at the first bad field. */
export function readKsmState(state: unknown): { knobs: KsmKnobs; counters: KsmState['counters'] } {
  const reader = StateReader.open(state, 'ksm', 1);
  const knobs = reader.child('knobs');
  const read: KsmKnobs = {
    run: knobs.int('run', 0, 2) as 0 | 1 | 2,
    pages_to_scan: knobs.uint('pages_to_scan', KNOB_LIMITS.pages_to_scan),
    sleep_millisecs: knobs.uint('sleep_millisecs', KNOB_LIMITS.sleep_millisecs),
    max_page_sharing: knobs.int('max_page_sharing', 2, KNOB_LIMITS.max_page_sharing),
    use_zero_pages: knobs.boolean('use_zero_pages'),
    smart_scan: knobs.boolean('smart_scan'),
    advisor_mode: knobs.string('advisor_mode', ['none', 'scan-time']) as KsmKnobs['advisor_mode'],
    advisor_max_cpu: knobs.int('advisor_max_cpu', 1, 100),
    advisor_min_pages_to_scan: knobs.int('advisor_min_pages_to_scan', 1, KNOB_LIMITS.pages_to_scan),
    advisor_max_pages_to_scan: knobs.int('advisor_max_pages_to_scan', 1, KNOB_LIMITS.pages_to_scan),
    advisor_target_scan_time: knobs.int('advisor_target_scan_time', 1, KNOB_LIMITS.advisor_target_scan_time),
  };
  if (read.advisor_min_pages_to_scan > read.advisor_max_pages_to_scan) {
    knobs.fail('advisor_min_pages_to_scan', 'exceeds advisor_max_pages_to_scan');
  }
  const counters = reader.child('counters');
  return {
    knobs: read,
    counters: {
      pages_scanned: counters.uint('pages_scanned', Number.MAX_SAFE_INTEGER),
      pages_skipped: counters.uint('pages_skipped', Number.MAX_SAFE_INTEGER),
      full_scans: counters.uint('full_scans', Number.MAX_SAFE_INTEGER),
    },
  };
}
