import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { JsonStreamParser, type JsonStreamItem } from './json-stream.js';

function parseAll(chunks: readonly (string | Uint8Array)[], limits?: { maxValueBytes: number; maxDepth: number }): JsonStreamItem[] {
  const items: JsonStreamItem[] = [];
  const parser = new JsonStreamParser((item) => items.push(item), limits);
  for (const chunk of chunks) parser.push(typeof chunk === 'string' ? new TextEncoder().encode(chunk) : chunk);
  return items;
}

/** Splits `text`'s bytes at the given fractions. */
function split(text: string, cuts: readonly number[]): Uint8Array[] {
  const bytes = new TextEncoder().encode(text);
  const points = [...new Set(cuts.map((cut) => Math.floor(cut * bytes.length)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let from = 0;
  for (const point of [...points, bytes.length]) {
    chunks.push(bytes.subarray(from, point));
    from = point;
  }
  return chunks;
}

describe('JsonStreamParser', () => {
  test.prop([fc.array(fc.jsonValue({ maxDepth: 4 }), { maxLength: 6 }), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 8 }), fc.constantFrom('', '\n', '\r\n', ' ')])(
    'finds the same values however the stream is cut into chunks',
    (values, cuts, separator) => {
      // Top-level numbers and keywords end at a delimiter, so every value is followed by one.
      const text = values.map((value) => `${JSON.stringify(value)}${separator === '' ? ' ' : separator}`).join('');
      const items = parseAll(split(text, cuts));
      expect(items).toEqual(values.map((value) => ({ kind: 'value', value: JSON.parse(JSON.stringify(value)) })));
    },
  );

  it('splits objects without newlines, and lets one request span lines', () => {
    expect(parseAll(['{"a":1}{"b":', '[2]}   {"c"\n:\n"}{"}\r\n'])).toEqual([
      { kind: 'value', value: { a: 1 } },
      { kind: 'value', value: { b: [2] } },
      { kind: 'value', value: { c: '}{' } },
    ]);
  });

  it('reports malformed input and goes on with what follows', () => {
    expect(parseAll(['{bad json}\n', 'nonsense\n', '}\n', '{"a":1,}', '\u0000\u0001 {"ok":true}'])).toEqual([
      { kind: 'error', reason: 'expecting value' },
      { kind: 'error', reason: "invalid keyword 'nonsense'" },
      { kind: 'error', reason: 'expecting value' },
      { kind: 'error', reason: 'expecting value' },
      { kind: 'error', reason: "stray '\\x00'" },
      { kind: 'value', value: { ok: true } },
    ]);
  });

  it('drops a value past the size limit with one error, without keeping it, and finds the next one', () => {
    const huge = `{"execute":"${'x'.repeat(5000)}"}`;
    expect(parseAll([huge.slice(0, 3000), huge.slice(3000), '{"next":1}'], { maxValueBytes: 1000, maxDepth: 8 })).toEqual([
      { kind: 'error', reason: 'JSON token size limit exceeded' },
      { kind: 'value', value: { next: 1 } },
    ]);
  });

  it('drops a value nested deeper than the limit with one error', () => {
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    expect(parseAll([deep, '[1]'], { maxValueBytes: 1 << 20, maxDepth: 1024 })).toEqual([
      { kind: 'error', reason: 'JSON nesting depth limit exceeded' },
      { kind: 'value', value: [1] },
    ]);
  });

  it('answers binary garbage with bounded errors, and refuses invalid UTF-8 in a string', () => {
    const garbage = Uint8Array.from({ length: 10_000 }, (_, i) => 0x80 + (i % 0x7f));
    const items = parseAll([garbage, '"\xff"', new Uint8Array([0x22, 0xff, 0x22, 0x20])]);
    expect(items.length).toBeLessThan(10);
    expect(items.at(-1)).toEqual({ kind: 'error', reason: 'invalid UTF-8 sequence in string' });
  });
});
