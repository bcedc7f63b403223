import { PAGE_SIZE, StateError, StateReader, TsvirtError, ignoreEvents, type Observer, type Timer } from '@tsvirt/interfaces';
import { countBits } from '@tsvirt/memory';
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
import { DEFAULT_FRAME_LIMITS, FrameType, STREAM_VERSION, frameTypeName, type FrameLimits } from '../stream/format.js';
import type { Frame } from '../stream/frame-reader.js';
import { FrameReader } from '../stream/frame-reader.js';
import { FrameWriter } from '../stream/frame-writer.js';
import { applyRamPages, type AppliedPages } from '../stream/ram-pages.js';
import { hostTiming, openChannel, type MigrationChannel, type MigrationTiming } from '../transport/channel.js';
import { checkCompatibility, readMachineDescriptor, supportsPostcopy, type MachineDescriptor, type MigratableVm, type PostcopyVm } from '../vm.js';
import { decodeBitmap, encodeBitmap } from './bitmap-codec.js';
import { ActivityWatchdog, WatchedChannel, closeWhenLate, inMs, resolveDeadlines, timerOn, type MigrationDeadlines, type ResolvedDeadlines } from './deadlines.js';
import { deferred } from './deferred.js';

export interface IncomingOptions {
  /** Resume the machine once everything is verified and loaded (default true; `false` leaves it paused, like `-S`). Post-copy always resumes it. */
  readonly autoStart?: boolean;
  /** Per-frame size limits (defaults: 1 MiB of pages, 16 MiB of device state, 64 KiB control). */
  readonly limits?: FrameLimits;
  /** Progress of the incoming side. */
  readonly observer?: Observer<IncomingEvent>;
  /** Post-copy recovery: when the connection drops while the machine already runs here, wait for the source on a new channel. */
  readonly reconnect?: () => Promise<MigrationChannel>;
  /** Multifd: where the source's extra page channels arrive (e.g. `() => listener.accept()`). */
  readonly multifd?: { readonly accept: () => Promise<MigrationChannel> };
  /**
   * How long to wait on the source: setup (30 s), a stall — no byte from the
   * source on any of its connections (30 s) —, post-copy recovery (60 s);
   * `false` turns one off.
   */
  readonly deadlines?: MigrationDeadlines;
  /** Time source and timers for the deadlines (default: host time). Simulations pass a manual clock's. */
  readonly timing?: MigrationTiming;
}

export type IncomingEvent =
  | { readonly type: 'header'; readonly descriptor: MachineDescriptor; readonly mode: string }
  | { readonly type: 'pages'; readonly pages: AppliedPages; readonly bytesRead: number }
  | { readonly type: 'postcopy'; readonly missingPages: number }
  | { readonly type: 'postcopy-paused'; readonly error: Error }
  | { readonly type: 'postcopy-recovered'; readonly missingPages: number };

export interface IncomingResult {
  readonly descriptor: MachineDescriptor;
  readonly mode: 'live' | 'offline';
  readonly pages: AppliedPages;
  readonly bytesRead: number;
  /** True when the machine ran here before all pages arrived. */
  readonly postcopy: boolean;
  /** Page requests sent for pages the running guest needed first. */
  readonly pageRequests: number;
  /** Connections lost and recovered during post-copy. */
  readonly recoveries: number;
}

/**
 * Receives a migration stream into `vm`, which must be paused. Checks the
 * configuration before any page moves, validates every frame, and resumes
 * the machine only after the end marker, with memory and device state fully
 * loaded (or, in post-copy, once the source hands over, fetching the pages
 * still missing on demand). On any failure it throws a typed error
 * (MigrationStreamError, MigrationIncompatibleError, MigrationCancelledError,
 * MigrationPeerError, MigrationTimeoutError), tells the source when it can,
 * and leaves a machine that had not started paused. A source that goes
 * silent or stops reading is given up on after `deadlines` (the connection
 * is then closed).
 */
export async function receiveMigration(vm: MigratableVm, channel: MigrationChannel, options: IncomingOptions = {}): Promise<IncomingResult> {
  if (vm.running) throw new MigrationOptionsError('the destination machine must be paused while it receives a migration');
  return new IncomingMigration(vm, channel, options, resolveDeadlines(options.deadlines)).run();
}

