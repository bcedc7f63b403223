import { fc, test } from '@fast-check/vitest';
import { expect } from 'vitest';
import { ReadCoverage } from './read-coverage.js';

/** Cuts [0, length) into consecutive non-empty pieces at the given points. */
function pieces(length: number, cuts: number[]): Array<[number, number]> {
  const points = [...new Set(cuts.map((cut) => cut % length).filter((cut) => cut > 0))].sort((a, b) => a - b);
  const bounds = [0, ...points, length];
  return bounds.slice(1).map((end, index) => [bounds[index]!, end]);
}

test.prop([fc.integer({ min: 1, max: 100_000 }), fc.array(fc.nat(), { maxLength: 40 }), fc.infiniteStream(fc.nat())], { numRuns: 300 })(
  'chunks that partition the read, in any order, cover it exactly',
  (length, cuts, order) => {
    const parts = pieces(length, cuts);
    const shuffled: Array<[number, number]> = [];
    const left = [...parts];
    const picks = order[Symbol.iterator]();
    while (left.length > 0) shuffled.push(left.splice(picks.next().value! % left.length, 1)[0]!);
    const coverage = new ReadCoverage();
    for (const [index, [start, end]] of shuffled.entries()) {
      expect(coverage.add(start, end)).toBe(true);
      if (index < shuffled.length - 1) expect(coverage.covers(0, length)).toBe(false);
    }
    expect(coverage.covers(0, length)).toBe(true);
  },
);

test.prop([fc.integer({ min: 2, max: 100_000 }), fc.array(fc.nat(), { maxLength: 20 }), fc.nat(), fc.nat(), fc.nat()], { numRuns: 300 })(
  'a chunk that overlaps one already received is refused',
  (length, cuts, which, from, size) => {
    const parts = pieces(length, cuts);
    const coverage = new ReadCoverage();
    for (const [start, end] of parts) coverage.add(start, end);
    const [start, end] = parts[which % parts.length]!;
    // Any non-empty range that shares a byte with [start, end).
    const overlapStart = start + (from % (end - start));
    const overlapEnd = Math.min(length, overlapStart + 1 + (size % length));
    expect(coverage.add(overlapStart, overlapEnd)).toBe(false);
  },
);

test.prop([fc.integer({ min: 2, max: 100_000 }), fc.array(fc.nat(), { minLength: 1, maxLength: 20 }), fc.nat()], { numRuns: 300 })(
  'a read missing any chunk is not covered',
  (length, cuts, missing) => {
    const parts = pieces(length, cuts);
    const coverage = new ReadCoverage();
    parts.forEach(([start, end], index) => {
      if (index !== missing % parts.length) coverage.add(start, end);
    });
    expect(coverage.covers(0, length)).toBe(false);
  },
);
