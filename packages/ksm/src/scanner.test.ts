import { PAGE_SIZE, guestAddress as a } from '@tsvirt/interfaces';
import { ManualClock } from '@tsvirt/interfaces/testing';
import { FramePool, GuestRam } from '@tsvirt/memory';
import { describe, expect, it } from 'vitest';
import { KsmError, KsmScanner, type KsmEvent, type KsmKnobs } from './index.js';

const page = (n: number) => a(n * PAGE_SIZE);

function setup(knobs: Partial<KsmKnobs> = {}, pagesPerGuest = 8) {
  const pool = new FramePool();
  const clock = new ManualClock();
  const events: KsmEvent[] = [];
  const scanner = new KsmScanner({ clock, seed: 7, knobs: { run: 1, pages_to_scan: 1000, ...knobs }, observer: (event) => events.push(event) });
  const ram = () => new GuestRam({ size: pagesPerGuest * PAGE_SIZE, pool });
  /** Ticks until `count` more full scans have completed. */
  const fullScans = (count: number) => {
    const target = scanner.stats().full_scans + count;
    for (let i = 0; i < 10_000 && scanner.stats().full_scans < target; i++) scanner.tick();
  };
  return { pool, clock, scanner, ram, events, fullScans };
}

describe('KsmScanner merging', () => {
  it('merges identical pages of guests in one domain, freeing host frames, and keeps what each guest reads', () => {
    const { pool, scanner, ram, fullScans } = setup();
    const one = ram();
    const two = ram();
    one.fill(page(0), PAGE_SIZE, 0x11);
    two.fill(page(3), PAGE_SIZE, 0x11);
    one.fill(page(1), PAGE_SIZE, 0x22);
    two.fill(page(1), PAGE_SIZE, 0x33);
    scanner.register('one', one, { domain: 'tenant' });
    scanner.register('two', two, { domain: 'tenant' });
    expect(pool.stats().framesHeld).toBe(4);

    fullScans(1); // first sight: every page is volatile
    expect(scanner.stats()).toMatchObject({ pages_shared: 0, pages_volatile: 4, full_scans: 1 });
    fullScans(1); // unchanged since: indexed, and the two 0x11 pages merge
    expect(pool.stats()).toMatchObject({ framesHeld: 3, framesShared: 1, bytesSaved: PAGE_SIZE });
    const stats = scanner.stats();
    expect(stats).toMatchObject({ pages_shared: 1, pages_sharing: 1, pages_unshared: 2, pages_volatile: 0 });
    expect(stats.guests.map((guest) => guest.ksm_merging_pages)).toEqual([1, 1]);
    expect(one.frameIdOf(page(0))).toBe(two.frameIdOf(page(3)));
    expect(two.readU8(a(3 * PAGE_SIZE + 100))).toBe(0x11);

    // Copy-on-write: the writer gets its own frame, the other guest still reads the old bytes.
    two.writeU8(a(3 * PAGE_SIZE + 5), 0x99);
    expect(one.readU8(a(5))).toBe(0x11);
    expect(two.readU8(a(3 * PAGE_SIZE + 5))).toBe(0x99);
    expect(pool.stats()).toMatchObject({ framesHeld: 4, framesShared: 0 });
    expect(scanner.stats()).toMatchObject({ pages_shared: 0, pages_sharing: 0 });
  });

  it('keeps guests without a common domain apart, but merges within one guest', () => {
    const { pool, scanner, ram, fullScans } = setup();
    const rams = [ram(), ram(), ram(), ram()];
    for (const memory of rams) memory.fill(page(0), PAGE_SIZE, 0x5a);
    rams[3]!.fill(page(4), PAGE_SIZE, 0x5a);
    scanner.register('a1', rams[0]!, { domain: 'a' });
    scanner.register('b1', rams[1]!, { domain: 'b' });
    scanner.register('none1', rams[2]!);
    scanner.register('none2', rams[3]!);
    fullScans(3);
    const frames = rams.map((memory) => memory.frameIdOf(page(0)));
    expect(new Set(frames).size).toBe(4);
    // Inside one guest, two identical pages do merge.
    expect(rams[3]!.frameIdOf(page(4))).toBe(frames[3]);
    expect(pool.stats()).toMatchObject({ framesHeld: 4, framesShared: 1 });
  });

  it('never touches a guest that opted out, and unmerges one that opts out later', () => {
    const { pool, scanner, ram, fullScans } = setup();
    const one = ram();
    const two = ram();
    const out = ram();
    for (const memory of [one, two, out]) memory.fill(page(2), PAGE_SIZE, 7);
    scanner.register('one', one, { domain: 't' });
    scanner.register('two', two, { domain: 't' });
    scanner.register('out', out, { domain: 't', mergeable: false });
    fullScans(3);
    expect(out.stats().pagesShared).toBe(0);
    expect(one.frameIdOf(page(2))).toBe(two.frameIdOf(page(2)));
    expect(scanner.stats().guests[2]).toMatchObject({ id: 'out', mergeable: false, pages_scanned: 0 });

    scanner.configure('two', { domain: 't', mergeable: false });
    expect(pool.stats().framesShared).toBe(0);
    expect(two.readU8(a(2 * PAGE_SIZE))).toBe(7);
    fullScans(3);
    expect(pool.stats().framesShared).toBe(0);

    // Moving a guest to another domain unmerges it too.
    scanner.configure('two', { domain: 't' });
    fullScans(3);
    expect(pool.stats().framesShared).toBe(1);
    scanner.configure('two', { domain: 'elsewhere' });
    expect(pool.stats().framesShared).toBe(0);
  });

  it('caps each frame at max_page_sharing mappings and chains the rest into new frames', () => {
    const { pool, scanner, ram, fullScans } = setup({ max_page_sharing: 2 });
    const memory = ram();
    for (let n = 0; n < 5; n++) memory.fill(page(n), PAGE_SIZE, 0xee);
    scanner.register('g', memory);
    fullScans(3);
    // Five identical pages, two per frame: frames of 2 + 2 + 1.
    expect(pool.stats()).toMatchObject({ framesHeld: 3, framesShared: 2, pagesMapped: 5 });
    expect(scanner.stats()).toMatchObject({ pages_shared: 2, pages_sharing: 2, stable_node_chains: 1, stable_node_dups: 2 });
    const counts = [0, 1, 2, 3, 4].map((n) => pool.referenceCount(memory.frameIdOf(page(n))));
    expect(Math.max(...counts)).toBe(2);
  });

  it('gives all-zero pages their frames back with use_zero_pages, and counts them until rewritten', () => {
    const { pool, scanner, ram, fullScans } = setup({ use_zero_pages: true });
    const memory = ram();
    memory.fill(page(0), PAGE_SIZE, 1);
    memory.fill(page(0), PAGE_SIZE, 0); // written, so it holds a frame of zeros
    memory.writeU8(a(PAGE_SIZE), 0); // likewise
    memory.fill(page(2), PAGE_SIZE, 3);
    scanner.register('g', memory);
    expect(pool.stats().framesHeld).toBe(3);
    fullScans(2);
    expect(pool.stats().framesHeld).toBe(1);
    expect(scanner.stats()).toMatchObject({ ksm_zero_pages: 2, pages_sharing: 0 });
    // Saved: two frames; spent: 15 bytes for each of 8 pages tracked, 32 for the one indexed candidate.
    expect(scanner.stats().general_profit).toBe(2 * PAGE_SIZE - (8 * 15 + 32));
    expect(scanner.stats().guests[0]!.ksm_process_profit).toBe(2 * PAGE_SIZE - 8 * 15);
    memory.writeU8(a(10), 4);
    expect(scanner.stats().ksm_zero_pages).toBe(1);
    expect(memory.readU8(a(10))).toBe(4);
    expect(memory.readU8(a(PAGE_SIZE + 10))).toBe(0);
  });

  it('merges all-zero pages like any others without use_zero_pages', () => {
    const { pool, scanner, ram, fullScans } = setup();
    const memory = ram();
    memory.writeU8(page(0), 0);
    memory.writeU8(page(1), 0);
    scanner.register('g', memory);
    fullScans(2);
    expect(pool.stats()).toMatchObject({ framesHeld: 1, framesShared: 1 });
    expect(scanner.stats().ksm_zero_pages).toBe(0);
  });

  it('run=2 stops scanning and unmerges everything; run=0 keeps merges', () => {
    const { pool, scanner, ram, fullScans } = setup();
    const one = ram();
    const two = ram();
    for (let n = 0; n < 4; n++) {
      one.fill(page(n), PAGE_SIZE, n + 1);
      two.fill(page(n), PAGE_SIZE, n + 1);
    }
    scanner.register('one', one, { domain: 'd' });
    scanner.register('two', two, { domain: 'd' });
    fullScans(2);
    expect(pool.stats().framesShared).toBe(4);
    scanner.setKnobs({ run: 0 });
    expect(scanner.tick().pagesScanned).toBe(0);
    expect(pool.stats().framesShared).toBe(4);
    scanner.setKnobs({ run: 2 });
    expect(pool.stats()).toMatchObject({ framesShared: 0, framesHeld: 8 });
    expect(scanner.stats()).toMatchObject({ pages_shared: 0, pages_sharing: 0, pages_unshared: 0, pages_volatile: 0 });
    expect(scanner.tick().pagesScanned).toBe(0);
    for (let n = 0; n < 4; n++) expect(two.readU8(a(n * PAGE_SIZE + 9))).toBe(n + 1);
  });

  it('unregistering a guest gives its merged pages private copies', () => {
    const { pool, scanner, ram, fullScans } = setup();
    const one = ram();
    const two = ram();
    one.fill(page(1), PAGE_SIZE, 9);
    two.fill(page(1), PAGE_SIZE, 9);
    scanner.register('one', one, { domain: 'd' });
    scanner.register('two', two, { domain: 'd' });
    fullScans(2);
    expect(pool.stats().framesShared).toBe(1);
    scanner.unregister('one');
    expect(pool.stats().framesShared).toBe(0);
    expect(scanner.guestIds).toEqual(['two']);
    expect(scanner.stats().pages_sharing).toBe(0);
    expect(() => scanner.unregister('one')).toThrow(KsmError);
  });

  it('scans at most pages_to_scan pages per tick and walks guests in turn', () => {
    const { scanner, ram } = setup({ pages_to_scan: 3, smart_scan: false });
    const one = ram();
    const two = ram();
    for (let n = 0; n < 8; n++) {
      one.writeU8(page(n), n);
      two.writeU8(page(n), 100 + n);
    }
    scanner.register('one', one);
    scanner.register('two', two);
    const scanned = Array.from({ length: 5 }, () => scanner.tick().pagesScanned);
    expect(scanned).toEqual([3, 3, 3, 3, 3]);
    expect(scanner.stats().full_scans).toBe(0);
    // The sixteenth page ends the full scan, and the tick with it.
    expect(scanner.tick()).toEqual({ pagesScanned: 1, pagesSkipped: 0, pagesMerged: 0, fullScans: 1 });
    expect(scanner.stats().guests.map((guest) => guest.pages_scanned)).toEqual([8, 8]);
    expect(scanner.tick().pagesScanned).toBe(3);
  });

  it('smart scan skips pages that keep failing to merge, backing off 1, 2, then 4 scans', () => {
    const { scanner, ram } = setup({ pages_to_scan: 1 });
    const memory = new GuestRam({ size: PAGE_SIZE, pool: ram().pool });
    memory.fill(page(0), PAGE_SIZE, 0x42);
    scanner.register('g', memory);
    // One page, one full scan per tick.
    const perScan = Array.from({ length: 8 }, () => {
      const { pagesScanned, pagesSkipped, fullScans } = scanner.tick();
      expect(fullScans).toBe(1);
      return [pagesScanned, pagesSkipped];
    });
    // Scans 1-3 look at the page; then skip 1, look, skip 2, look (scan 8).
    expect(perScan).toEqual([[1, 0], [1, 0], [1, 0], [0, 1], [1, 0], [0, 1], [0, 1], [1, 0]]);
    expect(scanner.stats()).toMatchObject({ pages_scanned: 5, pages_skipped: 3, full_scans: 8 });
  });

  it('without smart scan every page is scanned on every full scan', () => {
    const { scanner, ram, fullScans } = setup({ smart_scan: false });
    const memory = ram();
    memory.fill(page(0), PAGE_SIZE, 0x42);
    scanner.register('g', memory);
    fullScans(8);
    expect(scanner.stats()).toMatchObject({ pages_scanned: 8, pages_skipped: 0, full_scans: 8 });
  });

  it('bounds the work of a tick over a huge never-written guest', () => {
    const { scanner } = setup({ pages_to_scan: 10 });
    const big = new GuestRam({ size: 1 << 30 });
    scanner.register('big', big);
    const result = scanner.tick();
    expect(result).toEqual({ pagesScanned: 0, pagesSkipped: 0, pagesMerged: 0, fullScans: 0 });
    // 2^18 pages at 2,560 visits a tick: the full scan ends in tick ceil(262144 / 2560) = 103.
    for (let i = 1; i < 102; i++) scanner.tick();
    expect(scanner.stats().full_scans).toBe(0);
    expect(scanner.tick().fullScans).toBe(1);
  });

  it('adopts frames a memory already shares when registered (a restored snapshot)', () => {
    const { pool, scanner, ram } = setup();
    const memory = ram();
    memory.fill(page(0), PAGE_SIZE, 3);
    memory.fill(page(1), PAGE_SIZE, 3);
    expect(memory.mergeFrom(page(1), memory, page(0))).toBe(true);
    scanner.register('g', memory);
    expect(scanner.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 1 });
    expect(pool.stats().framesShared).toBe(1);
  });

  it('rejects guests from another pool and duplicate ids', () => {
    const { scanner, ram } = setup();
    scanner.register('one', ram());
    expect(() => scanner.register('one', ram())).toThrow(KsmError);
    expect(() => scanner.register('other', new GuestRam({ size: PAGE_SIZE }))).toThrow(expect.objectContaining({ code: 'KSM_POOL' }));
    expect(() => scanner.register('', ram())).toThrow(KsmError);
    expect(() => scanner.configure('missing', {})).toThrow(KsmError);
  });
});

