/** A structured read reply may come in chunks of any order; they must not overlap and must cover the read. */
export class ReadCoverage {
  /** Disjoint, sorted, merged [start, end) ranges. */
  private readonly ranges: Array<[number, number]> = [];

  /** Adds the non-empty range [start, end); false if it overlaps one already covered, or the reply is too fragmented to track. */
  add(start: number, end: number): boolean {
    const ranges = this.ranges;
    // The first range that does not end before `start` (binary search: a hostile server may send many chunks).
    let index = 0;
    for (let high = ranges.length; index < high; ) {
      const middle = (index + high) >>> 1;
      if (ranges[middle]![1] < start) index = middle + 1;
      else high = middle;
    }
    const candidate = ranges[index];
    if (candidate && candidate[0] < end && start < candidate[1]) return false;
    if (candidate && candidate[1] === start) {
      const following = ranges[index + 1];
      if (following && following[0] < end) return false;
      candidate[1] = end;
      if (following && following[0] === end) {
        candidate[1] = following[1];
        ranges.splice(index + 1, 1);
      }
    } else if (candidate && candidate[0] === end) {
      candidate[0] = start;
    } else {
      ranges.splice(index, 0, [start, end]);
    }
    // A well-behaved server sends a handful of runs; thousands of disjoint ones are not worth tracking.
    return ranges.length <= 4096;
  }

  /** True if exactly [start, end) is covered, in one piece. */
  covers(start: number, end: number): boolean {
    return start === end || (this.ranges.length === 1 && this.ranges[0]![0] === start && this.ranges[0]![1] === end);
  }
}