class IncomingMigration {
  private reader: FrameReader;
  private writer: FrameWriter;
  private readonly limits: FrameLimits;
  private readonly observer: Observer<IncomingEvent>;
  private readonly pages: AppliedPages = { normal: 0, zero: 0, xbzrle: 0 };
  private readonly scratch = new Uint8Array(PAGE_SIZE);
  private readonly pageCount: number;
  private deviceState: unknown;
  private sawDeviceState = false;
  private id = '';
  /** Post-copy: pages not arrived yet. */
  private missing: Uint32Array | undefined;
  private readonly requested = new Set<number>();
  private pageRequests = 0;
  private recoveries = 0;
  private bytesBefore = 0;
  private lanes: Array<{ channel: WatchedChannel; reader: FrameReader; done: Promise<void> }> = [];
  /** Rejects when a multifd channel fails, so the main loop stops waiting. */
  private readonly laneFailure = deferred<never>();
  /** The main connection, cut off when a deadline passes. */
  private channel: WatchedChannel;
  private readonly timing: MigrationTiming;
  /** Where the migration is, for the timeouts' errors. */
  private phase: MigrationPhase = 'setup';
  /** Rejects when a deadline ends the migration, for the waits that are not on a connection (accept, reconnect). */
  private readonly abandoned = deferred<never>();
  /** No byte from the source for `stallMs`, on any of its connections. */
  private readonly watchdog: ActivityWatchdog;
  private readonly setupTimer: Timer;

  constructor(
    private readonly vm: MigratableVm,
    channel: MigrationChannel,
    private readonly options: IncomingOptions,
    private readonly deadlines: ResolvedDeadlines,
  ) {
    this.timing = options.timing ?? hostTiming();
    this.watchdog = new ActivityWatchdog(this.timing, deadlines.stallNs, () => this.onStall());
    this.setupTimer = timerOn(this.timing, () => this.abandon(new MigrationTimeoutError('setup', 'setup', `setup did not finish within ${inMs(deadlines.setupNs!)} ms`)));
    this.channel = this.watched(channel);
    this.limits = options.limits ?? DEFAULT_FRAME_LIMITS;
    this.reader = new FrameReader(this.channel, this.limits);
    this.writer = new FrameWriter(this.channel);
    this.observer = options.observer ?? ignoreEvents;
    this.pageCount = Math.floor(vm.memory.size / PAGE_SIZE);
  }

  async run(): Promise<IncomingResult> {
    if (this.deadlines.setupNs !== undefined) this.setupTimer.arm(this.timing.now() + this.deadlines.setupNs);
    this.watchdog.start();
    try {
      if (this.channel.duplex) await this.writer.writePreamble();
      await this.reader.readPreamble();
      const header = await this.readHeader();
      this.observer({ type: 'header', descriptor: header.descriptor, mode: header.mode });
      const mismatches = checkCompatibility(header.descriptor, this.vm.describe());
      if (header.multifd > 0 && this.options.multifd === undefined) mismatches.push(`the source sends over ${header.multifd} multifd channels; this destination accepts none`);
      if (mismatches.length > 0) throw new MigrationIncompatibleError(mismatches);
      if (this.channel.duplex) await this.writer.writeFrame(FrameType.Accept);
      if (header.multifd > 0) await this.openLanes(header.multifd);
      this.setupTimer.cancel();
      this.phase = 'precopy';
      await this.receiveFrames();
      if (this.missing === undefined) {
        this.restoreDevices();
        // Confirm before running: a source that cannot be told (it stopped reading) resumes its own copy, so this one must not run.
        if (this.channel.duplex) await this.writer.writeFrame(FrameType.Complete);
        if (this.options.autoStart ?? true) this.vm.resume();
      } else {
        (this.vm as PostcopyVm).endPostcopy();
        this.missing = undefined;
        // The machine is whole and already runs here; the source stays paused whether or not it hears this.
        if (this.channel.duplex) await this.writer.writeFrame(FrameType.Complete).catch(() => {});
      }
      return {
        descriptor: header.descriptor,
        mode: header.mode,
        pages: this.pages,
        bytesRead: this.bytesBefore + this.reader.bytesRead,
        postcopy: this.postcopyStarted,
        pageRequests: this.pageRequests,
        recoveries: this.recoveries,
      };
    } catch (error) {
      // A post-copy machine that can no longer get its missing pages must not run on.
      if (this.missing !== undefined && this.vm.running) this.vm.pause();
      if (this.channel.duplex && !(error instanceof MigrationCancelledError)) {
        const refused = error instanceof MigrationIncompatibleError;
        const reason = refused ? error.mismatches.join('; ') : error instanceof Error ? error.message : String(error);
        await this.writer.writeJson(refused ? FrameType.Refuse : FrameType.Error, { reason }).catch(() => {});
      }
      throw error instanceof TsvirtError ? error : new MigrationPeerError('the migration connection failed', { cause: error });
    } finally {
      this.watchdog.stop();
      this.setupTimer.cancel();
      for (const lane of this.lanes) lane.channel.destroy();
    }
  }

