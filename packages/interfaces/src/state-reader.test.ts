import { describe, expect, it } from 'vitest';
import { StateError } from './errors.js';
import { StateReader, encodeStateBytes } from './state-reader.js';

describe('StateReader', () => {
  const state = {
    version: 2,
    count: 7,
    offset: -3,
    ratio: 0.5,
    on: true,
    mode: 'fifo',
    data: encodeStateBytes(new Uint8Array([9, 8, 7])),
    list: [1, 2, 3],
    nested: { inner: 1 },
    many: [{ a: 1 }, { a: 2 }],
  };

  it('reads well-formed fields', () => {
    const reader = StateReader.open(state, 'device', [1, 2]);
    expect(reader.version).toBe(2);
    expect(reader.uint('count', 10)).toBe(7);
    expect(reader.int('offset', -10, 10)).toBe(-3);
    expect(reader.number('ratio')).toBe(0.5);
    expect(reader.boolean('on')).toBe(true);
    expect(reader.string('mode', ['fifo', 'lifo'])).toBe('fifo');
    expect([...reader.bytes('data', 3, 3)]).toEqual([9, 8, 7]);
    expect(reader.uintArray('list', 3, 3)).toEqual([1, 2, 3]);
    expect(reader.child('nested').uint('inner', 1)).toBe(1);
    expect(reader.children('many', 2).map((child) => child.uint('a', 2))).toEqual([1, 2]);
    expect(reader.has('missing')).toBe(false);
  });

  it('names the offending field in every error', () => {
    const reader = StateReader.open(state, 'device', 2);
    const cases: Array<[() => unknown, string]> = [
      [() => reader.uint('count', 6), 'device.count'],
      [() => reader.int('offset', 0, 1), 'device.offset'],
      [() => reader.number('mode'), 'device.mode'],
      [() => reader.boolean('count'), 'device.count'],
      [() => reader.string('mode', ['lifo']), 'device.mode'],
      [() => reader.bytes('data', 2), 'device.data'],
      [() => reader.bytes('offset', 10), 'device.offset'],
      [() => reader.uintArray('list', 3, 2), 'device.list[2]'],
      [() => reader.uintArray('list', 2, 9), 'device.list'],
      [() => reader.child('count'), 'device.count'],
      [() => reader.children('many', 1), 'device.many'],
      [() => reader.children('many', 2)[1]!.uint('a', 1), 'device.many[1].a'],
      [() => reader.fail('x', 'custom'), 'device.x'],
      [() => StateReader.open(state, 'device', 1), 'device.version'],
      [() => StateReader.open([], 'device', 1), 'device'],
      [() => StateReader.open(null, 'device', 1), 'device'],
    ];
    for (const [read, path] of cases) {
      let error: unknown;
      try {
        read();
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(StateError);
      expect((error as StateError).path).toBe(path);
    }
  });

  it('refuses oversized byte fields before decoding them', () => {
    const reader = StateReader.open({ version: 1, big: 'A'.repeat(4000) }, 'x', 1);
    expect(() => reader.bytes('big', 16)).toThrow(/more than 16 bytes/);
  });
});
