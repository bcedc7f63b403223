import { randomUUID } from 'node:crypto';
import { PAGE_SIZE, TsvirtError } from '@tsvirt/interfaces';
import {
  MigrationCancelledError,
  MigrationIncompatibleError,
  MigrationOptionsError,
  MigrationPeerError,
  MigrationStreamError,
  MigrationTimeoutError,
  isConnectionLoss,
} from '../errors.js';
import { FRAME_OVERHEAD, FrameType, PAGE_RECORD_HEADER, STREAM_VERSION } from '../stream/format.js';
import { FrameReader } from '../stream/frame-reader.js';
import { FrameWriter } from '../stream/frame-writer.js';
import { XbzrleCache } from '../stream/xbzrle-cache.js';
import type { MigrationChannel } from '../transport/channel.js';
import type { MigratableVm } from '../vm.js';
import { decodeBitmap, encodeBitmap } from './bitmap-codec.js';
import { deferred } from './deferred.js';
import { resolveOptions, type MigrationOptions, type ResolvedOptions } from './options.js';
import { PageSender } from './page-sender.js';
import { allRamPages, countPages } from './page-sets.js';
import { EMPTY_RAM_STATS, type MigrationStats, type MigrationStatus, type SwitchoverReason } from './stats.js';

/** What the source sees of a running migration. */
export interface OutgoingMigration {
  /** Settles when the migration ends, with the final statistics (`status` tells how it ended); never rejects. */
  readonly done: Promise<MigrationStats>;
  /** The typed error of a failed or cancelled migration. */
  readonly error: Error | undefined;
  stats(): MigrationStats;
  /** Gives up: the source keeps (or resumes) running, unchanged. Ignored once the end marker is sent. */
  cancel(): void;
}

/** The most a page can cost on the wire (a normal record in a frame of its own). */
const PAGE_COST = PAGE_SIZE + PAGE_RECORD_HEADER + FRAME_OVERHEAD;
/** Room for the end marker and the answers that follow the device state. */
const CONTROL_SLACK = 1024;

/**
 * Starts a live (pre-copy) migration of `vm` over `channel`: a bulk pass over
 * all RAM, then passes over the pages dirtied meanwhile, until the rest fits
 * in `downtimeLimitMs` at the measured bandwidth; then the guest is paused,
 * the rest and the device state are sent, and the destination confirms.
 */
export function startMigration(vm: MigratableVm, channel: MigrationChannel, options: MigrationOptions = {}): OutgoingMigration {
  return new SourceMigration(vm, channel, resolveOptions(options), false);
}

/** Offline migration (and save): pause, send everything once, finish. The source stays paused on success. */
export function startOfflineMigration(vm: MigratableVm, channel: MigrationChannel, options: MigrationOptions = {}): OutgoingMigration {
  return new SourceMigration(vm, channel, resolveOptions(options), true);
}

class SourceMigration implements OutgoingMigration {
  readonly done: Promise<MigrationStats>;
  error: Error | undefined;
  private status: MigrationStatus = 'none';
  private writer: FrameWriter;
  private channel: MigrationChannel;
  private readonly sender: PageSender;
  private readonly cache: XbzrleCache | undefined;
  private readonly accepted = deferred<void>();
  private completed = deferred<void>();
  private postcopyRunning = deferred<void>();
  private missingArrived = deferred<Uint32Array>();
  private readonly id = randomUUID();
  /** Which connection the answers come from (post-copy recovery replaces it). */
  private generation = 0;
  private bytesBefore = 0;
  private postcopyActive = false;
  private requests: number[] = [];
  private readonly pageCount: number;
  /** Multifd channels, each with its own writer and page batches. */
  private lanes: Array<{ channel: MigrationChannel; writer: FrameWriter; sender: PageSender }> = [];
  private readonly cancelled = deferred<never>();
  private peerFailure: Error | undefined;
  private readonly startTime: number;
  private setupTime = 0;
  private pauseTime: number | undefined;
  private downtime: number | undefined;
  private wasRunning = false;
  private originalThrottle = 0;
  private throttle = 0;
  private pausedByUs = false;
  private dirtyLogStarted = false;
  private endSent = false;
  private switchoverReason: SwitchoverReason | undefined;
  private readonly totalRamBytes: number;
  private remainingPages = 0;
  private iterations = 0;
  private dirtySyncCount = 0;
  private dirtyPagesRate = 0;
  private bandwidth = 0;
  private expectedDowntimeMs = 0;
  private liveStart = 0;
  private lastSyncTime = 0;
  private lastSyncBytes = 0;
  private dirtyRateHighCount = 0;
  private deviceStateEstimate = 0;
  private windowStart = 0;
  private windowBytes = 0;

