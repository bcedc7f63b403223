import { describe, expect, it } from 'vitest';
import { MigrationOptionsError } from '../errors.js';
import { resolveOptions } from './options.js';

describe('resolveOptions', () => {
  it('uses QEMU and libvirt defaults', () => {
    const options = resolveOptions({ autoConverge: true, xbzrle: true });
    expect(options.downtimeLimitNs).toBe(300e6);
    expect(options.maxBandwidth).toBe(Infinity);
    expect(options.autoConverge).toEqual({ initial: 20, increment: 10, max: 99, triggerThreshold: 50 });
    expect(options.xbzrleCacheSize).toBe(64 * 1024 * 1024);
    expect(options.postcopy).toBeUndefined();
  });

  it('refuses nonsense with a typed error', () => {
    expect(() => resolveOptions({ downtimeLimitMs: 0 })).toThrow(MigrationOptionsError);
    expect(() => resolveOptions({ maxBandwidth: -5 })).toThrow(MigrationOptionsError);
    expect(() => resolveOptions({ maxBandwidth: Number.NaN })).toThrow(MigrationOptionsError);
    expect(() => resolveOptions({ autoConverge: { max: 100 } })).toThrow(/\[1, 99\]/);
    expect(() => resolveOptions({ batchBytes: 100 })).toThrow(/batchBytes/);
    expect(() => resolveOptions({ timeout: { afterMs: -1, action: 'suspend' } })).toThrow(MigrationOptionsError);
  });

  it('bounds every wait on the peer by default; each deadline can be set or turned off', () => {
    expect(resolveOptions({}).deadlines).toEqual({ setupNs: 30e9, stallNs: 30e9, recoveryNs: 60e9 });
    expect(resolveOptions({ deadlines: { setupMs: 5, stallMs: false } }).deadlines).toEqual({ setupNs: 5e6, stallNs: undefined, recoveryNs: 60e9 });
    expect(() => resolveOptions({ deadlines: { stallMs: 0 } })).toThrow(MigrationOptionsError);
    expect(() => resolveOptions({ deadlines: { recoveryMs: Number.NaN } })).toThrow(/recoveryMs/);
    expect(() => resolveOptions({ timeout: { afterMs: 5, action: 'pause' as 'abort' } })).toThrow(MigrationOptionsError);
  });
});
