import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { ksmModelCommands, runKsmModel } from './testing/index.js';

describe('KsmScanner against a model of what each guest wrote', () => {
  test.prop([ksmModelCommands(), fc.integer({ min: 2, max: 5 }), fc.integer()], { numRuns: 400 })(
    'guests read what they wrote; counters match the frame pool; domains, opt-outs and max_page_sharing hold',
    (commands, maxPageSharing, seed) => {
      runKsmModel(commands, { maxPageSharing, seed });
    },
  );

  it('the generated interleavings really merge, chain, release zero pages and write mid-comparison', () => {
    // A fixed sample, so this checks the generator, not luck.
    const samples = fc.sample(fc.tuple(ksmModelCommands(), fc.integer({ min: 2, max: 5 })), { numRuns: 200, seed: 20_261_121 });
    const reports = samples.map(([commands, maxPageSharing], index) => runKsmModel(commands, { maxPageSharing, seed: index }));
    const share = (predicate: (report: (typeof reports)[number]) => boolean) => reports.filter(predicate).length / reports.length;
    expect(share((report) => report.mostPagesSharing > 0)).toBeGreaterThan(0.6);
    expect(share((report) => report.crossGuestShares > 0)).toBeGreaterThan(0.4);
    expect(share((report) => report.chains > 0)).toBeGreaterThan(0.1);
    expect(share((report) => report.zeroPages > 0)).toBeGreaterThan(0.1);
    expect(share((report) => report.hostileWrites > 0)).toBeGreaterThan(0.4);
  });
});
