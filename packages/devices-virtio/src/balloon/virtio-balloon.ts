import { type Clock, type GuestMemory, guestAddress, StateReader, type Timer } from '@tsvirt/interfaces';
import type { VirtioDevice, VirtioDeviceContext } from '../device.js';
import { type DescriptorChain, QueueError, readFromChain } from '../queue/split-queue.js';
import { DeviceType, featureMask } from '../spec.js';

/** Device feature bits (virtio 1.2, 5.5.3). */
export enum BalloonFeature {
  MustTellHost = 0,
  StatsQueue = 1,
  DeflateOnOom = 2,
  FreePageHint = 3,
  PagePoison = 4,
  PageReporting = 5,
}

/** The statistics a driver reports (5.5.6.3), by tag; QEMU's names in `query-balloon`/`guest-stats`. */
export const BALLOON_STAT_NAMES = [
  'stat-swap-in',
  'stat-swap-out',
  'stat-major-faults',
  'stat-minor-faults',
  'stat-free-memory',
  'stat-total-memory',
  'stat-available-memory',
  'stat-disk-caches',
  'stat-htlb-pgalloc',
  'stat-htlb-pgfail',
] as const;
export type BalloonStatName = (typeof BALLOON_STAT_NAMES)[number];

/** Balloon pages are 4 KiB whatever the guest's page size (VIRTIO_BALLOON_PFN_SHIFT). */
const BALLOON_PAGE = 4096;
const QUEUE_SIZE = 128;
/** A stats entry: le16 tag, le64 value, packed. */
const STAT_ENTRY = 10;
/** PFNs read at a time. */
const PFNS_PER_READ = 1024;
/**
 * Bytes of one inflate list looked at (Linux sends at most 256 PFNs, 1 KiB):
 * a chain can list the same RAM over and over, and a guest must not stall
 * the whole VM process with one request.
 */
const MAX_LIST_BYTES = 1 << 20;

const Queue = { Inflate: 0, Deflate: 1, Stats: 2, Reporting: 3 } as const;

export interface VirtioBalloonOptions {
  /** Guest RAM in bytes, which the target is measured against (QEMU's `balloon VALUE` is the guest's new size). */
  readonly ramBytes: number;
  /** Offer free page reporting (QEMU's `free-page-reporting=on`): the guest hands free pages back, and they are discarded. */
  readonly freePageReporting?: boolean;
  /** Offer DEFLATE_ON_OOM (QEMU's `deflate-on-oom=on`): the guest may take pages back under memory pressure. */
  readonly deflateOnOom?: boolean;
  /** For the statistics polling interval. */
  readonly clock?: Clock;
  /** The guest changed the balloon's size (QMP's BALLOON_CHANGE): the guest's memory is now `actualBytes`. */
  readonly onChange?: (actualBytes: number) => void;
}

/**
 * virtio-balloon (virtio 1.2, 5.5) as QEMU's `virtio-balloon-pci`: the host
 * sets a target, the driver inflates (gives pages, which are discarded so the
 * host gets their memory back) or deflates (takes pages back, which read as
 * zeros) towards it and reports its size in `actual`. Statistics come on the
 * stats queue, polled at an interval; with page reporting, the free pages
 * the driver reports are discarded too. Page numbers outside RAM are ignored,
 * as QEMU does.
 */
export class VirtioBalloon implements VirtioDevice {
  readonly deviceType = DeviceType.Balloon;
  readonly queueMaxSizes: readonly number[];
  readonly features: bigint;
  readonly configSize = 8;
  private context: VirtioDeviceContext | undefined;
  /** Pages the host wants in the balloon (config `num_pages`). */
  private targetPages = 0;
  /** Pages the driver says are in the balloon (config `actual`). */
  private actualPages = 0;
  /** The statistics buffer the driver last gave, held until the next poll. */
  private statsHead: number | undefined;
  private readonly statistics = new Map<BalloonStatName, number>();
  private statsUpdated: number | undefined;
  private statsIntervalNs = 0;
  private readonly statsTimer: Timer | undefined;

