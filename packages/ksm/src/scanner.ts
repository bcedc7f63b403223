import { PAGE_SIZE, ignoreEvents, type Clock, type Observer, type Timer } from '@tsvirt/interfaces';
import type { FramePool, GuestRam } from '@tsvirt/memory';
import { advisePagesToScan } from './advisor.js';
import { PAGE_WORDS, pageChecksum } from './checksum.js';
import { KsmError } from './errors.js';
import { DomainIndex, type PageRef, type StableNode } from './indexes.js';
import { DEFAULT_KNOBS, applyKnobs, type KsmKnobs } from './knobs.js';
import { readKsmState, type KsmState } from './state.js';
import { PageState, TrackedGuest, domainKeyOf, type KsmGuestOptions } from './tracked-guest.js';

/** What the scanner reports as it works; the default observer drops everything. */
export type KsmEvent =
  /** About to compare the bytes of two pages (the checksums matched). */
  | { readonly kind: 'compare'; readonly guest: string; readonly page: number; readonly withGuest: string; readonly withPage: number }
  /** `page` now maps the frame of `withPage`. */
  | { readonly kind: 'merged'; readonly guest: string; readonly page: number; readonly withGuest: string; readonly withPage: number }
  /** An all-zero page gave its frame back. */
  | { readonly kind: 'zero-page'; readonly guest: string; readonly page: number }
  | { readonly kind: 'full-scan'; readonly fullScans: number; readonly pagesToScan: number };

export interface KsmScannerOptions {
  /** Drives `start()` and times full scans for the advisor. */
  readonly clock: Clock;
  readonly knobs?: Partial<KsmKnobs>;
  /**
   * CPU time in milliseconds, read before and after each tick to measure its
   * cost (for the advisor). Default `performance.now()`: the scanner runs on
   * the thread that calls `tick`, so its wall time inside a tick is CPU time.
   */
  readonly cpuTime?: () => number;
  /** Key of the page checksum; random by default so guests cannot aim collisions at it. */
  readonly seed?: number;
  readonly observer?: Observer<KsmEvent>;
}

/** What one tick did. */
export interface TickResult {
  pagesScanned: number;
  pagesSkipped: number;
  pagesMerged: number;
  fullScans: number;
}

/** Counters as Linux names them in /sys/kernel/mm/ksm, exact when read. */
export interface KsmStats {
  /** Merged frames in use (each mapped at two or more guest pages). */
  readonly pages_shared: number;
  /** Guest pages mapping a merged frame beyond the first: the frames saved. */
  readonly pages_sharing: number;
  /** Pages checked, unique, and kept as merge candidates (as of their last scan). */
  readonly pages_unshared: number;
  /** Pages changing too fast to be indexed (as of their last scan). */
  readonly pages_volatile: number;
  readonly pages_scanned: number;
  /** Pages smart scan passed over. */
  readonly pages_skipped: number;
  readonly full_scans: number;
  /** All-zero pages whose frame was given back and that are still frameless. */
  readonly ksm_zero_pages: number;
  /** Bytes saved minus the scanner's bookkeeping; negative when merging does not pay. */
  readonly general_profit: number;
  /** Contents split over several merged frames by `max_page_sharing`, and the frames in such chains. */
  readonly stable_node_chains: number;
  readonly stable_node_dups: number;
  readonly guests: readonly KsmGuestStats[];
}

/** Per-guest figures, after Linux's /proc/<pid>/ksm_stat. */
export interface KsmGuestStats {
  readonly id: string;
  readonly domain: string | undefined;
  readonly mergeable: boolean;
  /** Pages the scanner keeps a record of. */
  readonly ksm_rmap_items: number;
  /** Pages mapping a merged frame. */
  readonly ksm_merging_pages: number;
  readonly ksm_zero_pages: number;
  /** `(ksm_merging_pages + ksm_zero_pages) * 4096` minus this guest's bookkeeping bytes. */
  readonly ksm_process_profit: number;
  readonly pages_scanned: number;
}

/** Host bytes the indexes cost per entry and per node: estimates, for general_profit. */
const REF_BYTES = 32;
const NODE_BYTES = 96;
/** Frameless pages are skipped almost for free, but a tick still stops after this many visits per page of budget. */
const VISITS_PER_PAGE = 256;
/** Most stable frames one lookup tries, so a chain of full frames or crafted collisions cannot stall a tick. */
const STABLE_PROBES = 8;