  constructor(
    private readonly vm: MigratableVm,
    channel: MigrationChannel,
    private readonly options: ResolvedOptions,
    private readonly offline: boolean,
  ) {
    this.channel = channel;
    this.pageCount = Math.floor(vm.memory.size / PAGE_SIZE);
    this.startTime = options.timing.now();
    this.writer = new FrameWriter(channel);
    this.cache = options.xbzrleCacheSize === undefined || offline ? undefined : new XbzrleCache(options.xbzrleCacheSize);
    this.sender = new PageSender(vm.memory, this.writer, options.batchBytes, this.cache);
    this.totalRamBytes = countPages(allRamPages(vm.memory)) * PAGE_SIZE;
    this.done = this.run();
  }

  /** Bytes sent on every connection so far. */
  private get transferred(): number {
    return this.lanes.reduce((sum, lane) => sum + lane.writer.bytesWritten, this.bytesBefore + this.writer.bytesWritten);
  }

  cancel(): void {
    if (this.endSent || this.postcopyActive || this.cancelled.settled || this.status === 'completed' || this.status === 'failed') return;
    this.setStatus('cancelling');
    this.cancelled.reject(new MigrationCancelledError());
  }

  stats(): MigrationStats {
    const now = this.options.timing.now();
    const counters = this.counters();
    const elapsedNs = now - this.startTime;
    return {
      status: this.status,
      totalTime: elapsedNs / 1e6,
      setupTime: this.setupTime / 1e6,
      downtime: this.downtime === undefined ? undefined : this.downtime / 1e6,
      expectedDowntime: this.expectedDowntimeMs,
      ram: {
        ...EMPTY_RAM_STATS,
        transferred: this.transferred,
        remaining: this.remainingPages * PAGE_SIZE,
        total: this.totalRamBytes,
        duplicate: counters.duplicate,
        normal: counters.normal,
        normalBytes: counters.normal * PAGE_SIZE,
        dirtyPagesRate: this.dirtyPagesRate,
        mbps: this.bandwidth === Infinity ? 0 : (this.bandwidth * 8) / 1e6,
        dirtySyncCount: this.dirtySyncCount,
        iterations: this.iterations,
      },
      cpuThrottlePercentage: this.throttle,
      xbzrleCache: this.cache?.stats(),
      switchoverReason: this.switchoverReason,
      errorDesc: this.error?.message,
    };
  }

  private async run(): Promise<MigrationStats> {
    this.wasRunning = this.vm.running;
    this.originalThrottle = this.vm.cpuThrottlePercentage;
    // Let the caller hold the handle (and cancel) before the first event.
    await Promise.resolve();
    try {
      if (this.channel.duplex) void this.readAnswers(this.channel, this.generation);
      await this.setup();
      if (this.offline) await this.switchover('offline', allRamPages(this.vm.memory));
      else await this.iterate();
      this.setStatus('completed');
    } catch (error) {
      this.error = error instanceof Error ? error : new Error(String(error));
      this.rollback();
      this.setStatus(error instanceof MigrationCancelledError ? 'cancelled' : 'failed');
    }
    // The engine opened the multifd channels; it closes them.
    for (const lane of this.lanes) lane.channel.destroy();
    return this.stats();
  }

  private async setup(): Promise<void> {
    this.setStatus('setup');
    this.deviceStateEstimate = new TextEncoder().encode(JSON.stringify(this.vm.saveDevices())).length;
    await this.guard(this.writer.writePreamble());
    await this.guard(
      this.writer.writeJson(FrameType.Header, {
        version: STREAM_VERSION,
        pageSize: PAGE_SIZE,
        mode: this.offline ? 'offline' : 'live',
        id: this.id,
        multifd: this.options.multifd?.channels ?? 0,
        descriptor: this.vm.describe(),
      }),
    );
    if (this.channel.duplex) await this.guard(this.accepted.promise);
    if (this.options.multifd !== undefined) await this.openLanes(this.options.multifd);
    this.setupTime = this.options.timing.now() - this.startTime;
  }