  constructor(private readonly options: VirtioBalloonOptions) {
    if (!(options.ramBytes > 0) || options.ramBytes % BALLOON_PAGE !== 0) throw new RangeError('the balloon needs the guest RAM size in whole 4 KiB pages');
    this.features = featureMask(BalloonFeature.StatsQueue, ...(options.deflateOnOom === true ? [BalloonFeature.DeflateOnOom] : []), ...(options.freePageReporting === true ? [BalloonFeature.PageReporting] : []));
    this.queueMaxSizes = Array.from({ length: options.freePageReporting === true ? 4 : 3 }, () => QUEUE_SIZE);
    this.statsTimer = options.clock?.createTimer(() => this.pollStatistics());
  }

  /** QMP's `balloon`: the guest should shrink or grow to `bytes` (rounded down to a page, within RAM). */
  setTarget(bytes: number): void {
    const target = Math.min(this.options.ramBytes, Math.max(0, Math.floor(bytes / BALLOON_PAGE) * BALLOON_PAGE));
    const pages = (this.options.ramBytes - target) / BALLOON_PAGE;
    if (pages === this.targetPages) return;
    this.targetPages = pages;
    this.context?.signalConfigChange();
  }

  /** QMP's `query-balloon`: the guest's memory as the driver reports it. */
  get actualBytes(): number {
    return this.options.ramBytes - this.actualPages * BALLOON_PAGE;
  }

  /** The last statistics the driver reported, and when (clock ns); empty before the first report. */
  get guestStatistics(): { readonly updated: number | undefined; readonly values: ReadonlyMap<BalloonStatName, number> } {
    return { updated: this.statsUpdated, values: this.statistics };
  }

  /** QEMU's `guest-stats-polling-interval` (seconds; 0 stops polling). */
  setStatisticsInterval(seconds: number): void {
    if (!Number.isFinite(seconds) || seconds < 0) throw new RangeError('the polling interval is a number of seconds, 0 or more');
    this.statsIntervalNs = seconds * 1e9;
    this.armStatistics();
  }

  readConfig(offset: number, size: 1 | 2 | 4): number {
    const config = new DataView(new ArrayBuffer(this.configSize));
    config.setUint32(0, this.targetPages, true);
    config.setUint32(4, this.actualPages, true);
    if (offset + size > this.configSize) return 0;
    return size === 1 ? config.getUint8(offset) : size === 2 ? config.getUint16(offset, true) : config.getUint32(offset, true);
  }

  writeConfig(offset: number, size: 1 | 2 | 4, value: number): void {
    // Only `actual` is the driver's; Linux writes it whole.
    if (offset !== 4 || size !== 4) return;
    const pages = Math.min(value >>> 0, this.options.ramBytes / BALLOON_PAGE);
    if (pages === this.actualPages) return;
    this.actualPages = pages;
    this.options.onChange?.(this.actualBytes);
  }

  activate(context: VirtioDeviceContext): void {
    this.context = context;
  }

  notify(index: number): void {
    const context = this.context;
    if (context === undefined) return;
    try {
      if (index === Queue.Inflate || index === Queue.Deflate) this.servePageLists(context, index);
      else if (index === Queue.Stats) this.takeStatistics(context);
      else if (index === Queue.Reporting && this.options.freePageReporting === true) this.serveReports(context);
    } catch (error) {
      if (!(error instanceof QueueError)) throw error;
      context.fail(error.message);
    }
  }

  reset(): void {
    this.context = undefined;
    this.actualPages = 0;
    this.statsHead = undefined;
    this.statsTimer?.cancel();
  }

  save(): { version: 1; targetPages: number; actualPages: number; statsHead: number; statsIntervalNs: number } {
    return { version: 1, targetPages: this.targetPages, actualPages: this.actualPages, statsHead: this.statsHead ?? -1, statsIntervalNs: this.statsIntervalNs };
  }

  restore(state: unknown, context: VirtioDeviceContext | undefined): void {
    const reader = StateReader.open(state, 'virtio-balloon', 1);
    const pages = this.options.ramBytes / BALLOON_PAGE;
    const targetPages = reader.uint('targetPages', pages);
    const actualPages = reader.uint('actualPages', pages);
    const statsHead = reader.int('statsHead', -1, QUEUE_SIZE - 1);
    const statsIntervalNs = reader.number('statsIntervalNs');
    if (statsIntervalNs < 0) reader.fail('statsIntervalNs', 'negative');
    this.reset();
    this.targetPages = targetPages;
    this.actualPages = actualPages;
    this.statsIntervalNs = statsIntervalNs;
    if (context === undefined) return;
    this.context = context;
    if (statsHead >= 0) {
      // The held buffer must still be a valid chain in the restored queue.
      try {
        context.queues[Queue.Stats]!.chainAt(context.memory, statsHead);
        this.statsHead = statsHead;
      } catch (error) {
        if (!(error instanceof QueueError)) throw error;
        reader.fail('statsHead', error.message);
      }
    }
    this.armStatistics();
  }

