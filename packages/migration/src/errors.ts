import { TsvirtError } from '@tsvirt/interfaces';

/** Why a migration stream was refused. */
export type MigrationStreamErrorReason =
  /** Not a tsvirt migration stream (bad preamble). */
  | 'not-a-stream'
  /** A stream version this receiver does not read. */
  | 'version'
  /** A frame whose checksum does not match its bytes. */
  | 'checksum'
  /** The stream ended before its end marker. */
  | 'truncated'
  /** A frame larger than its type allows (refused before buffering it). */
  | 'frame-too-large'
  /** A frame out of order, of an unknown type, or with a bad sequence number. */
  | 'protocol'
  /** A frame whose payload does not decode (bad page index, bad delta, bad JSON). */
  | 'malformed';

/** A migration stream that failed validation. Nothing it carried was put into a running machine. */
export class MigrationStreamError extends TsvirtError {
  readonly reason: MigrationStreamErrorReason;

  constructor(reason: MigrationStreamErrorReason, message: string, options?: { cause?: unknown }) {
    super(`MIGRATION_STREAM_${reason.toUpperCase().replace(/-/g, '_')}`, `migration stream refused: ${message}`, options);
    this.reason = reason;
  }
}

/** The destination cannot run the machine the source describes (the configuration check failed). */
export class MigrationIncompatibleError extends TsvirtError {
  /** One line per mismatch. */
  readonly mismatches: readonly string[];

  constructor(mismatches: readonly string[]) {
    super('MIGRATION_INCOMPATIBLE', `destination cannot run this machine: ${mismatches.join('; ')}`);
    this.mismatches = mismatches;
  }
}

/** The migration was cancelled (by the caller on the source, or by the source as seen by the destination). */
export class MigrationCancelledError extends TsvirtError {
  constructor(message = 'migration cancelled') {
    super('MIGRATION_CANCELLED', message);
  }
}

/** The other side reported a failure, or the connection failed. */
export class MigrationPeerError extends TsvirtError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('MIGRATION_PEER', message, options);
  }
}

/** Options that make no sense (negative bandwidth, zero downtime limit...). */
export class MigrationOptionsError extends TsvirtError {
  constructor(message: string) {
    super('MIGRATION_OPTIONS', message);
  }
}

/** The phases of a migration, as a timeout names them. */
export type MigrationPhase =
  /** Connecting, the header and the destination's accept, opening the multifd channels. */
  | 'setup'
  /** Pre-copy passes over RAM while the guest runs. */
  | 'precopy'
  /** Stop-and-copy: the last pages, the device state, the end marker and the destination's confirmation. */
  | 'switchover'
  /** The destination runs and fetches the pages still missing. */
  | 'postcopy'
  /** A new connection after a post-copy connection was lost. */
  | 'postcopy-recovery';

/** Which limit ran out. */
export type MigrationTimeoutKind =
  /** The `timeout` option (libvirt's `--timeout`) with the `abort` action. */
  | 'migration'
  /** `deadlines.setupMs` (or `connectMigration`'s `timeoutMs`): setup took too long. */
  | 'setup'
  /** `deadlines.stallMs`: the peer stopped reading or stopped sending. */
  | 'stall'
  /** `deadlines.recoveryMs`: post-copy recovery took too long. */
  | 'recovery';

/**
 * A migration ended by one of its time limits. Before the destination may
 * have run, the source keeps running (it is resumed if it had been paused for
 * the switch-over).
 */
export class MigrationTimeoutError extends TsvirtError {
  readonly phase: MigrationPhase;
  readonly kind: MigrationTimeoutKind;

  constructor(phase: MigrationPhase, kind: MigrationTimeoutKind, message: string) {
    super('MIGRATION_TIMEOUT', `migration timed out in ${phase}: ${message}`);
    this.phase = phase;
    this.kind = kind;
  }
}

/**
 * True for failures of the connection itself (as opposed to a bad stream),
 * after which post-copy can recover on a new one. A connection on which
 * nothing moves any more (a stall timeout) counts as lost.
 */
export function isConnectionLoss(error: unknown): boolean {
  return (
    error instanceof MigrationPeerError ||
    (error instanceof MigrationStreamError && error.reason === 'truncated') ||
    (error instanceof MigrationTimeoutError && error.kind === 'stall') ||
    !(error instanceof TsvirtError)
  );
}
