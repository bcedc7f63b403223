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

/** A live migration that hit its timeout with the `abort` action; the source keeps running. */
export class MigrationTimeoutError extends TsvirtError {
  constructor(message: string) {
    super('MIGRATION_TIMEOUT', message);
  }
}

/** True for failures of the connection itself (as opposed to a bad stream), after which post-copy can recover on a new one. */
export function isConnectionLoss(error: unknown): boolean {
  return error instanceof MigrationPeerError || (error instanceof MigrationStreamError && error.reason === 'truncated') || !(error instanceof TsvirtError);
}