/**
 * Same-page merging across guests, after Linux's KSM (mm/ksm.c). Register
 * guest memories that share one {@link FramePool}; each `tick()` scans at
 * most `pages_to_scan` pages, merging identical ones into one shared,
 * copy-on-write frame so the host really holds fewer frames.
 *
 * Per page: a page already merged is left alone; otherwise its checksum is
 * looked up among merged frames (stable index) and merged on a full byte
 * match; a page whose checksum changed since its previous scan is volatile
 * and skipped; an all-zero page gives its frame back (`use_zero_pages`);
 * otherwise it is looked up among this full scan's unchanged pages
 * (unstable index) and merged with a matching one, creating a merged frame,
 * or indexed itself. The memory package compares the bytes in every merge,
 * so pages that differ are never merged, however they changed meanwhile.
 */
export class KsmScanner {
  private currentKnobs: KsmKnobs;
  private readonly clock: Clock;
  private readonly cpuTime: () => number;
  private readonly seed: number;
  private readonly zeroKey: number;
  private readonly observer: Observer<KsmEvent>;
  private readonly guests: TrackedGuest[] = [];
  private readonly byId = new Map<string, TrackedGuest>();
  private pool: FramePool | undefined;
  private readonly domains = new Map<string, DomainIndex>();
  private readonly nodes = new Map<number, StableNode>();
  private readonly nodeByFrame = new Map<number, StableNode>();
  private nextNodeId = 0;
  private scanned = 0;
  private skipped = 0;
  private fullScans = 0;
  // The cursor: guest index, range index inside that guest, page number.
  private cursorGuest = 0;
  private cursorRange = 0;
  private cursorPage = -1;
  private passActive = false;
  private passStart = 0;
  private passCpu = 0;
  private passPages = 0;
  private timer: Timer | undefined;
  /** 32-bit views of the pool's slabs, made once per slab. */
  private readonly wordViews = new WeakMap<ArrayBufferLike, Uint32Array>();

  constructor(options: KsmScannerOptions) {
    this.clock = options.clock;
    this.cpuTime = options.cpuTime ?? (() => performance.now());
    this.seed = (options.seed ?? Math.floor(Math.random() * 2 ** 32)) | 0;
    this.zeroKey = pageChecksum(new Uint32Array(PAGE_WORDS), 0, this.seed);
    this.observer = options.observer ?? ignoreEvents;
    this.currentKnobs = DEFAULT_KNOBS;
    this.setKnobs(options.knobs ?? {});
  }

  // ---- Guests ----

  /**
   * Adds a guest memory. All guests must share one frame pool. Sharing the
   * memory already has (a restored snapshot) is adopted into the index.
   */
  register(id: string, ram: GuestRam, options: KsmGuestOptions = {}): void {
    if (typeof id !== 'string' || id.length === 0) throw new KsmError('KSM_GUEST', 'a guest id must be a non-empty string');
    if (this.byId.has(id)) throw new KsmError('KSM_GUEST', `guest ${JSON.stringify(id)} is already registered`);
    if (this.pool !== undefined && ram.pool !== this.pool) {
      throw new KsmError('KSM_POOL', `guest ${JSON.stringify(id)} uses a different frame pool; merged guests must share one`);
    }
    this.pool = ram.pool;
    const guest = new TrackedGuest(id, ram, options);
    this.guests.push(guest);
    this.byId.set(id, guest);
    if (guest.mergeable) this.adoptSharing(guest);
  }

  /** Removes a guest, first giving each of its merged pages a private copy. */
  unregister(id: string): void {
    const guest = this.guest(id);
    this.unmergeGuest(guest);
    guest.registered = false;
    const index = this.guests.indexOf(guest);
    this.guests.splice(index, 1);
    this.byId.delete(id);
    if (index < this.cursorGuest) this.cursorGuest--;
    else if (index === this.cursorGuest) this.resetCursorTo(index);
    if (this.guests.length === 0) {
      // The next guest may bring another pool, whose frame ids mean other frames.
      this.forgetAll();
      this.pool = undefined;
    }
  }

