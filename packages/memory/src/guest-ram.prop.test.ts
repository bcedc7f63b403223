import { test } from '@fast-check/vitest';
import { guestRamModelCommands, runGuestRamModel } from './testing/index.js';

test.prop([guestRamModelCommands()], { numRuns: 300 })('GuestRam agrees with a Map model under writes, merges, discards and dirty fetches', (commands) => {
  runGuestRamModel(commands);
});