  /** Wraps a connection of this migration: what arrives on it is the source's sign of life. */
  private watched(channel: MigrationChannel): WatchedChannel {
    return new WatchedChannel(channel, () => this.watchdog.touch());
  }

  /** Nothing arrived for `stallMs`: in post-copy with a way to reconnect the connection counts as lost, otherwise the migration is over. */
  private onStall(): void {
    const error = new MigrationTimeoutError(this.phase, 'stall', `no data from the source for ${inMs(this.deadlines.stallNs!)} ms`);
    if (this.phase === 'postcopy' && this.options.reconnect !== undefined) this.channel.expire(error);
    else this.abandon(error);
  }

  /** A deadline passed: every wait fails with `error` and every connection is closed. */
  private abandon(error: MigrationTimeoutError): void {
    if (!this.abandoned.settled) this.abandoned.reject(error);
    this.channel.expire(error);
    for (const lane of this.lanes) lane.channel.expire(error);
  }

  /** Awaits `work`, which is not an operation on a connection, unless a deadline ends the migration first. */
  private unlessAbandoned<T>(work: Promise<T>): Promise<T> {
    return Promise.race([work, this.abandoned.promise]);
  }

  /** Multifd: accepts the page channels, checks each belongs to this migration, and reads them alongside the main one. */
  private async openLanes(count: number): Promise<void> {
    if (this.options.multifd === undefined) throw new MigrationIncompatibleError([`the source sends over ${count} multifd channels; this destination accepts none`]);
    const seen = new Set<number>();
    for (let opened = 0; opened < count; opened++) {
      const accepting = openChannel(() => this.options.multifd!.accept());
      let channel: WatchedChannel;
      try {
        channel = this.watched(await this.unlessAbandoned(accepting));
      } catch (error) {
        closeWhenLate(accepting);
        throw error;
      }
      const reader = new FrameReader(channel, this.limits);
      this.lanes.push({ channel, reader, done: Promise.resolve() });
      await reader.readPreamble();
      const frame = await reader.next();
      if (frame === null || frame.type !== FrameType.ChannelHello) throw new MigrationStreamError('protocol', 'a multifd channel that does not start with its hello');
      const hello = StateReader.of(parseJson(frame), 'hello');
      if (hello.string('id') !== this.id) throw new MigrationStreamError('protocol', 'a multifd channel from another migration');
      const index = hello.uint('index', count - 1);
      if (seen.has(index)) throw new MigrationStreamError('protocol', `multifd channel ${index} opened twice`);
      seen.add(index);
      const lane = this.lanes[this.lanes.length - 1]!;
      lane.done = this.readLane(reader, index);
      lane.done.catch((error: unknown) => this.laneFailure.reject(error));
    }
  }

  private async readLane(reader: FrameReader, index: number): Promise<void> {
    const counts: AppliedPages = { normal: 0, zero: 0, xbzrle: 0 };
    for (;;) {
      const frame = await reader.next();
      if (frame === null) throw new MigrationStreamError('truncated', `multifd channel ${index} ended before its end marker`);
      if (frame.type === FrameType.RamPages) {
        applyRamPages(frame.payload, this.vm.memory, this.laneScratch, counts);
      } else if (frame.type === FrameType.ChannelEnd) {
        checkEnd(parseJson(frame), counts);
        this.pages.normal += counts.normal;
        this.pages.zero += counts.zero;
        this.pages.xbzrle += counts.xbzrle;
        return;
      } else {
        throw new MigrationStreamError('protocol', `unexpected ${frameTypeName(frame.type)} frame on multifd channel ${index}`);
      }
    }
  }

  private readonly laneScratch = new Uint8Array(PAGE_SIZE);

  private postcopyStarted = false;

