import { randomUUID } from 'node:crypto';
import { PAGE_SIZE, TsvirtError, type Timer } from '@tsvirt/interfaces';
import {
  MigrationCancelledError,
  MigrationIncompatibleError,
  MigrationOptionsError,
  MigrationPeerError,
  MigrationStreamError,
  MigrationTimeoutError,
  isConnectionLoss,
  type MigrationPhase,
} from '../errors.js';
import { FRAME_OVERHEAD, FrameType, PAGE_RECORD_HEADER, STREAM_VERSION } from '../stream/format.js';
import { FrameReader } from '../stream/frame-reader.js';
import { FrameWriter } from '../stream/frame-writer.js';
import { XbzrleCache } from '../stream/xbzrle-cache.js';
import { connectionFailure, openChannel, type MigrationChannel } from '../transport/channel.js';
import type { MigratableVm } from '../vm.js';
import { decodeBitmap, encodeBitmap } from './bitmap-codec.js';
import { WaitLimit, closeWhenLate, inMs, timerOn } from './deadlines.js';
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
  /** Gives up: the source keeps (or resumes) running, unchanged. Ignored once the end marker is sent (or post-copy started). */
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
  /** Rejects when the migration is given up before the end marker: cancel, or a timeout. */
  private readonly stopped = deferred<never>();
  private stopReason: Error | undefined;
  /** Where the migration is, for the timeouts' errors. */
  private phase: MigrationPhase = 'setup';
  /** Bounds each wait on the destination (`deadlines.stallMs`). */
  private readonly waits: WaitLimit;
  /** `timeout` (libvirt's), then `deadlines.setupMs`. */
  private readonly migrationTimer: Timer;
  private readonly setupTimer: Timer;
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
    this.waits = new WaitLimit(options.timing, options.deadlines.stallNs);
    this.migrationTimer = timerOn(options.timing, () => this.onMigrationTimeout());
    this.setupTimer = timerOn(options.timing, () => {
      const limit = options.deadlines.setupNs!;
      this.stop(new MigrationTimeoutError('setup', 'setup', `setup did not finish within ${inMs(limit)} ms`));
    });
    this.done = this.run();
  }

  /** Bytes sent on every connection so far. */
  private get transferred(): number {
    return this.lanes.reduce((sum, lane) => sum + lane.writer.bytesWritten, this.bytesBefore + this.writer.bytesWritten);
  }

  cancel(): void {
    if (this.stop(new MigrationCancelledError())) this.setStatus('cancelling');
  }

  /** Gives up with `reason` unless it is too late for that (end marker sent, post-copy, finished); true if it did. */
  private stop(reason: Error): boolean {
    if (this.endSent || this.postcopyActive || this.stopped.settled || this.status === 'completed' || this.status === 'failed' || this.status === 'cancelled') return false;
    this.stopReason = reason;
    this.stopped.reject(reason);
    return true;
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
    const { timeout, deadlines } = this.options;
    if (timeout !== undefined && !this.offline) this.migrationTimer.arm(this.startTime + timeout.afterNs);
    if (deadlines.setupNs !== undefined) this.setupTimer.arm(this.startTime + deadlines.setupNs);
    try {
      if (this.channel.duplex) void this.readAnswers(this.channel, this.generation);
      await this.setup();
      if (this.offline) await this.switchover('offline', allRamPages(this.vm.memory));
      else await this.iterate();
      this.setStatus('completed');
    } catch (error) {
      this.error = error instanceof Error ? error : new Error(String(error));
      this.rollback();
      // A peer that let a deadline pass is not trusted to close the connection: close it, so nothing waits on it.
      if (error instanceof MigrationTimeoutError) this.channel.destroy();
      this.setStatus(error instanceof MigrationCancelledError ? 'cancelled' : 'failed');
    }
    this.migrationTimer.cancel();
    this.setupTimer.cancel();
    this.waits.dispose();
    // The engine opened the multifd channels; it closes them.
    for (const lane of this.lanes) lane.channel.destroy();
    return this.stats();
  }

  private async setup(): Promise<void> {
    this.setStatus('setup');
    this.deviceStateEstimate = new TextEncoder().encode(JSON.stringify(this.vm.saveDevices())).length;
    await this.guard(this.writer.writePreamble(), 'the destination to take the header');
    await this.guard(
      this.writer.writeJson(FrameType.Header, {
        version: STREAM_VERSION,
        pageSize: PAGE_SIZE,
        mode: this.offline ? 'offline' : 'live',
        id: this.id,
        multifd: this.options.multifd?.channels ?? 0,
        descriptor: this.vm.describe(),
      }),
      'the destination to take the header',
    );
    if (this.channel.duplex) await this.guard(this.accepted.promise, 'the destination to accept the migration');
    if (this.options.multifd !== undefined) await this.openLanes(this.options.multifd);
    this.setupTimer.cancel();
    this.setupTime = this.options.timing.now() - this.startTime;
  }

  private async iterate(): Promise<void> {
    this.setStatus('active');
    this.vm.memory.startDirtyLog();
    this.dirtyLogStarted = true;
    this.lastSyncTime = this.options.timing.now();
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
    const waitingFor = 'the destination to take more of the stream';
    if (only !== undefined) await this.guard(only.flush(), waitingFor);
    else for (const sender of this.senders()) await this.guard(sender.flush(), waitingFor);
    this.checkStopped();
    if (this.peerFailure !== undefined) throw this.peerFailure;
    const timing = this.options.timing;
    if (this.options.maxBandwidth !== Infinity) {
      const owedNs = ((this.transferred - this.windowBytes) * 1e9) / this.options.maxBandwidth - (timing.now() - this.windowStart);
      // Our own pause, not a wait on the peer: no stall limit.
      if (owedNs > 0) await this.interruptible(timing.sleep(owedNs));
    }
    if (!this.offline && this.pauseTime === undefined && !this.postcopyActive) this.checkTimeout();
    this.options.observer({ type: 'progress', stats: this.stats() });
  }

  /** Polls the timeout policy too, for a timing whose timers do not follow its clock. */
  private checkTimeout(): void {
    const timeout = this.options.timeout;
    if (timeout === undefined || this.options.timing.now() - this.startTime < timeout.afterNs) return;
    this.onMigrationTimeout();
    this.checkStopped();
  }

  /** The timeout policy (libvirt's): give up, or pause the guest and finish offline. */
  private onMigrationTimeout(): void {
    const timeout = this.options.timeout;
    if (timeout === undefined || this.offline || this.endSent || this.postcopyActive || this.status === 'completed' || this.status === 'failed') return;
    if (timeout.action === 'abort') {
      this.stop(new MigrationTimeoutError(this.phase, 'migration', `the migration did not finish within ${inMs(timeout.afterNs)} ms`));
    } else {
      // The pass under way ends the live phase: the rest goes out with the guest paused.
      this.pauseGuest();
    }
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
      await this.guard(lane.writer.writeJson(FrameType.ChannelEnd, { normal, zero: duplicate, xbzrle }), 'the destination to take a multifd end marker');
    }
    const deviceState = new TextEncoder().encode(JSON.stringify(this.vm.saveDevices()));
    await this.guard(this.writer.writeFrame(FrameType.DeviceState, deviceState), 'the destination to take the device state');
    const counters = this.counters();
    await this.guard(this.writer.writeJson(FrameType.End, { normal: counters.normal, zero: counters.duplicate, xbzrle: counters.xbzrle }), 'the destination to take the end marker');
    this.endSent = true;
    // Past the end marker nothing cancels, but the paused guest must not wait forever for the answer.
    if (this.channel.duplex) await this.watch(this.completed.promise, 'the destination to confirm the switch-over');
    else await this.watch(this.channel.end().catch((error: unknown) => Promise.reject(connectionFailure(error))), 'the end of the stream to be written');
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
      const connecting = openChannel(() => multifd.connect());
      let channel: MigrationChannel;
      try {
        channel = await this.guard(connecting, `multifd channel ${index} to connect`);
      } catch (error) {
        closeWhenLate(connecting);
        throw error;
      }
      const writer = new FrameWriter(channel);
      this.lanes.push({ channel, writer, sender: new PageSender(this.vm.memory, writer, this.options.batchBytes, this.cache) });
      await this.guard(writer.writePreamble(), `the destination to take multifd channel ${index}`);
      await this.guard(writer.writeJson(FrameType.ChannelHello, { id: this.id, index }), `the destination to take multifd channel ${index}`);
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

  private checkStopped(): void {
    if (this.stopReason !== undefined && !this.endSent) throw this.stopReason;
  }

  /** Awaits `work`, giving up at once on cancel or a timeout. */
  private interruptible<T>(work: Promise<T>): Promise<T> {
    return Promise.race([work, this.stopped.promise]);
  }

  /** Awaits `work` on the destination's account: given up on cancel or a timeout, and bounded by the stall limit. */
  private guard<T>(work: Promise<T>, waitingFor: string): Promise<T> {
    return this.watch(work, waitingFor, this.stopped.promise);
  }

  /** Awaits `work`, bounded by the stall limit (alone where cancel no longer applies). */
  private watch<T>(work: Promise<T>, waitingFor: string, interrupt?: Promise<never>): Promise<T> {
    return this.waits.watch(work, () => new MigrationTimeoutError(this.phase, 'stall', `waited ${inMs(this.options.deadlines.stallNs!)} ms for ${waitingFor}`), interrupt);
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
    await this.guard(this.writer.writeFrame(FrameType.DeviceState, deviceState), 'the destination to take the device state');
    this.postcopyActive = true;
    this.setStatus('postcopy-active');
    await this.watch(this.writer.writeFrame(FrameType.PostcopyStart, encodeBitmap(pages)), 'the destination to take the post-copy start');
    await this.watch(this.postcopyRunning.promise, 'the destination to confirm it runs');
    this.downtime = this.options.timing.now() - this.pauseTime!;
    let toSend = pages;
    for (;;) {
      try {
        await this.streamPostcopyPages(toSend);
        const counters = this.sender.counters;
        await this.watch(this.writer.writeJson(FrameType.End, { normal: counters.normal, zero: counters.duplicate, xbzrle: counters.xbzrle }), 'the destination to take the end marker');
        this.endSent = true;
        await this.watch(this.completed.promise, 'the destination to confirm it has every page');
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

  /** Post-copy recovery, within `deadlines.recoveryMs`: a new connection, proof of identity, and the destination's list of what it still lacks. */
  private async reconnect(reconnect: () => Promise<MigrationChannel>): Promise<Uint32Array> {
    this.channel.destroy();
    const limit = this.options.deadlines.recoveryNs;
    const expired = deferred<never>();
    const timer = timerOn(this.options.timing, () => expired.reject(new MigrationTimeoutError('postcopy-recovery', 'recovery', `no recovery within ${inMs(limit!)} ms`)));
    if (limit !== undefined) timer.arm(this.options.timing.now() + limit);
    try {
      const connecting = openChannel(() => reconnect());
      let channel: MigrationChannel;
      try {
        channel = await Promise.race([connecting, expired.promise]);
      } catch (error) {
        closeWhenLate(connecting);
        throw error;
      }
      return await Promise.race([this.resumeOn(channel), expired.promise]);
    } finally {
      timer.cancel();
    }
  }

  private async resumeOn(channel: MigrationChannel): Promise<Uint32Array> {
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
    await this.watch(this.writer.writePreamble(), 'the destination to take the resume request');
    await this.watch(this.writer.writeJson(FrameType.Resume, { id: this.id }), 'the destination to take the resume request');
    // Only RAM pages are ever sent, whatever the destination claims to lack.
    const missing = await this.watch(this.missingArrived.promise, "the destination's list of missing pages");
    const ram = allRamPages(this.vm.memory);
    for (let word = 0; word < missing.length; word++) missing[word]! &= ram[word]!;
    return missing;
  }

  private setStatus(status: MigrationStatus): void {
    if (this.status === status) return;
    this.status = status;
    this.phase = PHASES[status] ?? this.phase;
    this.options.observer({ type: 'status', status });
  }
}

/** The phase each status is part of (the final ones keep the last phase). */
const PHASES: Readonly<Partial<Record<MigrationStatus, MigrationPhase>>> = {
  setup: 'setup',
  active: 'precopy',
  device: 'switchover',
  'postcopy-active': 'postcopy',
  'postcopy-paused': 'postcopy-recovery',
};

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
