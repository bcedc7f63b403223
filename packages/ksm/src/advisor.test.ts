import { PAGE_SIZE, guestAddress as a } from '@tsvirt/interfaces';
import { ManualClock } from '@tsvirt/interfaces/testing';
import { FramePool, GuestRam } from '@tsvirt/memory';
import { describe, expect, it } from 'vitest';
import { advisePagesToScan, type AdvisorInput } from './advisor.js';
import { KsmScanner } from './scanner.js';

const base: AdvisorInput = {
  pagesToScan: 100,
  scanSeconds: 100,
  targetScanSeconds: 100,
  cpuMilliseconds: 0,
  pagesScanned: 0,
  sleepMilliseconds: 20,
  maxCpuPercent: 70,
  minPagesToScan: 1,
  maxPagesToScan: 1_000_000,
};

describe('advisePagesToScan', () => {
  it('keeps the rate when the scan met its target', () => {
    expect(advisePagesToScan(base)).toBe(100);
  });

  it('moves halfway toward the rate that would meet the target', () => {
    // 400 s at 100 pages a tick: 400 pages would take 100 s; halfway is 250.
    expect(advisePagesToScan({ ...base, scanSeconds: 400 })).toBe(250);
    // 50 s: 50 pages would do; halfway is 75.
    expect(advisePagesToScan({ ...base, scanSeconds: 50 })).toBe(75);
  });

  it('caps the rate at the CPU budget', () => {
    // 0.1 ms a page, 50 %: p * 0.1 <= 20 ms of sleep, so p <= 200.
    expect(advisePagesToScan({ ...base, scanSeconds: 10_000, cpuMilliseconds: 10, pagesScanned: 100, maxCpuPercent: 50 })).toBe(200);
    // 75 %: p * 0.1 / (p * 0.1 + 20) <= 0.75, so p <= 600.
    expect(advisePagesToScan({ ...base, scanSeconds: 10_000, cpuMilliseconds: 10, pagesScanned: 100, maxCpuPercent: 75 })).toBe(600);
    // 100 %: no cap.
    expect(advisePagesToScan({ ...base, scanSeconds: 10_000, cpuMilliseconds: 10, pagesScanned: 100, maxCpuPercent: 100 })).toBe(5_050);
  });

  it('stays within the configured bounds', () => {
    expect(advisePagesToScan({ ...base, scanSeconds: 1, minPagesToScan: 80 })).toBe(80);
    expect(advisePagesToScan({ ...base, scanSeconds: 1e6, maxPagesToScan: 3_000 })).toBe(3_000);
  });
});

describe('the scan-time advisor in the scanner', () => {
  function scannerWith(pages: number, knobs: { target: number; maxCpu: number; cpuPerPage: number }) {
    const pool = new FramePool();
    const ram = new GuestRam({ size: pages * PAGE_SIZE, pool });
    for (let page = 0; page < pages; page++) ram.writeU32(a(page * PAGE_SIZE), page + 1);
    const clock = new ManualClock();
    // A CPU clock that advances a fixed cost per page scanned.
    const holder: { scanner?: KsmScanner } = {};
    const scanner = new KsmScanner({
      clock,
      seed: 1,
      cpuTime: () => (holder.scanner?.pagesScanned ?? 0) * knobs.cpuPerPage,
      knobs: {
        run: 1,
        smart_scan: false,
        advisor_mode: 'scan-time',
        advisor_target_scan_time: knobs.target,
        advisor_max_cpu: knobs.maxCpu,
        advisor_min_pages_to_scan: 1,
        advisor_max_pages_to_scan: 100_000,
      },
    });
    holder.scanner = scanner;
    scanner.register('g', ram);
    scanner.start();
    return { scanner, clock };
  }

  it('converges on the pages per tick that make a full scan take the target time', () => {
    // 2,000 pages in 10 s at one tick per 20 ms: 500 ticks, so 4 pages a tick.
    const { scanner, clock } = scannerWith(2_000, { target: 10, maxCpu: 70, cpuPerPage: 0.001 });
    expect(scanner.knobs.pages_to_scan).toBe(1);
    clock.advance(300e9);
    expect(scanner.knobs.pages_to_scan).toBe(4);
    const scans = scanner.stats().full_scans;
    clock.advance(100e9);
    expect(scanner.stats().full_scans - scans).toBe(10);
  });

  it('holds the scanner to its CPU budget when the target asks for more', () => {
    // 1 ms a page and 50 % CPU: a tick may take as long as the 20 ms sleep, 20 pages.
    const { scanner, clock } = scannerWith(2_000, { target: 1, maxCpu: 50, cpuPerPage: 1 });
    clock.advance(100e9);
    expect(scanner.knobs.pages_to_scan).toBe(20);
  });
});
