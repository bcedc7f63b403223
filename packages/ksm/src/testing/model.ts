import { PAGE_SIZE, guestAddress } from '@tsvirt/interfaces';
import { ManualClock } from '@tsvirt/interfaces/testing';
import { FramePool, GuestRam } from '@tsvirt/memory';
import fc from 'fast-check';
import type { KsmEvent } from '../scanner.js';
import { KsmScanner } from '../scanner.js';

/** Guests 0 and 1 share tenant 'a'; guests 2 and 3 name no domain, so each keeps to itself; guest 3 starts opted out. */
const GUESTS = 4;
const PAGES = 6;
const SIZE = PAGES * PAGE_SIZE;
const DOMAINS: ReadonlyArray<string | undefined> = ['a', 'a', undefined, undefined];
const domain = fc.constantFrom<string | undefined>('a', 'b', undefined);

export type KsmModelCommand =
  | { kind: 'fill'; pages: Array<[guest: number, page: number]>; value: number }
  | { kind: 'poke'; guest: number; address: number; value: number }
  | { kind: 'discard'; guest: number; page: number }
  | { kind: 'tick'; count: number }
  | { kind: 'pages-to-scan'; value: number }
  | { kind: 'zero-pages'; on: boolean }
  | { kind: 'smart-scan'; on: boolean }
  | { kind: 'pause'; on: boolean }
  | { kind: 'unmerge-all' }
  | { kind: 'opt'; guest: number; mergeable: boolean }
  | { kind: 'save-restore' }
  | { kind: 'move'; guest: number; domain: string | undefined }
  | { kind: 'reattach'; guest: number; restoreRam: boolean }
  | { kind: 'hostile'; value: number; target: 'scanned' | 'other' };

/** Random interleavings of guest writes, scans, knob changes, unmerges and discards over four 6-page guests. */
export function ksmModelCommands(maxLength = 60): fc.Arbitrary<KsmModelCommand[]> {
  const guest = fc.integer({ min: 0, max: GUESTS - 1 });
  const page = fc.integer({ min: 0, max: PAGES - 1 });
  // Few distinct values, so identical pages (merge candidates) are the rule.
  const value = fc.constantFrom(0, 0, 1, 2, 3);
  const command: fc.Arbitrary<KsmModelCommand> = fc.oneof(
    // One value written to several pages at once: identical pages within and across guests.
    { weight: 8, arbitrary: fc.record({ kind: fc.constant('fill' as const), pages: fc.array(fc.tuple(guest, page), { minLength: 1, maxLength: 8 }), value }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('poke' as const), guest, address: fc.integer({ min: 0, max: SIZE - 1 }), value: fc.integer({ min: 0, max: 255 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('discard' as const), guest, page }) },
    { weight: 10, arbitrary: fc.record({ kind: fc.constant('tick' as const), count: fc.integer({ min: 1, max: 8 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('pages-to-scan' as const), value: fc.integer({ min: 1, max: 30 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('zero-pages' as const), on: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('smart-scan' as const), on: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('pause' as const), on: fc.boolean() }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'unmerge-all' as const }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('opt' as const), guest, mergeable: fc.boolean() }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'save-restore' as const }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('move' as const), guest, domain }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('reattach' as const), guest, restoreRam: fc.boolean() }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('hostile' as const), value: fc.integer({ min: 0, max: 255 }), target: fc.constantFrom('scanned' as const, 'other' as const) }) },
  );
  return fc.array(command, { minLength: Math.min(20, maxLength), maxLength, size: 'max' });
}

export interface KsmModelOptions {
  /** `max_page_sharing` for the whole run (2 makes chains common). */
  readonly maxPageSharing: number;
  readonly seed: number;
}

/**
 * Runs `commands` against real guest memories and a plain byte-array model
 * of what each guest wrote; throws at the first step where a guest reads
 * something else, where the scanner's counters disagree with the frame
 * pool's, or where a frame is shared across a domain boundary, by an
 * opted-out guest, or more than `max_page_sharing` times.
 *
 * A `hostile` command arms a write that happens at the next byte comparison
 * the scanner starts, to one of the two pages compared: the page changes
 * after its checksum was taken and before the merge.
 */
