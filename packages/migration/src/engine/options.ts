import { ignoreEvents, type Observer } from '@tsvirt/interfaces';
import { MigrationOptionsError } from '../errors.js';
import { hostTiming, type MigrationChannel, type MigrationTiming } from '../transport/channel.js';
import { resolveDeadlines, type MigrationDeadlines, type ResolvedDeadlines } from './deadlines.js';
import type { MigrationEvent } from './stats.js';

export interface AutoConvergeOptions {
  /** First throttle step, percent (QEMU `cpu-throttle-initial`, default 20). */
  readonly initial?: number;
  /** Added at each further step (QEMU `cpu-throttle-increment`, default 10). */
  readonly increment?: number;
  /** Ceiling (QEMU `max-cpu-throttle`, default 99). */
  readonly max?: number;
  /** Throttle when the guest dirties more than this percent of what was sent in the period (QEMU `throttle-trigger-threshold`, default 50). */
  readonly triggerThreshold?: number;
}

export interface MigrationOptions {
  /** Time source and sleeper (default: host time). Simulations pass a manual clock. */
  readonly timing?: MigrationTiming;
  /** The longest pause the guest may see at switchover, ms (QEMU `downtime-limit`, default 300). */
  readonly downtimeLimitMs?: number;
  /** Bytes per second the stream may use (QEMU `max-bandwidth`); unlimited by default. */
  readonly maxBandwidth?: number;
  /** Throttle the vCPUs when the guest dirties memory faster than it is sent. Off by default. */
  readonly autoConverge?: boolean | AutoConvergeOptions;
  /** Send re-dirtied pages as deltas (cache size in bytes, QEMU default 64 MiB). Off by default. */
  readonly xbzrle?: boolean | { readonly cacheSize?: number };
  /**
   * `afterMs` after a live migration started (setup included): `suspend`
   * pauses the guest and finishes offline (libvirt `--timeout
   * --timeout-suspend`); `abort` gives up with a `MigrationTimeoutError` and
   * leaves the source running (libvirt `--timeout`, abort). It fires in any
   * phase up to the end marker; post-copy is past it.
   */
  readonly timeout?: { readonly afterMs: number; readonly action: 'suspend' | 'abort' };
  /**
   * How long to wait on the destination: setup (30 s), a stall (30 s: a
   * write it does not drain, an answer it does not send), post-copy recovery
   * (60 s); `false` turns one off.
   */
  readonly deadlines?: MigrationDeadlines;
  /**
   * Post-copy: after `afterPasses` pre-copy passes (default 1, the bulk pass)
   * without converging, hand the machine over and let the destination fetch
   * what is still missing on demand. `reconnect` gives a new channel when
   * the connection drops in post-copy (without it such a drop loses the machine).
   */
  readonly postcopy?: { readonly afterPasses?: number; readonly reconnect?: () => Promise<MigrationChannel> };
  /**
   * Multifd: RAM pages travel over `channels` extra connections opened with
   * `connect` (page p on channel p mod n), the main channel keeps the
   * control frames and the device state. Not with post-copy.
   */
  readonly multifd?: { readonly channels: number; readonly connect: () => Promise<MigrationChannel> };
  /** Target size of one RamPages frame, bytes (default 256 KiB). */
  readonly batchBytes?: number;
  readonly observer?: Observer<MigrationEvent>;
}

export interface ResolvedOptions {
  readonly timing: MigrationTiming;
  readonly downtimeLimitNs: number;
  readonly maxBandwidth: number;
  readonly autoConverge: Required<AutoConvergeOptions> | undefined;
  readonly xbzrleCacheSize: number | undefined;
  readonly timeout: { readonly afterNs: number; readonly action: 'suspend' | 'abort' } | undefined;
  readonly deadlines: ResolvedDeadlines;
  readonly batchBytes: number;
  readonly multifd: { readonly channels: number; readonly connect: () => Promise<MigrationChannel> } | undefined;
  readonly postcopy: { readonly afterPasses: number; readonly reconnect: (() => Promise<MigrationChannel>) | undefined } | undefined;
  readonly observer: Observer<MigrationEvent>;
}

const MIB = 1024 * 1024;

export function resolveOptions(options: MigrationOptions): ResolvedOptions {
  const positive = (value: number, name: string): number => {
    if (!(Number.isFinite(value) && value > 0)) throw new MigrationOptionsError(`${name} must be a positive number, got ${value}`);
    return value;
  };
  const percent = (value: number, name: string): number => {
    if (!Number.isInteger(value) || value < 1 || value > 99) throw new MigrationOptionsError(`${name} must be an integer percentage in [1, 99], got ${value}`);
    return value;
  };
  const auto = options.autoConverge;
  const autoConverge =
    auto === undefined || auto === false
      ? undefined
      : {
          initial: percent((auto === true ? undefined : auto.initial) ?? 20, 'autoConverge.initial'),
          increment: percent((auto === true ? undefined : auto.increment) ?? 10, 'autoConverge.increment'),
          max: percent((auto === true ? undefined : auto.max) ?? 99, 'autoConverge.max'),
          triggerThreshold: percent((auto === true ? undefined : auto.triggerThreshold) ?? 50, 'autoConverge.triggerThreshold'),
        };
  const xbzrle = options.xbzrle;
  const batchBytes = Math.floor(positive(options.batchBytes ?? 256 * 1024, 'batchBytes'));
  if (batchBytes < 8192 || batchBytes > MIB) throw new MigrationOptionsError(`batchBytes must be in [8192, ${MIB}], got ${batchBytes}`);
  const multifd = options.multifd;
  if (multifd !== undefined && (!Number.isInteger(multifd.channels) || multifd.channels < 1 || multifd.channels > 16)) {
    throw new MigrationOptionsError(`multifd.channels must be an integer in [1, 16], got ${multifd.channels}`);
  }
  if (multifd !== undefined && options.postcopy !== undefined) throw new MigrationOptionsError('multifd and post-copy cannot be combined');
  const timeout = options.timeout;
  if (timeout !== undefined && timeout.action !== 'suspend' && timeout.action !== 'abort') {
    throw new MigrationOptionsError(`timeout.action must be 'suspend' or 'abort', got ${String(timeout.action)}`);
  }
  return {
    multifd,
    timing: options.timing ?? hostTiming(),
    downtimeLimitNs: positive(options.downtimeLimitMs ?? 300, 'downtimeLimitMs') * 1e6,
    maxBandwidth: options.maxBandwidth === undefined ? Infinity : positive(options.maxBandwidth, 'maxBandwidth'),
    autoConverge,
    xbzrleCacheSize: xbzrle === undefined || xbzrle === false ? undefined : positive((xbzrle === true ? undefined : xbzrle.cacheSize) ?? 64 * MIB, 'xbzrle.cacheSize'),
    timeout: timeout === undefined ? undefined : { afterNs: positive(timeout.afterMs, 'timeout.afterMs') * 1e6, action: timeout.action },
    deadlines: resolveDeadlines(options.deadlines),
    batchBytes,
    postcopy:
      options.postcopy === undefined
        ? undefined
        : { afterPasses: Math.max(1, Math.floor(positive(options.postcopy.afterPasses ?? 1, 'postcopy.afterPasses'))), reconnect: options.postcopy.reconnect },
    observer: options.observer ?? ignoreEvents,
  };
}
