export { Hpet, HPET_PERIOD_FS, HPET_TIMERS } from './hpet.js';
export type { HpetEvent, HpetOptions, HpetState } from './hpet.js';
