import { startMigration, startOfflineMigration, type OutgoingMigration } from '../engine/source.js';
import { receiveMigration, type IncomingOptions, type IncomingResult } from '../engine/destination.js';
import type { MigrationOptions } from '../engine/options.js';
import type { MigrationStats } from '../engine/stats.js';
import type { Clock } from '@tsvirt/interfaces';
import { MigrationPeerError } from '../errors.js';
import type { MigrationChannel, MigrationTiming } from '../transport/channel.js';
import { createChannelPair, type AdvancingClock } from '../transport/memory-channel.js';
import type { MigratableVm } from '../vm.js';

/**
 * Timing on a manual clock: sleeping advances it (which fires the guests'
 * timers), and the engine's timeouts are timers on it (when it has
 * `createTimer`, as a `ManualClock` does), so they fire in simulated time.
 */
export function simulatedTiming(clock: AdvancingClock & { createTimer?: Clock['createTimer'] }): MigrationTiming {
  return {
    now: () => clock.now(),
    sleep: async (nanoseconds) => clock.advance(Math.max(0, Math.ceil(nanoseconds))),
    ...(clock.createTimer === undefined ? {} : { createTimer: (callback: () => void) => clock.createTimer!(callback) }),
  };
}

export interface SimulatedMigrationOptions {
  readonly source: MigratableVm;
  readonly destination: MigratableVm;
  /** A manual clock (`ManualClock` fits): it moves only as bytes cross the link. */
  readonly clock: AdvancingClock & Clock;
  /** The simulated link's bandwidth. */
  readonly bytesPerSecond: number;
  readonly offline?: boolean;
  readonly migration?: Omit<MigrationOptions, 'timing'>;
  readonly incoming?: IncomingOptions;
  /**
   * Clock times (ns) at which the connection drops. Both sides get
   * `reconnect` functions that hand them the two ends of a fresh link, so
   * post-copy recovery can be exercised.
   */
  readonly dropConnectionAt?: readonly number[];
  /** Multifd: this many extra page channels, each a link of the same bandwidth on the same clock. */
  readonly multifd?: number;
  /** Called once the migration started (to cancel it from a timer, say). */
  readonly onStart?: (migration: OutgoingMigration) => void;
}

export interface SimulatedMigrationResult {
  readonly stats: MigrationStats;
  readonly sourceError: Error | undefined;
  readonly incoming: IncomingResult | undefined;
  readonly incomingError: unknown;
}

/**
 * Migrates `source` to `destination` over an in-memory pair that simulates a
 * link of `bytesPerSecond` on `clock`: time passes only as bytes cross the
 * link, so bandwidth, downtime and the guest's dirtying are exact and
 * repeatable.
 */
export async function runSimulatedMigration(options: SimulatedMigrationOptions): Promise<SimulatedMigrationResult> {
  const link = { clock: options.clock, bytesPerSecond: options.bytesPerSecond };
  const connections = [createChannelPair({ link })];
  const [sourceEnd, destinationEnd] = connections[0]!;
  // The n-th reconnection of either side gets its end of the n-th fresh link.
  const reconnections = [0, 0];
  const reconnect = (side: 0 | 1) => async (): Promise<MigrationChannel> => {
    const generation = ++reconnections[side]!;
    while (connections.length <= generation) connections.push(createChannelPair({ link }));
    return connections[generation]![side];
  };
  for (const time of options.dropConnectionAt ?? []) {
    options.clock.createTimer(() => connections[connections.length - 1]![0].destroy(new MigrationPeerError('simulated connection drop'))).arm(time);
  }
  const postcopy = options.migration?.postcopy === undefined ? undefined : { ...options.migration.postcopy, reconnect: options.migration.postcopy.reconnect ?? reconnect(0) };
  const lanes = Array.from({ length: options.multifd ?? 0 }, () => createChannelPair({ link }));
  let connected = 0;
  let accepted = 0;
  const multifd = lanes.length === 0 ? undefined : { channels: lanes.length, connect: async () => lanes[connected++]![0] };
  const migrationOptions: MigrationOptions = { ...options.migration, postcopy, multifd, timing: simulatedTiming(options.clock) };
  const migration = options.offline
    ? startOfflineMigration(options.source, sourceEnd, migrationOptions)
    : startMigration(options.source, sourceEnd, migrationOptions);
  options.onStart?.(migration);
  const incoming = receiveMigration(options.destination, destinationEnd, {
    timing: simulatedTiming(options.clock),
    reconnect: reconnect(1),
    multifd: { accept: async () => lanes[accepted++]![1] },
    ...options.incoming,
  }).then(
    (result) => ({ result, error: undefined as unknown }),
    (error: unknown) => ({ result: undefined, error }),
  );
  const stats = await migration.done;
  const received = await incoming;
  for (const [sourceSide] of connections) sourceSide.destroy();
  return { stats, sourceError: migration.error, incoming: received.result, incomingError: received.error };
}