describe('KsmScanner never merges pages that differ', () => {
  it('refuses an indexed page written after its checksum was taken', () => {
    const { pool, scanner, ram } = setup({ pages_to_scan: 1, smart_scan: false });
    const one = new GuestRam({ size: PAGE_SIZE, pool: ram().pool });
    const two = new GuestRam({ size: PAGE_SIZE, pool: one.pool });
    one.fill(page(0), PAGE_SIZE, 0x77);
    two.fill(page(0), PAGE_SIZE, 0x77);
    scanner.register('one', one, { domain: 'd' });
    scanner.register('two', two, { domain: 'd' });
    scanner.tick(); // one: first checksum
    scanner.tick(); // two: first checksum
    scanner.tick(); // (wrap) one: unchanged, now in the unstable index under the checksum of 0x77s
    one.writeU8(a(4000), 0x78); // a private frame: written in place, the index still says 0x77s
    scanner.tick(); // two: unchanged, finds one's entry, compares, refuses
    expect(one.frameIdOf(page(0))).not.toBe(two.frameIdOf(page(0)));
    expect(pool.stats().framesShared).toBe(0);
    expect(one.readU8(a(4000))).toBe(0x78);
    expect(two.readU8(a(4000))).toBe(0x77);
  });

  it.each(['scanned', 'other'] as const)('refuses when the %s page is written between the checksum and the comparison', (target) => {
    const pool = new FramePool();
    let armed = true;
    const rams = [new GuestRam({ size: PAGE_SIZE, pool }), new GuestRam({ size: PAGE_SIZE, pool })];
    const compares: KsmEvent[] = [];
    const scanner = new KsmScanner({
      clock: new ManualClock(),
      seed: 3,
      knobs: { run: 1, pages_to_scan: 100, smart_scan: false },
      observer: (event) => {
        if (event.kind !== 'compare') return;
        compares.push(event);
        if (!armed) return;
        armed = false;
        const [id, at] = target === 'scanned' ? [event.guest, event.page] : [event.withGuest, event.withPage];
        rams[id === 'one' ? 0 : 1]!.writeU8(a(at * PAGE_SIZE + 17), 0xff);
      },
    });
    for (const memory of rams) memory.fill(page(0), PAGE_SIZE, 0x10);
    scanner.register('one', rams[0]!, { domain: 'd' });
    scanner.register('two', rams[1]!, { domain: 'd' });
    for (let i = 0; i < 3; i++) scanner.tick();
    expect(compares.length).toBeGreaterThan(0);
    expect(pool.stats().framesShared).toBe(0);
    expect(rams.map((memory) => memory.readU8(a(17))).sort()).toEqual([0x10, 0xff]);
    expect(scanner.stats().pages_sharing).toBe(0);
  });

  it('refuses to join a merged frame when the page changed after its checksum', () => {
    const pool = new FramePool();
    const rams = [0, 1, 2].map(() => new GuestRam({ size: PAGE_SIZE, pool }));
    let armed = false;
    const scanner = new KsmScanner({
      clock: new ManualClock(),
      seed: 5,
      knobs: { run: 1, pages_to_scan: 1, smart_scan: false },
      observer: (event) => {
        if (event.kind === 'compare' && armed && event.guest === 'g2') {
          armed = false;
          rams[2]!.writeU8(a(1), 0xab);
        }
      },
    });
    rams.forEach((memory, index) => {
      memory.fill(page(0), PAGE_SIZE, 0x33);
      scanner.register(`g${index}`, memory, { domain: 'd' });
    });
    for (let i = 0; i < 3; i++) scanner.tick(); // first checksums
    scanner.tick(); // g0 indexed
    scanner.tick(); // g1 merges with g0: a stable frame
    expect(pool.referenceCount(rams[0]!.frameIdOf(page(0)))).toBe(2);
    armed = true;
    scanner.tick(); // g2 matches the stable frame's checksum, is written, and is refused
    expect(armed).toBe(false);
    expect(pool.referenceCount(rams[0]!.frameIdOf(page(0)))).toBe(2);
    expect(rams[2]!.frameIdOf(page(0))).not.toBe(rams[0]!.frameIdOf(page(0)));
    expect(rams[2]!.readU8(a(1))).toBe(0xab);
    expect(rams[0]!.readU8(a(1))).toBe(0x33);
    expect(scanner.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 1 });
  });

  it('without the write, the same page joins the stable frame', () => {
    const pool = new FramePool();
    const rams = [0, 1, 2].map(() => new GuestRam({ size: PAGE_SIZE, pool }));
    const scanner = new KsmScanner({ clock: new ManualClock(), seed: 5, knobs: { run: 1, pages_to_scan: 1, smart_scan: false } });
    rams.forEach((memory, index) => {
      memory.fill(page(0), PAGE_SIZE, 0x33);
      scanner.register(`g${index}`, memory, { domain: 'd' });
    });
    for (let i = 0; i < 6; i++) scanner.tick();
    expect(pool.referenceCount(rams[0]!.frameIdOf(page(0)))).toBe(3);
    expect(pool.stats()).toMatchObject({ framesHeld: 1, bytesSaved: 2 * PAGE_SIZE });
  });
});

