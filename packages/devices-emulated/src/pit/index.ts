export * from './pit.js';
export { PIT_FREQUENCY_HZ } from './pit-time.js';
export type { PitChannelState } from './pit-channel.js';
