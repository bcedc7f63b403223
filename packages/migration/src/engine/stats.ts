import { PAGE_SIZE } from '@tsvirt/interfaces';
import type { XbzrleCacheStats } from '../stream/xbzrle-cache.js';

/** The states of QEMU's `MigrationStatus` that this engine goes through. */
export type MigrationStatus = 'none' | 'setup' | 'active' | 'device' | 'postcopy-active' | 'postcopy-paused' | 'completed' | 'failed' | 'cancelling' | 'cancelled';

/** Why the source stopped iterating and paused the guest. */
export type SwitchoverReason = 'converged' | 'timeout' | 'offline' | 'postcopy';

export interface RamStats {
  /** Bytes sent so far (the whole stream, framing included). */
  readonly transferred: number;
  /** Bytes of RAM still to send (dirty pages not yet sent). */
  readonly remaining: number;
  /** Bytes of guest RAM. */
  readonly total: number;
  /** Pages sent as zero pages. */
  readonly duplicate: number;
  /** Pages sent whole. */
  readonly normal: number;
  readonly normalBytes: number;
  /** Pages dirtied per second, measured at the last dirty-log sync. */
  readonly dirtyPagesRate: number;
  /** Measured throughput, megabits per second. */
  readonly mbps: number;
  /** Dirty-log syncs so far. */
  readonly dirtySyncCount: number;
  readonly pageSize: number;
  /** Pre-copy passes over memory (the first is the bulk pass). */
  readonly iterations: number;
}

/** A snapshot of a migration, shaped like QEMU's `query-migrate` (times in milliseconds). */
export interface MigrationStats {
  readonly status: MigrationStatus;
  readonly totalTime: number;
  readonly setupTime: number;
  /** Time the guest was paused; set once the migration completed. */
  readonly downtime: number | undefined;
  /** What the downtime would be if the switchover happened now. */
  readonly expectedDowntime: number;
  readonly ram: RamStats;
  readonly cpuThrottlePercentage: number;
  /** Present when XBZRLE is on. */
  readonly xbzrleCache: XbzrleCacheStats | undefined;
  readonly switchoverReason: SwitchoverReason | undefined;
  /** The error message of a failed migration. */
  readonly errorDesc: string | undefined;
}

/** The statistics as QMP's `query-migrate` spells them (hyphenated keys, QEMU's field names). */
export function toQueryMigrate(stats: MigrationStats): Record<string, unknown> {
  const ram = stats.ram;
  const result: Record<string, unknown> = {
    status: stats.status,
    'total-time': Math.round(stats.totalTime),
    'setup-time': Math.round(stats.setupTime),
    'expected-downtime': Math.round(stats.expectedDowntime),
    ram: {
      transferred: ram.transferred,
      remaining: ram.remaining,
      total: ram.total,
      duplicate: ram.duplicate,
      normal: ram.normal,
      'normal-bytes': ram.normalBytes,
      'dirty-pages-rate': Math.round(ram.dirtyPagesRate),
      mbps: ram.mbps,
      'dirty-sync-count': ram.dirtySyncCount,
      'page-size': ram.pageSize,
    },
  };
  if (stats.downtime !== undefined) result.downtime = Math.round(stats.downtime);
  if (stats.cpuThrottlePercentage > 0) result['cpu-throttle-percentage'] = stats.cpuThrottlePercentage;
  if (stats.xbzrleCache !== undefined) {
    const cache = stats.xbzrleCache;
    result['xbzrle-cache'] = {
      'cache-size': cache.cacheSize,
      bytes: cache.bytes,
      pages: cache.pages,
      'cache-miss': cache.cacheMiss,
      'cache-miss-rate': cache.cacheMissRate,
      'encoding-rate': cache.encodingRate,
      overflow: cache.overflow,
    };
  }
  if (stats.errorDesc !== undefined) result['error-desc'] = stats.errorDesc;
  return result;
}

/** Events a migration reports to its observer (for a progress bar, logs). */
export type MigrationEvent =
  | { readonly type: 'status'; readonly status: MigrationStatus }
  | { readonly type: 'progress'; readonly stats: MigrationStats }
  | { readonly type: 'iteration'; readonly iteration: number; readonly dirtyPages: number; readonly stats: MigrationStats }
  | { readonly type: 'throttle'; readonly percentage: number }
  | { readonly type: 'switchover'; readonly reason: SwitchoverReason; readonly remainingBytes: number };

export const EMPTY_RAM_STATS: RamStats = {
  transferred: 0,
  remaining: 0,
  total: 0,
  duplicate: 0,
  normal: 0,
  normalBytes: 0,
  dirtyPagesRate: 0,
  mbps: 0,
  dirtySyncCount: 0,
  pageSize: PAGE_SIZE,
  iterations: 0,
};
