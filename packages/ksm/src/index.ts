export { KsmScanner, type KsmEvent, type KsmGuestStats, type KsmScannerOptions, type KsmStats, type TickResult } from './scanner.js';
export { DEFAULT_KNOBS, KNOB_LIMITS, type KsmKnobs } from './knobs.js';
export { KsmError, type KsmErrorCode } from './errors.js';
export { type KsmGuestOptions } from './tracked-guest.js';
export { type KsmState } from './state.js';
export { advisePagesToScan, type AdvisorInput } from './advisor.js';
export { pageChecksum } from './checksum.js';
