import { TsvirtError } from '@tsvirt/interfaces';

/** Why a request to the merging scanner was refused. Nothing was changed. */
export type KsmErrorCode =
  /** A knob value out of its range, or of the wrong type. */
  | 'KSM_KNOB'
  /** A guest id that is unknown, or already registered. */
  | 'KSM_GUEST'
  /** A guest memory that cannot be merged with the others (different frame pool). */
  | 'KSM_POOL';

export class KsmError extends TsvirtError {
  constructor(code: KsmErrorCode, message: string) {
    super(code, message);
  }
}