  private async iterate(): Promise<void> {
    this.setStatus('active');
    this.vm.memory.startDirtyLog();
    this.dirtyLogStarted = true;
    this.liveStart = this.lastSyncTime = this.options.timing.now();
    this.lastSyncBytes = this.transferred;
    let pages = allRamPages(this.vm.memory);
    let bulk = true;
    for (;;) {
      const passStart = this.options.timing.now();
      const passBytes = this.transferred;
      await this.sendPass(pages, bulk);
      this.iterations++;
      const passTime = this.options.timing.now() - passStart;
      const sent = this.transferred - passBytes;
      if (sent > 0) this.bandwidth = passTime > 0 ? (sent * 1e9) / passTime : Infinity;
      bulk = false;
      pages = this.syncDirtyLog();
      const dirtyPages = countPages(pages);
      // Device state changes as the guest runs: measure it again for this estimate.
      this.deviceStateEstimate = new TextEncoder().encode(JSON.stringify(this.vm.saveDevices())).length;
      const remainingBytes = dirtyPages * PAGE_COST + this.deviceStateEstimate + FRAME_OVERHEAD + CONTROL_SLACK;
      this.remainingPages = dirtyPages;
      this.expectedDowntimeMs = this.bandwidth === Infinity ? 0 : (remainingBytes / this.bandwidth) * 1e3;
      this.options.observer({ type: 'iteration', iteration: this.iterations, dirtyPages, stats: this.stats() });
      if (this.pauseTime !== undefined) return this.switchover('timeout', pages);
      if (remainingBytes <= (this.bandwidth * this.options.downtimeLimitNs) / 1e9) return this.switchover('converged', pages);
      if (this.options.postcopy !== undefined && this.iterations >= this.options.postcopy.afterPasses) return this.postcopy(pages);
      this.checkTimeout();
      if (this.pauseTime !== undefined) return this.switchover('timeout', pages);
    }
  }

  /** Fetches the dirty log and runs the auto-converge check (QEMU's `migration_bitmap_sync`). */
  private syncDirtyLog(): Uint32Array {
    const pages = this.vm.memory.fetchAndClearDirty();
    const now = this.options.timing.now();
    const dirtyPages = countPages(pages);
    this.dirtySyncCount++;
    // The sync at switchover sees a paused guest; the rate stays the one measured while it ran.
    if (now > this.lastSyncTime && this.pauseTime === undefined) this.dirtyPagesRate = (dirtyPages * 1e9) / (now - this.lastSyncTime);
    const auto = this.options.autoConverge;
    if (auto !== undefined && this.vm.running) {
      const transferred = this.transferred - this.lastSyncBytes;
      if (dirtyPages * PAGE_SIZE > (transferred * auto.triggerThreshold) / 100 && ++this.dirtyRateHighCount >= 2) {
        this.dirtyRateHighCount = 0;
        this.throttle = this.throttle === 0 ? auto.initial : Math.min(this.throttle + auto.increment, auto.max);
        this.vm.setCpuThrottle(this.throttle);
        this.options.observer({ type: 'throttle', percentage: this.throttle });
      }
    }
    this.lastSyncTime = now;
    this.lastSyncBytes = this.transferred;
    return pages;
  }

  private async sendPass(pages: Uint32Array, bulk: boolean): Promise<void> {
    this.remainingPages = countPages(pages);
    this.windowStart = this.options.timing.now();
    this.windowBytes = this.transferred;
    for (let word = 0; word < pages.length; word++) {
      let bits = pages[word]!;
      while (bits !== 0) {
        const lowest = bits & -bits;
        bits ^= lowest;
        this.remainingPages--;
        const page = word * 32 + 31 - Math.clz32(lowest);
        const sender = this.senderFor(page);
        if (sender.add(page, !bulk)) await this.flush(sender);
      }
    }
    await this.flush();
  }