  /**
   * Changes a guest's merge domain or opts it in or out. Leaving a domain or
   * opting out unmerges the guest's pages first, so nothing stays shared
   * across the new boundary.
   */
  configure(id: string, options: KsmGuestOptions): void {
    const guest = this.guest(id);
    const domainKey = domainKeyOf(id, options.domain);
    const mergeable = options.mergeable ?? true;
    if (domainKey !== guest.domainKey || !mergeable) this.unmergeGuest(guest);
    guest.domain = options.domain;
    guest.domainKey = domainKey;
    guest.mergeable = mergeable;
  }

  get guestIds(): string[] {
    return this.guests.map((guest) => guest.id);
  }

  // ---- Knobs ----

  get knobs(): KsmKnobs {
    return this.currentKnobs;
  }

  /** Validates every change, then applies them together; `run: 2` unmerges everything. */
  setKnobs(changes: Partial<KsmKnobs>): void {
    const next = applyKnobs(this.currentKnobs, changes);
    // Turning the advisor on starts it from its floor, as Linux does.
    if (next.advisor_mode === 'scan-time' && this.currentKnobs.advisor_mode !== 'scan-time') {
      this.currentKnobs = { ...next, pages_to_scan: next.advisor_min_pages_to_scan };
    } else {
      this.currentKnobs = next;
    }
    if (changes.run === 2) this.unmergeAll();
  }

  // ---- Scanning ----

  /** Pages scanned so far (cheap; `stats()` walks every page). */
  get pagesScanned(): number {
    return this.scanned;
  }

  /**
   * Scans up to `pages_to_scan` pages if `run` is 1, stopping early at the
   * end of a full scan or after `256 * pages_to_scan` pages visited (pages
   * without a frame cost a visit, not a scan).
   */
  tick(): TickResult {
    const result: TickResult = { pagesScanned: 0, pagesSkipped: 0, pagesMerged: 0, fullScans: 0 };
    const budget = this.currentKnobs.pages_to_scan;
    if (this.currentKnobs.run !== 1 || budget === 0) return result;
    const cpuStart = this.cpuTime();
    const maxVisits = budget * VISITS_PER_PAGE;
    let visits = 0;
    while (result.pagesScanned < budget && visits < maxVisits) {
      if (!this.passActive) {
        if (!this.guests.some((guest) => guest.mergeable)) break;
        this.beginPass();
      }
      const guest = this.guests[this.cursorGuest];
      if (guest !== undefined && (!guest.mergeable || this.cursorPage < 0)) {
        this.advanceGuest();
      } else if (guest !== undefined) {
        const page = this.cursorPage;
        this.advancePage(guest);
        visits++;
        this.scanPage(guest, page, result);
      }
      if (this.cursorGuest >= this.guests.length) {
        // A tick ends with its full scan, so each full scan's unstable index is built by whole ticks.
        this.endPass(result);
        break;
      }
    }
    const cpu = this.cpuTime() - cpuStart;
    this.passCpu += cpu > 0 ? cpu : 0;
    return result;
  }