export function runKsmModel(commands: readonly KsmModelCommand[], options: KsmModelOptions): KsmModelReport {
  const report = { mostPagesSharing: 0, crossGuestShares: 0, chains: 0, zeroPages: 0, hostileWrites: 0 };
  const pool = new FramePool();
  const rams = Array.from({ length: GUESTS }, () => new GuestRam({ size: SIZE, pool }));
  const expected = rams.map(() => new Uint8Array(SIZE));
  const mergeable = [true, true, true, false];
  const domains = [...DOMAINS];
  let armed: { value: number; target: 'scanned' | 'other' } | undefined;
  const write = (guest: number, address: number, value: number): void => {
    rams[guest]!.writeU8(guestAddress(address), value);
    expected[guest]![address] = value;
  };
  const observer = (event: KsmEvent): void => {
    if (event.kind !== 'compare' || armed === undefined) return;
    const [id, page] = armed.target === 'scanned' ? [event.guest, event.page] : [event.withGuest, event.withPage];
    write(Number(id.slice(1)), page * PAGE_SIZE + (armed.value % PAGE_SIZE), armed.value);
    armed = undefined;
    report.hostileWrites++;
  };
  const clock = new ManualClock();
  const scanner = new KsmScanner({ clock, seed: options.seed, observer, knobs: { run: 1, pages_to_scan: 10, max_page_sharing: options.maxPageSharing } });
  rams.forEach((ram, index) => scanner.register(`g${index}`, ram, { domain: domains[index], mergeable: mergeable[index] }));

  const check = (condition: boolean, message: () => string): void => {
    if (!condition) throw new Error(message());
  };

  commands.forEach((command, step) => {
    const where = `step ${step} ${JSON.stringify(command)}`;
    switch (command.kind) {
      case 'fill':
        for (const [guest, page] of command.pages) {
          rams[guest]!.fill(guestAddress(page * PAGE_SIZE), PAGE_SIZE, command.value);
          expected[guest]!.fill(command.value, page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
        }
        break;
      case 'poke':
        write(command.guest, command.address, command.value);
        break;
      case 'discard':
        rams[command.guest]!.discard(guestAddress(command.page * PAGE_SIZE), PAGE_SIZE);
        expected[command.guest]!.fill(0, command.page * PAGE_SIZE, (command.page + 1) * PAGE_SIZE);
        break;
      case 'tick':
        for (let i = 0; i < command.count; i++) {
          clock.advance(20e6);
          scanner.tick();
        }
        break;
      case 'pages-to-scan':
        scanner.setKnobs({ pages_to_scan: command.value });
        break;
      case 'zero-pages':
        scanner.setKnobs({ use_zero_pages: command.on });
        break;
      case 'smart-scan':
        scanner.setKnobs({ smart_scan: command.on });
        break;
      case 'pause':
        scanner.setKnobs({ run: command.on ? 0 : 1 });
        break;
      case 'unmerge-all':
        scanner.setKnobs({ run: 2 });
        check(pool.stats().framesShared === 0, () => `${where}: frames still shared after run=2`);
        scanner.setKnobs({ run: 1 });
        break;
      case 'opt':
        scanner.configure(`g${command.guest}`, { domain: domains[command.guest], mergeable: command.mergeable });
        mergeable[command.guest] = command.mergeable;
        break;
      case 'move':
        scanner.configure(`g${command.guest}`, { domain: command.domain, mergeable: mergeable[command.guest] });
        domains[command.guest] = command.domain;
        break;
      case 'reattach': {
        // A guest leaves and comes back, optionally with its memory restored from a snapshot taken before.
        const ram = rams[command.guest]!;
        const saved = JSON.parse(JSON.stringify(ram.save())) as unknown;
        scanner.unregister(`g${command.guest}`);
        if (command.restoreRam) ram.restore(saved);
        scanner.register(`g${command.guest}`, ram, { domain: domains[command.guest], mergeable: mergeable[command.guest] });
        break;
      }
      case 'save-restore': {
        const saved = JSON.parse(JSON.stringify(scanner.save())) as unknown;
        const before = scanner.stats();
        scanner.restore(saved);
        const after = scanner.stats();
        check(after.pages_scanned === before.pages_scanned && after.full_scans === before.full_scans, () => `${where}: counters not restored`);
        check(after.pages_sharing === before.pages_sharing && after.pages_shared === before.pages_shared, () => `${where}: merged frames not rebuilt`);
        break;
      }
      case 'hostile':
        armed = { value: command.value, target: command.target };
        break;
    }

    // Every guest reads exactly what it wrote.
    rams.forEach((ram, index) => {
      const all = new Uint8Array(SIZE);
      ram.read(guestAddress(0), all);
      if (Buffer.compare(all, expected[index]!) !== 0) {
        const at = all.findIndex((byte, i) => byte !== expected[index]![i]);
        throw new Error(`${where}: guest ${index} reads ${all[at]} at 0x${at.toString(16)}, wrote ${expected[index]![at]}`);
      }
    });

    // Counters agree with the frame pool, and sharing respects domains, opt-outs and max_page_sharing.
    const stats = scanner.stats();
    const poolStats = pool.stats();
    check(stats.pages_sharing === poolStats.pagesMapped - poolStats.framesHeld, () => `${where}: pages_sharing ${stats.pages_sharing}, pool saves ${poolStats.pagesMapped - poolStats.framesHeld} frames`);
    check(stats.pages_shared === poolStats.framesShared, () => `${where}: pages_shared ${stats.pages_shared}, pool shares ${poolStats.framesShared} frames`);
    const mapped = rams.reduce((sum, ram) => sum + ram.stats().pagesMapped, 0);
    check(mapped === poolStats.pagesMapped, () => `${where}: memories map ${mapped} pages, pool ${poolStats.pagesMapped}`);
    const owners = new Map<number, number[]>();
    let frameless = 0;
    rams.forEach((ram, index) => {
      for (let page = 0; page < PAGES; page++) {
        const frame = ram.frameIdOf(guestAddress(page * PAGE_SIZE));
        if (frame < 0) {
          frameless++;
          continue;
        }
        owners.set(frame, [...(owners.get(frame) ?? []), index]);
      }
      const guestStats = stats.guests.find((entry) => entry.id === `g${index}`)!;
      check(guestStats.ksm_merging_pages === ram.stats().pagesShared, () => `${where}: guest ${index} ksm_merging_pages ${guestStats.ksm_merging_pages}, memory shares ${ram.stats().pagesShared}`);
    });
    for (const [frame, guests] of owners) {
      if (guests.length < 2) continue;
      check(guests.length <= options.maxPageSharing, () => `${where}: frame ${frame} mapped ${guests.length} times`);
      for (const guest of guests) {
        check(mergeable[guest]!, () => `${where}: opted-out guest ${guest} shares frame ${frame}`);
        check(guests.every((other) => other === guest || (domains[other] !== undefined && domains[other] === domains[guest])), () => `${where}: frame ${frame} shared across domains by guests ${guests}`);
      }
    }
    check(stats.ksm_zero_pages <= frameless, () => `${where}: ${stats.ksm_zero_pages} zero pages but ${frameless} frameless pages`);
    report.mostPagesSharing = Math.max(report.mostPagesSharing, stats.pages_sharing);
    report.chains = Math.max(report.chains, stats.stable_node_chains);
    report.zeroPages = Math.max(report.zeroPages, stats.ksm_zero_pages);
    for (const guests of owners.values()) if (new Set(guests).size > 1) report.crossGuestShares++;
  });
  return report;
}

/** What a run exercised, so a test can show the commands reach merges, chains, zero pages and hostile writes. */
export interface KsmModelReport {
  mostPagesSharing: number;
  /** Steps × frames shared by two or more guests. */
  crossGuestShares: number;
  chains: number;
  zeroPages: number;
  hostileWrites: number;
}