  private async flush(only?: PageSender): Promise<void> {
    if (only !== undefined) await this.guard(only.flush());
    else for (const sender of this.senders()) await this.guard(sender.flush());
    this.checkCancelled();
    if (this.peerFailure !== undefined) throw this.peerFailure;
    const timing = this.options.timing;
    if (this.options.maxBandwidth !== Infinity) {
      const owedNs = ((this.transferred - this.windowBytes) * 1e9) / this.options.maxBandwidth - (timing.now() - this.windowStart);
      if (owedNs > 0) await this.guard(timing.sleep(owedNs));
    }
    if (!this.offline && this.pauseTime === undefined && !this.postcopyActive) this.checkTimeout();
    this.options.observer({ type: 'progress', stats: this.stats() });
  }

  /** The timeout policy: pause and finish offline, or give up. */
  private checkTimeout(): void {
    const timeout = this.options.timeout;
    if (timeout === undefined || this.options.timing.now() - this.liveStart < timeout.afterNs) return;
    if (timeout.action === 'abort') throw new MigrationTimeoutError(`migration did not converge within ${timeout.afterNs / 1e6} ms`);
    this.pauseGuest();
  }

  private pauseGuest(): void {
    if (this.pauseTime !== undefined) return;
    this.pauseTime = this.options.timing.now();
    if (this.vm.running) {
      this.vm.pause();
      this.pausedByUs = true;
    }
  }

  private async switchover(reason: SwitchoverReason, pages: Uint32Array): Promise<void> {
    this.switchoverReason = reason;
    this.options.observer({ type: 'switchover', reason, remainingBytes: countPages(pages) * PAGE_SIZE });
    this.pauseGuest();
    this.setStatus('device');
    if (this.dirtyLogStarted) {
      // Pages written between the last sync and the pause.
      const late = this.syncDirtyLog();
      for (let word = 0; word < pages.length; word++) pages[word]! |= late[word]!;
    }
    await this.sendPass(pages, this.offline);
    for (const lane of this.lanes) {
      const { normal, duplicate, xbzrle } = lane.sender.counters;
      await this.guard(lane.writer.writeJson(FrameType.ChannelEnd, { normal, zero: duplicate, xbzrle }));
    }
    const deviceState = new TextEncoder().encode(JSON.stringify(this.vm.saveDevices()));
    await this.guard(this.writer.writeFrame(FrameType.DeviceState, deviceState));
    const counters = this.counters();
    await this.guard(this.writer.writeJson(FrameType.End, { normal: counters.normal, zero: counters.duplicate, xbzrle: counters.xbzrle }));
    this.endSent = true;
    if (this.channel.duplex) await this.completed.promise;
    else await this.channel.end();
    this.downtime = this.options.timing.now() - this.pauseTime!;
    this.remainingPages = 0;
    this.expectedDowntimeMs = 0;
    if (this.dirtyLogStarted) this.vm.memory.stopDirtyLog();
    this.dirtyLogStarted = false;
  }

  /** Multifd: opens the page channels and tells each which migration and index it carries. */
  private async openLanes(multifd: { readonly channels: number; readonly connect: () => Promise<MigrationChannel> }): Promise<void> {
    if (!this.channel.duplex) throw new MigrationOptionsError('multifd needs a two-way main channel');
    for (let index = 0; index < multifd.channels; index++) {
      const channel = await this.guard(multifd.connect());
      const writer = new FrameWriter(channel);
      this.lanes.push({ channel, writer, sender: new PageSender(this.vm.memory, writer, this.options.batchBytes, this.cache) });
      await this.guard(writer.writePreamble());
      await this.guard(writer.writeJson(FrameType.ChannelHello, { id: this.id, index }));
    }
  }

  private senders(): PageSender[] {
    return this.lanes.length === 0 ? [this.sender] : this.lanes.map((lane) => lane.sender);
  }

  /** A page always travels on the same channel, so its versions arrive in order. */
  private senderFor(page: number): PageSender {
    return this.lanes.length === 0 ? this.sender : this.lanes[page % this.lanes.length]!.sender;
  }

  private counters(): { normal: number; duplicate: number; xbzrle: number } {
    const total = { normal: 0, duplicate: 0, xbzrle: 0 };
    for (const sender of this.senders()) {
      total.normal += sender.counters.normal;
      total.duplicate += sender.counters.duplicate;
      total.xbzrle += sender.counters.xbzrle;
    }
    return total;
  }