  private async receiveFrames(): Promise<void> {
    for (;;) {
      let frame: Frame;
      try {
        frame = await this.nextFrame();
      } catch (error) {
        if (this.missing !== undefined && this.options.reconnect !== undefined && isConnectionLoss(error)) {
          await this.recover(error as Error);
          continue;
        }
        throw error;
      }
      if (frame.type === FrameType.RamPages) {
        if (this.sawDeviceState && this.missing === undefined) throw new MigrationStreamError('protocol', 'RAM pages after the device state');
        applyRamPages(frame.payload, this.vm.memory, this.scratch, this.pages, this.missing);
        this.observer({ type: 'pages', pages: { ...this.pages }, bytesRead: this.reader.bytesRead });
      } else if (frame.type === FrameType.DeviceState) {
        if (this.sawDeviceState) throw new MigrationStreamError('protocol', 'a second device state');
        this.deviceState = parseJson(frame);
        this.sawDeviceState = true;
        this.phase = 'switchover';
      } else if (frame.type === FrameType.PostcopyStart) {
        if (this.lanes.length > 0) throw new MigrationStreamError('protocol', 'post-copy over multifd');
        await this.startPostcopy(frame);
      } else if (frame.type === FrameType.End) {
        if (!this.sawDeviceState) throw new MigrationStreamError('protocol', 'end marker without a device state');
        if (this.missing !== undefined && countBits(this.missing) > 0) {
          throw new MigrationStreamError('protocol', `end marker with ${countBits(this.missing)} page(s) never sent`);
        }
        // Every page channel must have delivered all its pages before the counts can add up.
        await Promise.race([Promise.all(this.lanes.map((lane) => lane.done)), this.laneFailure.promise, this.abandoned.promise]);
        if (this.recoveries === 0) checkEnd(parseJson(frame), this.pages);
        break;
      } else if (frame.type === FrameType.Cancel) {
        throw new MigrationCancelledError('the source cancelled the migration');
      } else if (frame.type === FrameType.Error) {
        throw new MigrationPeerError('the source failed and abandoned the migration');
      } else {
        throw new MigrationStreamError('protocol', `unexpected ${frameTypeName(frame.type)} frame ${frame.sequence}`);
      }
    }
    if (!this.channel.duplex && (await this.reader.next()) !== null) throw new MigrationStreamError('protocol', 'data after the end marker');
  }

  /** The source handed over: run now, with the listed pages still to come. */
  private async startPostcopy(frame: Frame): Promise<void> {
    if (!this.channel.duplex) throw new MigrationStreamError('protocol', 'post-copy needs a two-way channel');
    if (!this.sawDeviceState || this.missing !== undefined) throw new MigrationStreamError('protocol', 'post-copy start out of order');
    if (!supportsPostcopy(this.vm)) throw new MigrationIncompatibleError(['the destination machine cannot run post-copy']);
    const missing = this.readBitmap(frame);
    this.restoreDevices();
    this.missing = missing;
    this.postcopyStarted = true;
    this.phase = 'postcopy';
    this.vm.beginPostcopy({
      isMissing: (page) => this.missing !== undefined && page >= 0 && page < this.pageCount && (this.missing[page >>> 5]! & (1 << (page & 31))) !== 0,
      fault: (page) => this.requestPage(page),
    });
    this.vm.resume();
    this.observer({ type: 'postcopy', missingPages: countBits(missing) });
    await this.writer.writeFrame(FrameType.PostcopyRunning);
  }

  private requestPage(page: number): void {
    if (this.missing === undefined || this.requested.has(page) || !Number.isInteger(page) || page < 0 || page >= this.pageCount) return;
    if ((this.missing[page >>> 5]! & (1 << (page & 31))) === 0) return;
    this.requested.add(page);
    this.pageRequests++;
    this.sendRequests([page]);
  }

  private sendRequests(pages: number[]): void {
    if (pages.length === 0) return;
    const payload = new Uint8Array(pages.length * 4);
    const view = new DataView(payload.buffer);
    pages.forEach((page, index) => view.setUint32(index * 4, page, true));
    // A lost request is re-sent after recovery; nothing to wait for here.
    this.writer.writeFrame(FrameType.PageRequest, payload).catch(() => {});
  }

  /** Post-copy recovery, within `deadlines.recoveryMs`: a new connection, the source proves it is the same migration, we say what is still missing. */
  private async recover(error: Error): Promise<void> {
    this.observer({ type: 'postcopy-paused', error });
    this.phase = 'postcopy-recovery';
    this.channel.destroy();
    this.bytesBefore += this.reader.bytesRead;
    const limit = this.deadlines.recoveryNs;
    const timer = timerOn(this.timing, () => this.abandon(new MigrationTimeoutError('postcopy-recovery', 'recovery', `no recovery within ${inMs(limit!)} ms`)));
    if (limit !== undefined) timer.arm(this.timing.now() + limit);
    // Waiting for the source to come back is the recovery deadline's business, not a stall.
    this.watchdog.stop();
    try {
      await this.resumeOn(openChannel(() => this.options.reconnect!()));
    } finally {
      timer.cancel();
    }
    this.phase = 'postcopy';
  }