  /** Inflate: discard each listed page; deflate: nothing to do, the guest simply uses them again. */
  private servePageLists(context: VirtioDeviceContext, index: number): void {
    const queue = context.queues[index]!;
    let served = false;
    for (let chain = queue.pop(context.memory); chain !== undefined; chain = queue.pop(context.memory)) {
      if (index === Queue.Inflate) this.discardListed(context.memory, chain);
      queue.push(context.memory, chain.head, 0);
      served = true;
    }
    if (served) context.signalQueue(index);
  }

  private discardListed(memory: GuestMemory, chain: DescriptorChain): void {
    const bytes = new Uint8Array(PFNS_PER_READ * 4);
    const view = new DataView(bytes.buffer);
    for (let offset = 0; offset + 4 <= Math.min(chain.readableLength, MAX_LIST_BYTES); offset += bytes.length) {
      const read = readFromChain(memory, chain, offset, bytes) & ~3;
      for (let at = 0; at < read; at += 4) {
        const address = view.getUint32(at, true) * BALLOON_PAGE;
        if (memory.isRam(guestAddress(address), BALLOON_PAGE)) memory.discard(guestAddress(address), BALLOON_PAGE);
      }
    }
  }

  /** Reported free pages are the chain's own (device-writable) buffers: discard them and give the chain back. */
  private serveReports(context: VirtioDeviceContext): void {
    const queue = context.queues[Queue.Reporting]!;
    let served = false;
    for (let chain = queue.pop(context.memory); chain !== undefined; chain = queue.pop(context.memory)) {
      for (const buffer of chain.writable) {
        if (context.memory.isRam(guestAddress(buffer.address), buffer.length)) context.memory.discard(guestAddress(buffer.address), buffer.length);
      }
      queue.push(context.memory, chain.head, 0);
      served = true;
    }
    if (served) context.signalQueue(Queue.Reporting);
  }

  /** The driver filled its statistics buffer: read it, and hold it until the next poll (5.5.6.3). */
  private takeStatistics(context: VirtioDeviceContext): void {
    const queue = context.queues[Queue.Stats]!;
    for (let chain = queue.pop(context.memory); chain !== undefined; chain = queue.pop(context.memory)) {
      // A second buffer while one is held: give the older one back unread, as QEMU does.
      if (this.statsHead !== undefined) {
        queue.push(context.memory, this.statsHead, 0);
        context.signalQueue(Queue.Stats);
      }
      const bytes = new Uint8Array(Math.min(chain.readableLength, STAT_ENTRY * 64));
      const read = readFromChain(context.memory, chain, 0, bytes);
      const view = new DataView(bytes.buffer);
      for (let at = 0; at + STAT_ENTRY <= read; at += STAT_ENTRY) {
        const name = BALLOON_STAT_NAMES[view.getUint16(at, true)];
        // Values past 2^53 lose precision as numbers; counters and byte counts do not get there.
        if (name !== undefined) this.statistics.set(name, Number(view.getBigUint64(at + 2, true)));
      }
      this.statsUpdated = this.options.clock?.now();
      this.statsHead = chain.head;
    }
    this.armStatistics();
  }

  /** Gives the held buffer back, which asks the driver for fresh statistics. */
  private pollStatistics(): void {
    const context = this.context;
    if (context === undefined || this.statsHead === undefined) return;
    context.queues[Queue.Stats]!.push(context.memory, this.statsHead, 0);
    this.statsHead = undefined;
    context.signalQueue(Queue.Stats);
  }

  private armStatistics(): void {
    const clock = this.options.clock;
    if (clock === undefined || this.statsTimer === undefined) return;
    if (this.statsIntervalNs === 0 || this.statsHead === undefined) this.statsTimer.cancel();
    else if (this.statsTimer.deadline === undefined) this.statsTimer.arm(clock.now() + this.statsIntervalNs);
  }
}