  /** Undoes everything the migration did to the source, which keeps running. */
  private rollback(): void {
    if (this.dirtyLogStarted) this.vm.memory.stopDirtyLog();
    this.dirtyLogStarted = false;
    if (this.vm.cpuThrottlePercentage !== this.originalThrottle) this.vm.setCpuThrottle(this.originalThrottle);
    this.throttle = this.originalThrottle;
    // Once the destination ran (post-copy), resuming the source would run the machine twice.
    if (this.pausedByUs && this.wasRunning && !this.vm.running && !this.postcopyActive) this.vm.resume();
    this.pauseTime = undefined;
    const frame = this.error instanceof MigrationCancelledError ? FrameType.Cancel : FrameType.Error;
    // Best effort: tell the destination to drop what it has; the caller closes the channel.
    if (!this.endSent || this.channel.duplex) {
      void this.writer
        .writeJson(frame, { reason: this.error?.message ?? 'failed' })
        .then(() => this.channel.end())
        .catch(() => {});
    }
  }

  private checkCancelled(): void {
    if (this.cancelled.settled && !this.endSent) throw new MigrationCancelledError();
  }

  /** Awaits `work`, giving up at once on cancel. */
  private guard<T>(work: Promise<T>): Promise<T> {
    return Promise.race([work, this.cancelled.promise]);
  }

  /** The destination's answers on a duplex channel; a newer connection (`generation`) supersedes this one. */
  private async readAnswers(channel: MigrationChannel, generation: number): Promise<void> {
    const reader = new FrameReader(channel);
    let failure: Error;
    try {
      await reader.readPreamble();
      for (;;) {
        const frame = await reader.next();
        if (generation !== this.generation) return;
        if (frame === null) {
          failure = new MigrationPeerError('the destination closed the connection');
          break;
        }
        if (frame.type === FrameType.Accept) this.accepted.resolve();
        else if (frame.type === FrameType.PostcopyRunning) this.postcopyRunning.resolve();
        else if (frame.type === FrameType.PageRequest) this.queueRequests(frame.payload);
        else if (frame.type === FrameType.Missing) {
          const missing = decodeBitmap(frame.payload, this.pageCount);
          if (missing === undefined) {
            failure = new MigrationStreamError('malformed', 'the destination sent a bad bitmap of missing pages');
            break;
          }
          this.missingArrived.resolve(missing);
        } else if (frame.type === FrameType.Complete) {
          this.completed.resolve();
          return;
        } else if (frame.type === FrameType.Refuse) {
          const detail = parseReason(frame.payload);
          failure = new MigrationIncompatibleError(detail === undefined ? ['refused'] : detail.split('; '));
          break;
        } else if (frame.type === FrameType.Error) {
          failure = new MigrationPeerError(`the destination failed: ${parseReason(frame.payload) ?? 'no reason given'}`);
          break;
        } else {
          failure = new MigrationStreamError('protocol', `unexpected answer frame type ${frame.type}`);
          break;
        }
      }
    } catch (error) {
      failure = error instanceof TsvirtError ? error : new MigrationPeerError('the connection to the destination failed', { cause: error });
    }
    if (generation !== this.generation) return;
    this.peerFailure = failure;
    this.accepted.reject(failure);
    this.completed.reject(failure);
    this.postcopyRunning.reject(failure);
    this.missingArrived.reject(failure);
  }

  private queueRequests(payload: Uint8Array): void {
    const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    // Bounded by the control frame limit; out-of-range pages are ignored.
    for (let at = 0; at + 4 <= payload.length; at += 4) {
      const page = view.getUint32(at, true);
      if (page < this.pageCount && this.requests.length < this.pageCount) this.requests.push(page);
    }
  }