  /** Ticks every `sleep_millisecs` (at least 1 ms) on the injected clock until `stop()`. */
  start(): void {
    if (this.timer !== undefined) return;
    const timer = this.clock.createTimer(() => {
      this.tick();
      if (this.timer === timer) timer.arm(this.clock.now() + this.periodNs());
    });
    this.timer = timer;
    timer.arm(this.clock.now() + this.periodNs());
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  get running(): boolean {
    return this.timer !== undefined;
  }

  // ---- Counters ----

  stats(): KsmStats {
    let shared = 0;
    let sharing = 0;
    let references = 0;
    const merging = new Map<TrackedGuest, number>();
    const liveByKey = new Map<string, number>();
    for (const node of this.nodes.values()) {
      references += node.members.length;
      const valid = this.validMembers(node);
      if (valid.length < 2) continue;
      shared++;
      sharing += valid.length - 1;
      for (const ref of valid) merging.set(ref.guest, (merging.get(ref.guest) ?? 0) + 1);
      const chainKey = `${node.domain}\u0000${node.key}`;
      liveByKey.set(chainKey, (liveByKey.get(chainKey) ?? 0) + 1);
    }
    let chains = 0;
    let dups = 0;
    for (const count of liveByKey.values()) {
      if (count < 2) continue;
      chains++;
      dups += count;
    }
    let unshared = 0;
    let volatile = 0;
    let zero = 0;
    let tracking = 0;
    const guests = this.guests.map((guest): KsmGuestStats => {
      let items = 0;
      let guestZero = 0;
      for (const [first, end] of guest.ranges) {
        for (let page = first; page < end; page++) {
          const state = guest.state[page]!;
          if (state === PageState.Unseen) continue;
          items++;
          if (state === PageState.Unshared) unshared++;
          else if (state === PageState.Volatile) volatile++;
          else if (state === PageState.Zero && guest.frameOf(page) < 0) guestZero++;
        }
      }
      zero += guestZero;
      tracking += guest.trackingBytes;
      const mergingPages = merging.get(guest) ?? 0;
      return {
        id: guest.id,
        domain: guest.domain,
        mergeable: guest.mergeable,
        ksm_rmap_items: items,
        ksm_merging_pages: mergingPages,
        ksm_zero_pages: guestZero,
        ksm_process_profit: (mergingPages + guestZero) * PAGE_SIZE - guest.trackingBytes,
        pages_scanned: guest.pagesScanned,
      };
    });
    let unstableEntries = 0;
    for (const domain of this.domains.values()) unstableEntries += domain.unstableEntries;
    const bookkeeping = tracking + (references + unstableEntries) * REF_BYTES + this.nodes.size * NODE_BYTES;
    return {
      pages_shared: shared,
      pages_sharing: sharing,
      pages_unshared: unshared,
      pages_volatile: volatile,
      pages_scanned: this.scanned,
      pages_skipped: this.skipped,
      full_scans: this.fullScans,
      ksm_zero_pages: zero,
      general_profit: (sharing + zero) * PAGE_SIZE - bookkeeping,
      stable_node_chains: chains,
      stable_node_dups: dups,
      guests,
    };
  }

  // ---- Save and restore ----

  /** Knobs and counters; the indexes are rebuilt from the memories on restore. */
  save(): KsmState {
    return { version: 1, knobs: { ...this.currentKnobs }, counters: { pages_scanned: this.scanned, pages_skipped: this.skipped, full_scans: this.fullScans } };
  }

  /**
   * Validates `state` completely (throwing StateError and changing nothing
   * on any bad field), then takes its knobs and counters, forgets what the
   * scanner learnt and rebuilds the index of merged frames from the frames
   * the registered memories share now.
   */
  restore(state: unknown): void {
    const { knobs, counters } = readKsmState(state);
    this.currentKnobs = knobs;
    this.scanned = counters.pages_scanned;
    this.skipped = counters.pages_skipped;
    this.fullScans = counters.full_scans;
    this.forgetAll();
    for (const guest of this.guests) if (guest.mergeable) this.adoptSharing(guest);
  }

  // ---- Internals: one page ----

  private scanPage(guest: TrackedGuest, page: number, result: TickResult): void {
    const pool = this.pool!;
    const frame = guest.frameOf(page);
    if (frame < 0) {
      // Never written, discarded, or given back as a zero page: nothing to merge.
      const state = guest.state[page]!;
      if (state !== PageState.Zero && state !== PageState.Unseen) this.forgetPage(guest, page);
      return;
    }
    let state = guest.state[page]!;
    if (state === PageState.Stable) {
      const node = this.nodes.get(guest.node[page]!);
      if (node !== undefined && node.frame === frame && this.nodeAlive(node)) {
        this.countScanned(guest, result);
        guest.age[page] = 0;
        return;
      }
      // It broke copy-on-write (or its frame's other mappings all did): an ordinary page again.
      guest.node[page] = -1;
      guest.state[page] = state = PageState.Volatile;
    } else if (state === PageState.Zero) {
      guest.state[page] = state = PageState.Unseen;
    }
    const shared = pool.referenceCount(frame) >= 2;
    if (!shared && this.currentKnobs.smart_scan && this.shouldSkip(guest, page)) {
      this.skipped++;
      result.pagesSkipped++;
      return;
    }
    this.countScanned(guest, result);
    const key = this.checksumOf(guest, page);
    if (shared) {
      this.adopt(guest, page, frame, key);
      return;
    }
    const domain = this.domainIndex(guest.domainKey);
    if (this.mergeIntoStable(domain, guest, page, key)) {
      result.pagesMerged++;
      return;
    }
    if (state === PageState.Unseen || guest.checksum[page] !== key) {
      guest.checksum[page] = key;
      guest.state[page] = PageState.Volatile;
      return;
    }
    if (this.currentKnobs.use_zero_pages && key === this.zeroKey && guest.ram.releaseIfZero(guest.address(page))) {
      guest.state[page] = PageState.Zero;
      guest.age[page] = 0;
      result.pagesMerged++;
      this.observer({ kind: 'zero-page', guest: guest.id, page });
      return;
    }
    if (this.mergeWithCandidate(domain, guest, page, key)) {
      result.pagesMerged++;
      return;
    }
    guest.state[page] = PageState.Unshared;
    domain.addCandidate(key, { guest, page });
  }

  /** The checksum of a page that has a frame, read in place through a word view of its slab. */
  private checksumOf(guest: TrackedGuest, page: number): number {
    const bytes = guest.ram.pageBytes(guest.address(page))!;
    let words = this.wordViews.get(bytes.buffer);
    if (words === undefined) {
      words = new Uint32Array(bytes.buffer, 0, bytes.buffer.byteLength >>> 2);
      this.wordViews.set(bytes.buffer, words);
    }
    return pageChecksum(words, bytes.byteOffset >>> 2, this.seed);
  }

  private countScanned(guest: TrackedGuest, result: TickResult): void {
    this.scanned++;
    this.passPages++;
    guest.pagesScanned++;
    result.pagesScanned++;
  }

  /** Smart scan: a page that keeps failing to merge is looked at less and less often (skip 1, 2, 4, then 8 scans). */
  private shouldSkip(guest: TrackedGuest, page: number): boolean {
    const age = guest.age[page]!;
    if (age < 255) guest.age[page] = age + 1;
    if (age < 2) return false;
    const skips = guest.skips[page]!;
    if (skips > 0) {
      guest.skips[page] = skips - 1;
      return true;
    }
    guest.skips[page] = age <= 3 ? 1 : age <= 5 ? 2 : age <= 8 ? 4 : 8;
    return false;
  }

  private mergeIntoStable(domain: DomainIndex, guest: TrackedGuest, page: number, key: number): boolean {
    const bucket = domain.stable.get(key);
    if (bucket === undefined) return false;
    const pool = this.pool!;
    let probes = 0;
    // Newest first: the latest frame of a chain is the one most likely to have room.
    for (let index = bucket.length - 1; index >= 0 && probes < STABLE_PROBES; index--) {
      const node = bucket[index]!;
      probes++;
      if (!this.nodeAlive(node)) continue;
      if (pool.referenceCount(node.frame) >= this.currentKnobs.max_page_sharing) continue;
      const source = this.sourceOf(node)!;
      this.observer({ kind: 'compare', guest: guest.id, page, withGuest: source.guest.id, withPage: source.page });
      if (guest.ram.mergeFrom(guest.address(page), source.guest.ram, source.guest.address(source.page))) {
        this.recordMerge(guest, page, source.guest, source.page, key);
        this.observer({ kind: 'merged', guest: guest.id, page, withGuest: source.guest.id, withPage: source.page });
        return true;
      }
    }
    return false;
  }

  private mergeWithCandidate(domain: DomainIndex, guest: TrackedGuest, page: number, key: number): boolean {
    const bucket = domain.unstable.get(key);
    if (bucket === undefined) return false;
    const pool = this.pool!;
    for (let index = 0; index < bucket.length; ) {
      const candidate = bucket[index]!;
      const other = candidate.guest;
      const frame = other.frameOf(candidate.page);
      const usable =
        other.registered &&
        other.mergeable &&
        other.domainKey === guest.domainKey &&
        other.state[candidate.page] === PageState.Unshared &&
        other.checksum[candidate.page] === key &&
        frame >= 0 &&
        pool.referenceCount(frame) === 1 &&
        !(other === guest && candidate.page === page);
      if (!usable) {
        domain.removeCandidate(key, bucket, index);
        continue;
      }
      this.observer({ kind: 'compare', guest: guest.id, page, withGuest: other.id, withPage: candidate.page });
      if (guest.ram.mergeFrom(guest.address(page), other.ram, other.address(candidate.page))) {
        domain.removeCandidate(key, bucket, index);
        this.recordMerge(guest, page, other, candidate.page, key);
        this.observer({ kind: 'merged', guest: guest.id, page, withGuest: other.id, withPage: candidate.page });
        return true;
      }
      index++;
    }
    return false;
  }

  /** A page whose frame is already shared (a restored snapshot): record the sharing, within its domain only. */
  private adopt(guest: TrackedGuest, page: number, frame: number, key: number): void {
    let node = this.nodeByFrame.get(frame);
    // A shared frame's bytes cannot change, so a node with another checksum is left from a reused frame.
    if (node !== undefined && node.key !== key) {
      this.dissolve(node);
      node = undefined;
    }
    if (node !== undefined && node.domain !== guest.domainKey) {
      // Shared across a domain boundary by someone else: the boundary wins.
      guest.ram.unshare(guest.address(page));
      guest.checksum[page] = key;
      guest.state[page] = PageState.Volatile;
      return;
    }
    node ??= this.createNode(frame, key, guest.domainKey);
    this.join(node, guest, page);
  }

  private adoptSharing(guest: TrackedGuest): void {
    const pool = this.pool!;
    for (const [first, end] of guest.ranges) {
      for (let page = first; page < end; page++) {
        const frame = guest.frameOf(page);
        if (frame < 0 || pool.referenceCount(frame) < 2 || guest.node[page] !== -1) continue;
        this.adopt(guest, page, frame, this.checksumOf(guest, page));
      }
    }
  }

  // ---- Internals: stable nodes ----

  /**
   * Records a merge the memory just made: `page` now maps the frame of
   * `otherPage`. The node is looked up by the frame actually mapped, not the
   * one expected, so a page changed under the scanner cannot desynchronise
   * the index from the memory.
   */
  private recordMerge(guest: TrackedGuest, page: number, other: TrackedGuest, otherPage: number, key: number): void {
    const frame = guest.frameOf(page);
    let node = this.nodeByFrame.get(frame);
    if (node === undefined || node.key !== key || node.domain !== guest.domainKey || this.nodes.get(node.id) !== node) {
      node = this.createNode(frame, key, guest.domainKey);
    }
    this.join(node, other, otherPage);
    this.join(node, guest, page);
  }

  private createNode(frame: number, key: number, domain: string): StableNode {
    // A node left for a frame that was freed and reused since: its pages mapped other frames long ago.
    const stale = this.nodeByFrame.get(frame);
    if (stale !== undefined) this.dissolve(stale);
    const node: StableNode = { id: this.nextNodeId++, frame, key, domain, members: [], slot: 0 };
    if (this.nextNodeId > 0x7fff_ffff) this.nextNodeId = 0;
    this.nodes.set(node.id, node);
    this.nodeByFrame.set(frame, node);
    this.domainIndex(domain).addNode(node);
    return node;
  }

  private join(node: StableNode, guest: TrackedGuest, page: number): void {
    if (guest.node[page] !== node.id) node.members.push({ guest, page });
    guest.node[page] = node.id;
    guest.state[page] = PageState.Stable;
    guest.checksum[page] = node.key;
    guest.age[page] = 0;
    guest.skips[page] = 0;
    // Members that broke copy-on-write linger in the list; compact once they dominate it.
    if (node.members.length > 2 * this.pool!.referenceCount(node.frame) + 8) node.members = this.validMembers(node);
  }

  private isMember(node: StableNode, ref: PageRef): boolean {
    return ref.guest.registered && ref.guest.node[ref.page] === node.id && ref.guest.frameOf(ref.page) === node.frame;
  }

  /** The members still mapping the node's frame, each once. */
  private validMembers(node: StableNode): PageRef[] {
    const seen = new Set<string>();
    const valid: PageRef[] = [];
    for (const ref of node.members) {
      if (!this.isMember(node, ref)) continue;
      const id = `${ref.guest.id}\u0000${ref.page}`;
      if (seen.has(id)) continue;
      seen.add(id);
      valid.push(ref);
    }
    return valid;
  }

  /** A member to merge from, dropping stale ones ahead of it. */
  private sourceOf(node: StableNode): PageRef | undefined {
    let index = 0;
    while (index < node.members.length && !this.isMember(node, node.members[index]!)) index++;
    if (index > 0) node.members.splice(0, index);
    return node.members[0];
  }

  /** True while the frame is shared and a member still maps it; otherwise dissolves the node. */
  private nodeAlive(node: StableNode): boolean {
    if (this.nodes.get(node.id) !== node) return false;
    if (this.pool!.referenceCount(node.frame) >= 2 && this.sourceOf(node) !== undefined) return true;
    this.dissolve(node);
    return false;
  }

  private dissolve(node: StableNode): void {
    this.domains.get(node.domain)?.removeNode(node);
    this.nodes.delete(node.id);
    if (this.nodeByFrame.get(node.frame) === node) this.nodeByFrame.delete(node.frame);
    for (const { guest, page } of node.members) {
      if (guest.node[page] !== node.id) continue;
      guest.node[page] = -1;
      // Its checksum stays: unchanged bytes make it a candidate at its next scan.
      if (guest.state[page] === PageState.Stable) guest.state[page] = PageState.Volatile;
    }
  }

  private forgetPage(guest: TrackedGuest, page: number): void {
    guest.node[page] = -1;
    guest.state[page] = PageState.Unseen;
  }

  private domainIndex(key: string): DomainIndex {
    let index = this.domains.get(key);
    if (index === undefined) {
      index = new DomainIndex();
      this.domains.set(key, index);
    }
    return index;
  }

  // ---- Internals: unmerging ----

  /** run=2: every merged page gets a private copy again; everything learnt is forgotten. */
  private unmergeAll(): void {
    for (const node of [...this.nodes.values()]) {
      for (const ref of this.validMembers(node)) ref.guest.ram.unshare(ref.guest.address(ref.page));
    }
    this.forgetAll();
  }

  private unmergeGuest(guest: TrackedGuest): void {
    const pool = this.pool!;
    for (const [first, end] of guest.ranges) {
      for (let page = first; page < end; page++) {
        const frame = guest.frameOf(page);
        if (frame >= 0 && pool.referenceCount(frame) >= 2) guest.ram.unshare(guest.address(page));
      }
    }
    guest.forget();
  }

  private forgetAll(): void {
    this.nodes.clear();
    this.nodeByFrame.clear();
    this.domains.clear();
    for (const guest of this.guests) guest.forget();
    this.passActive = false;
  }

  // ---- Internals: the cursor and full scans ----

  private beginPass(): void {
    for (const domain of this.domains.values()) domain.clearUnstable();
    // A pass is taken to start with the sleep before its first tick.
    this.passStart = this.clock.now() - this.currentKnobs.sleep_millisecs * 1e6;
    this.passCpu = 0;
    this.passPages = 0;
    this.passActive = true;
    this.resetCursorTo(0);
  }

  private endPass(result: TickResult): void {
    this.passActive = false;
    this.fullScans++;
    result.fullScans++;
    const knobs = this.currentKnobs;
    if (knobs.advisor_mode === 'scan-time') {
      const pagesToScan = advisePagesToScan({
        pagesToScan: knobs.pages_to_scan,
        scanSeconds: (this.clock.now() - this.passStart) / 1e9,
        targetScanSeconds: knobs.advisor_target_scan_time,
        cpuMilliseconds: this.passCpu,
        pagesScanned: this.passPages,
        sleepMilliseconds: knobs.sleep_millisecs,
        maxCpuPercent: knobs.advisor_max_cpu,
        minPagesToScan: knobs.advisor_min_pages_to_scan,
        maxPagesToScan: knobs.advisor_max_pages_to_scan,
      });
      this.currentKnobs = { ...knobs, pages_to_scan: pagesToScan };
    }
    this.observer({ kind: 'full-scan', fullScans: this.fullScans, pagesToScan: this.currentKnobs.pages_to_scan });
  }

  private resetCursorTo(guestIndex: number): void {
    this.cursorGuest = guestIndex;
    this.cursorRange = 0;
    this.cursorPage = this.guests[guestIndex]?.ranges[0]?.[0] ?? -1;
  }

  private advanceGuest(): void {
    this.resetCursorTo(this.cursorGuest + 1);
  }

  private advancePage(guest: TrackedGuest): void {
    this.cursorPage++;
    const range = guest.ranges[this.cursorRange]!;
    if (this.cursorPage < range[1]) return;
    this.cursorRange++;
    const next = guest.ranges[this.cursorRange];
    if (next === undefined) this.advanceGuest();
    else this.cursorPage = next[0];
  }

  private periodNs(): number {
    return Math.max(1, this.currentKnobs.sleep_millisecs) * 1e6;
  }

  private guest(id: string): TrackedGuest {
    const guest = this.byId.get(id);
    if (guest === undefined) throw new KsmError('KSM_GUEST', `no guest ${JSON.stringify(id)} is registered`);
    return guest;
  }
}
