import { BlockError } from '@tsvirt/interfaces';

/** What was wrong with what an NBD server sent. */
export type NbdProtocolProblem =
  /** The greeting or the option haggling broke the protocol. */
  | 'bad-handshake'
  /** A reply that starts with neither reply magic. */
  | 'bad-magic'
  /** A reply for a request that was never sent (or already answered). */
  | 'unknown-handle'
  /** A structured reply chunk longer than anything the request allows. */
  | 'chunk-too-long'
  /** A chunk type this request cannot have, or one the protocol does not define. */
  | 'unexpected-chunk'
  /** Read data or a hole outside the request, empty, or overlapping another chunk. */
  | 'bad-read-chunk'
  /** A successful read whose chunks do not cover the whole request. */
  | 'incomplete-read'
  /** A malformed error chunk (error 0, or a message longer than the chunk). */
  | 'bad-error-chunk'
  /** A block status chunk that is malformed, repeated, or for a context never negotiated. */
  | 'bad-block-status'
  /** A block status extent of length zero (no progress is possible). */
  | 'zero-length-extent'
  /** A block status extent that starts at or after the end of the request. */
  | 'extent-beyond-request'
  /** A successful block status reply without any extent. */
  | 'missing-block-status';

/**
 * An NBD server sent something the protocol forbids. The connection cannot be
 * trusted after it, so it is closed and every request still waiting fails with
 * this error. A `BlockError` (`BLOCK_IO`) like every other disk failure.
 */
export class NbdProtocolError extends BlockError {
  readonly problem: NbdProtocolProblem;

  constructor(problem: NbdProtocolProblem, message: string) {
    super('BLOCK_IO', `NBD protocol error: ${message}`);
    this.problem = problem;
  }
}

/** An NBD server that did not finish the handshake in time, or fell silent while a reply was due. */
export class NbdTimeoutError extends BlockError {
  readonly phase: 'connect' | 'reply';
  readonly timeoutMs: number;

  constructor(phase: 'connect' | 'reply', timeoutMs: number) {
    super('BLOCK_IO', phase === 'connect' ? `the NBD server did not complete the handshake within ${timeoutMs} ms` : `the NBD server sent nothing for ${timeoutMs} ms while a reply was due`);
    this.phase = phase;
    this.timeoutMs = timeoutMs;
  }
}
