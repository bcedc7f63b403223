import { fc, test } from '@fast-check/vitest';
import { expect } from 'vitest';
import { DebugExit } from './debug-exit.js';
import { PostCodePort } from './post-code-port.js';
import { ResetControl } from './reset-control.js';
import { SystemControlPortA } from './system-control-port-a.js';

const access = fc.record({
  device: fc.integer({ min: 0, max: 3 }),
  size: fc.constantFrom(1 as const, 2 as const, 4 as const),
  value: fc.integer({ min: 0, max: 0xffffffff }),
  write: fc.boolean(),
});

test.prop([fc.array(access, { maxLength: 100, size: 'max' })], { numRuns: 200 })('port 0x92 and 0xCF9 match their register models; nothing throws', (accesses) => {
  let a20 = false;
  let resets92 = 0;
  const resets: string[] = [];
  const exits: number[] = [];
  const port92 = new SystemControlPortA({ onA20Change: (on) => (a20 = on), onReset: () => resets92++ });
  const rcr = new ResetControl({ onReset: (kind) => resets.push(kind) });
  const devices = [port92, rcr, new PostCodePort(), new DebugExit({ onExit: (status) => exits.push(status) })];
  let model92 = 0;
  let modelResets92 = 0;
  let modelRcr = 0;
  const modelResets: string[] = [];
  for (const a of accesses) {
    const value = a.size === 4 ? a.value : a.value & ((1 << (8 * a.size)) - 1);
    const device = devices[a.device]!;
    if (a.write) {
      device.write(0, a.size, value);
      if (a.size === 1 && a.device === 0) {
        model92 = value & 0xfe;
        if (value & 1) modelResets92++;
      }
      if (a.size === 1 && a.device === 1) {
        modelRcr = value & 0x0a;
        if (value & 4) modelResets.push(value & 8 ? 'full' : value & 2 ? 'hard' : 'soft');
      }
      if (a.device === 3) expect(exits.at(-1)).toBe(value * 2 + 1);
    } else {
      const read = device.read(0, a.size);
      if (a.size !== 1) expect(read).toBe(a.size === 4 ? 0xffffffff : 0xffff);
      else if (a.device === 0) expect(read).toBe(model92);
      else if (a.device === 1) expect(read).toBe(modelRcr);
      else expect(read).toBe(0xff);
    }
    expect(a20).toBe((model92 & 2) !== 0);
    expect(resets92).toBe(modelResets92);
    expect(resets).toEqual(modelResets);
  }
});