describe('KsmScanner knobs, loop and state', () => {
  it('validates knobs and refuses pages_to_scan while the advisor drives it', () => {
    const { scanner } = setup();
    expect(() => scanner.setKnobs({ run: 3 as never })).toThrow(KsmError);
    expect(() => scanner.setKnobs({ pages_to_scan: -1 })).toThrow(KsmError);
    expect(() => scanner.setKnobs({ pages_to_scan: 1.5 })).toThrow(KsmError);
    expect(() => scanner.setKnobs({ max_page_sharing: 1 })).toThrow(KsmError);
    expect(() => scanner.setKnobs({ use_zero_pages: 1 as never })).toThrow(KsmError);
    expect(() => scanner.setKnobs({ advisor_mode: 'fast' as never })).toThrow(KsmError);
    expect(() => scanner.setKnobs({ advisor_min_pages_to_scan: 40_000 })).toThrow(KsmError);
    expect(() => scanner.setKnobs({ nonsense: 1 } as never)).toThrow(KsmError);
    // A refused change leaves every knob as it was.
    expect(() => scanner.setKnobs({ sleep_millisecs: 50, max_page_sharing: 0 })).toThrow(KsmError);
    expect(scanner.knobs.sleep_millisecs).toBe(20);
    scanner.setKnobs({ advisor_mode: 'scan-time' });
    expect(scanner.knobs.pages_to_scan).toBe(500);
    expect(() => scanner.setKnobs({ pages_to_scan: 10 })).toThrow(/advisor/);
  });

  it("defaults to Linux's knobs", () => {
    const scanner = new KsmScanner({ clock: new ManualClock() });
    expect(scanner.knobs).toMatchObject({ run: 0, pages_to_scan: 100, sleep_millisecs: 20, max_page_sharing: 256, use_zero_pages: false, smart_scan: true });
  });

  it('ticks every sleep_millisecs on the injected clock, and stops', () => {
    const { clock, scanner, ram } = setup({ pages_to_scan: 2, sleep_millisecs: 20, smart_scan: false });
    const memory = ram();
    for (let n = 0; n < 8; n++) memory.writeU8(page(n), n + 1);
    scanner.register('g', memory);
    scanner.start();
    expect(scanner.running).toBe(true);
    clock.advance(19e6);
    expect(scanner.stats().pages_scanned).toBe(0);
    clock.advance(81e6); // ticks at 20, 40, 60, 80, 100 ms
    expect(scanner.stats().pages_scanned).toBe(10);
    scanner.stop();
    clock.advance(1e9);
    expect(scanner.stats().pages_scanned).toBe(10);
    expect(scanner.running).toBe(false);
  });

  it('round-trips knobs and counters, and rebuilds the merged-frame index', () => {
    const { pool, scanner, ram, fullScans } = setup({ max_page_sharing: 3, use_zero_pages: true });
    const one = ram();
    const two = ram();
    for (let n = 0; n < 3; n++) {
      one.fill(page(n), PAGE_SIZE, 0x21);
      two.fill(page(n), PAGE_SIZE, 0x21);
    }
    scanner.register('one', one, { domain: 'd' });
    scanner.register('two', two, { domain: 'd' });
    fullScans(3);
    const before = scanner.stats();
    expect(before.pages_sharing).toBe(4); // six pages, three per frame
    const saved = JSON.parse(JSON.stringify(scanner.save())) as unknown;

    const copy = new KsmScanner({ clock: new ManualClock(), seed: 99 });
    copy.register('one', one, { domain: 'd' });
    copy.register('two', two, { domain: 'd' });
    copy.restore(saved);
    expect(copy.knobs).toEqual(scanner.knobs);
    const after = copy.stats();
    expect(after).toMatchObject({ pages_scanned: before.pages_scanned, full_scans: before.full_scans, pages_shared: 2, pages_sharing: 4 });
    expect(after.pages_sharing).toBe(pool.stats().pagesMapped - pool.stats().framesHeld);
    expect(copy.save()).toEqual(saved);
  });

  it('rejects invalid saved states, changing nothing', () => {
    const { scanner } = setup({ pages_to_scan: 42 });
    const good = scanner.save();
    const bad: unknown[] = [
      null,
      { ...good, version: 2 },
      { ...good, knobs: undefined },
      { ...good, knobs: { ...good.knobs, run: 3 } },
      { ...good, knobs: { ...good.knobs, pages_to_scan: -1 } },
      { ...good, knobs: { ...good.knobs, max_page_sharing: 1 } },
      { ...good, knobs: { ...good.knobs, smart_scan: 'yes' } },
      { ...good, knobs: { ...good.knobs, advisor_mode: 'auto' } },
      { ...good, knobs: { ...good.knobs, advisor_min_pages_to_scan: 10, advisor_max_pages_to_scan: 5 } },
      { ...good, counters: { ...good.counters, full_scans: 1.5 } },
      { ...good, counters: { pages_scanned: 1 } },
    ];
    for (const state of bad) expect(() => scanner.restore(state), JSON.stringify(state)).toThrow(expect.objectContaining({ code: 'STATE_INVALID' }));
    expect(scanner.knobs.pages_to_scan).toBe(42);
  });
});