  private async resumeOn(connecting: Promise<MigrationChannel>): Promise<void> {
    try {
      this.channel = this.watched(await this.unlessAbandoned(connecting));
    } catch (error) {
      closeWhenLate(connecting);
      throw error;
    }
    this.watchdog.start();
    this.reader = new FrameReader(this.channel, this.limits);
    this.writer = new FrameWriter(this.channel);
    await this.writer.writePreamble();
    await this.reader.readPreamble();
    const frame = await this.nextFrame();
    if (frame.type !== FrameType.Resume) throw new MigrationStreamError('protocol', `a resumed connection starts with ${frameTypeName(frame.type)}, not Resume`);
    const resume = StateReader.of(parseJson(frame), 'resume');
    if (resume.string('id') !== this.id) throw new MigrationStreamError('protocol', 'a resumed connection from another migration');
    await this.writer.writeFrame(FrameType.Missing, encodeBitmap(this.missing!));
    this.recoveries++;
    // Requests in flight when the connection dropped are asked again.
    const pending = [...this.requested].filter((page) => (this.missing![page >>> 5]! & (1 << (page & 31))) !== 0);
    this.sendRequests(pending);
    this.observer({ type: 'postcopy-recovered', missingPages: countBits(this.missing!) });
  }

  private readBitmap(frame: Frame): Uint32Array {
    const bitmap = decodeBitmap(frame.payload, this.pageCount);
    if (bitmap === undefined) throw new MigrationStreamError('malformed', `${frameTypeName(frame.type)}: not a bitmap of ${this.pageCount} pages`);
    return bitmap;
  }

  private restoreDevices(): void {
    try {
      this.vm.restoreDevices(this.deviceState);
    } catch (error) {
      if (error instanceof StateError) throw new MigrationStreamError('malformed', `device state: ${error.message}`, { cause: error });
      throw error;
    }
  }

  private async nextFrame(): Promise<Frame> {
    const frame = await Promise.race([this.reader.next(), this.laneFailure.promise, this.abandoned.promise]);
    if (frame === null) throw new MigrationStreamError('truncated', 'the stream ended before its end marker');
    return frame;
  }

  private async readHeader(): Promise<{ descriptor: MachineDescriptor; mode: 'live' | 'offline'; multifd: number }> {
    const frame = await this.nextFrame();
    if (frame.type === FrameType.Cancel) throw new MigrationCancelledError('the source cancelled the migration');
    if (frame.type !== FrameType.Header) throw new MigrationStreamError('protocol', `the stream starts with a ${frameTypeName(frame.type)} frame, not a header`);
    try {
      const value = parseJson(frame);
      const header = StateReader.open(value, 'header', STREAM_VERSION);
      if (header.uint('pageSize', 1 << 30) !== PAGE_SIZE) header.fail('pageSize', `page size must be ${PAGE_SIZE}`);
      const mode = header.string('mode', ['live', 'offline']) as 'live' | 'offline';
      this.id = header.string('id');
      const multifd = header.has('multifd') ? header.uint('multifd', 16) : 0;
      const descriptor = readMachineDescriptor((value as { descriptor?: unknown }).descriptor, 'header.descriptor');
      if (descriptor.memorySize !== this.vm.memory.size) {
        throw new MigrationIncompatibleError([`memory size ${descriptor.memorySize} (destination memory: ${this.vm.memory.size})`]);
      }
      return { descriptor, mode, multifd };
    } catch (error) {
      if (error instanceof StateError) throw new MigrationStreamError('malformed', error.message, { cause: error });
      throw error;
    }
  }
}

function checkEnd(value: unknown, pages: AppliedPages): void {
  try {
    const end = StateReader.of(value, 'end');
    const normal = end.uint('normal', Number.MAX_SAFE_INTEGER);
    const zero = end.uint('zero', Number.MAX_SAFE_INTEGER);
    const xbzrle = end.uint('xbzrle', Number.MAX_SAFE_INTEGER);
    if (normal !== pages.normal || zero !== pages.zero || xbzrle !== pages.xbzrle) {
      throw new MigrationStreamError(
        'protocol',
        `the end marker counts ${normal}/${zero}/${xbzrle} normal/zero/delta pages, the stream carried ${pages.normal}/${pages.zero}/${pages.xbzrle}`,
      );
    }
  } catch (error) {
    if (error instanceof StateError) throw new MigrationStreamError('malformed', error.message, { cause: error });
    throw error;
  }
}

export function parseJson(frame: Frame): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(frame.payload));
  } catch (error) {
    throw new MigrationStreamError('malformed', `${frameTypeName(frame.type)} frame ${frame.sequence} is not valid JSON`, { cause: error });
  }
}