  /**
   * Post-copy: pause, send the device state and the list of pages still to
   * come, let the destination run, then stream those pages, sending the ones
   * the running guest asks for first. A dropped connection is recovered with
   * `postcopy.reconnect` when given.
   */
  private async postcopy(pages: Uint32Array): Promise<void> {
    if (!this.channel.duplex) throw new MigrationOptionsError('post-copy needs a two-way channel');
    this.switchoverReason = 'postcopy';
    this.options.observer({ type: 'switchover', reason: 'postcopy', remainingBytes: countPages(pages) * PAGE_SIZE });
    this.pauseGuest();
    this.setStatus('device');
    const late = this.syncDirtyLog();
    for (let word = 0; word < pages.length; word++) pages[word]! |= late[word]!;
    this.vm.memory.stopDirtyLog();
    this.dirtyLogStarted = false;
    const deviceState = new TextEncoder().encode(JSON.stringify(this.vm.saveDevices()));
    await this.guard(this.writer.writeFrame(FrameType.DeviceState, deviceState));
    this.postcopyActive = true;
    await this.writer.writeFrame(FrameType.PostcopyStart, encodeBitmap(pages));
    this.setStatus('postcopy-active');
    await this.postcopyRunning.promise;
    this.downtime = this.options.timing.now() - this.pauseTime!;
    let toSend = pages;
    for (;;) {
      try {
        await this.streamPostcopyPages(toSend);
        const counters = this.sender.counters;
        await this.writer.writeJson(FrameType.End, { normal: counters.normal, zero: counters.duplicate, xbzrle: counters.xbzrle });
        this.endSent = true;
        await this.completed.promise;
        this.remainingPages = 0;
        return;
      } catch (error) {
        const reconnect = this.options.postcopy?.reconnect;
        if (reconnect === undefined || !isConnectionLoss(error)) throw error;
        this.setStatus('postcopy-paused');
        toSend = await this.reconnect(reconnect);
        this.setStatus('postcopy-active');
      }
    }
  }

  private async streamPostcopyPages(toSend: Uint32Array): Promise<void> {
    this.remainingPages = countPages(toSend);
    this.windowStart = this.options.timing.now();
    this.windowBytes = this.transferred;
    let cursor = 0;
    for (;;) {
      if (this.peerFailure !== undefined) throw this.peerFailure;
      let page = -1;
      while (page < 0 && this.requests.length > 0) {
        const requested = this.requests.shift()!;
        if ((toSend[requested >>> 5]! & (1 << (requested & 31))) !== 0) page = requested;
      }
      const urgent = page >= 0;
      if (!urgent) {
        page = nextSetBit(toSend, cursor);
        if (page < 0) break;
        cursor = page + 1;
      }
      toSend[page >>> 5]! &= ~(1 << (page & 31));
      this.remainingPages--;
      // A page the guest waits for goes out at once, not when the batch fills.
      if (this.sender.add(page, false) || urgent || this.requests.length > 0) await this.flush();
    }
    await this.flush();
  }

  /** Post-copy recovery: a new connection, proof of identity, and the destination's list of what it still lacks. */
  private async reconnect(reconnect: () => Promise<MigrationChannel>): Promise<Uint32Array> {
    this.channel.destroy();
    const channel = await reconnect();
    this.generation++;
    this.bytesBefore += this.writer.bytesWritten;
    this.channel = channel;
    this.writer = new FrameWriter(channel);
    this.sender.writer = this.writer;
    this.sender.discard();
    this.peerFailure = undefined;
    this.requests = [];
    this.completed = deferred();
    this.missingArrived = deferred();
    void this.readAnswers(channel, this.generation);
    await this.writer.writePreamble();
    await this.writer.writeJson(FrameType.Resume, { id: this.id });
    // Only RAM pages are ever sent, whatever the destination claims to lack.
    const missing = await this.missingArrived.promise;
    const ram = allRamPages(this.vm.memory);
    for (let word = 0; word < missing.length; word++) missing[word]! &= ram[word]!;
    return missing;
  }

  private setStatus(status: MigrationStatus): void {
    if (this.status === status) return;
    this.status = status;
    this.options.observer({ type: 'status', status });
  }
}

function nextSetBit(bitmap: Uint32Array, from: number): number {
  for (let word = from >>> 5; word < bitmap.length; word++) {
    let bits = bitmap[word]!;
    if (word === from >>> 5) bits &= ~((1 << (from & 31)) - 1);
    if (bits !== 0) return word * 32 + 31 - Math.clz32(bits & -bits);
  }
  return -1;
}

function parseReason(payload: Uint8Array): string | undefined {
  if (payload.length === 0) return undefined;
  try {
    const value: unknown = JSON.parse(new TextDecoder().decode(payload));
    if (typeof value === 'object' && value !== null && typeof (value as { reason?: unknown }).reason === 'string') return (value as { reason: string }).reason;
  } catch {
    // A garbled reason is still a failure; the frame type says so.
  }
  return undefined;
}