describe('the README example', () => {
  it('runs as written', () => {
    const pool = new FramePool();
    const web1 = new GuestRam({ size: 1 << 20, pool });
    const web2 = new GuestRam({ size: 1 << 20, pool });
    const other = new GuestRam({ size: 1 << 20, pool });
    for (const ram of [web1, web2, other]) ram.fill(a(0x4000), PAGE_SIZE, 0xaa);
    const clock = new ManualClock();
    const ksm = new KsmScanner({ clock, knobs: { run: 1, pages_to_scan: 1000 } });
    ksm.register('web1', web1, { domain: 'tenant-a' });
    ksm.register('web2', web2, { domain: 'tenant-a' });
    ksm.register('other', other);
    ksm.start();
    clock.advance(40e6);
    expect(web1.frameIdOf(a(0x4000))).toBe(web2.frameIdOf(a(0x4000)));
    expect(pool.stats().framesHeld).toBe(2);
    const { pages_shared, pages_sharing } = ksm.stats();
    expect([pages_shared, pages_sharing]).toEqual([1, 1]);
    web2.writeU8(a(0x4000), 1);
    expect(web1.readU8(a(0x4000))).toBe(0xaa);
    ksm.setKnobs({ run: 2 });
    expect(pool.stats().framesShared).toBe(0);
  });
});
