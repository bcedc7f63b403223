import { MAX_PAYLOAD } from './protocol.js';

/**
 * How much an NBD server holds for its clients. A request is in flight from
 * the moment its header is read until its whole reply has been handed to the
 * kernel; its bytes are what the server may hold for it meanwhile (a write's
 * payload, a read's data and chunk headers, a block status reply, an error
 * message), reserved before anything is read or allocated.
 */
export interface NbdServerLimits {
  /** The largest read, write or cache a client may ask for; advertised in NBD_INFO_BLOCK_SIZE (qemu-nbd: 32 MiB). */
  maxPayload: number;
  /** Requests in flight on one connection (qemu-nbd: 16). */
  requestsPerConnection: number;
  /** Bytes in flight on one connection; at least one request of `maxPayload`. */
  bytesPerConnection: number;
  /** Requests in flight on all connections together. */
  totalRequests: number;
  /** Bytes in flight on all connections together. */
  totalBytes: number;
  /** A connection's requests are not read while more than this waits in its socket's write buffer. */
  writeBufferBytes: number;
}

export const DEFAULT_NBD_SERVER_LIMITS: Readonly<NbdServerLimits> = {
  maxPayload: MAX_PAYLOAD,
  requestsPerConnection: 16,
  bytesPerConnection: 2 * MAX_PAYLOAD,
  totalRequests: 256,
  totalBytes: 16 * MAX_PAYLOAD,
  writeBufferBytes: 8 << 20,
};

/** What every request may cost besides its payload: reply headers and an error message. */
export const REQUEST_OVERHEAD = 1024;

/**
 * The most a read of `length` bytes may cost: its data, and for a structured
 * reply up to 32 bytes of framing per piece (a hole, at least 4 KiB long, and
 * the data after it).
 */
export function readCost(length: number): number {
  return REQUEST_OVERHEAD + length + 32 * (2 * Math.ceil(length / 4096) + 1);
}

/** Fills in and checks the limits (an operator's mistake here is thrown at once, not found by a client). */
export function resolveLimits(given: Partial<NbdServerLimits> = {}): NbdServerLimits {
  const limits: NbdServerLimits = { ...DEFAULT_NBD_SERVER_LIMITS };
  for (const name of Object.keys(limits) as Array<keyof NbdServerLimits>) {
    const value = given[name];
    if (value !== undefined) limits[name] = value;
  }
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`NBD server limit ${name} must be a positive integer, not ${value}`);
  }
  if (limits.maxPayload > MAX_PAYLOAD) throw new RangeError(`NBD server limit maxPayload is at most ${MAX_PAYLOAD} (the protocol's recommended maximum)`);
  if (limits.maxPayload < 512) throw new RangeError('NBD server limit maxPayload is at least 512');
  if (limits.bytesPerConnection < readCost(limits.maxPayload)) {
    throw new RangeError(`NBD server limit bytesPerConnection must hold one request of maxPayload: at least ${readCost(limits.maxPayload)}`);
  }
  if (limits.totalBytes < limits.bytesPerConnection) throw new RangeError('NBD server limit totalBytes must be at least bytesPerConnection');
  if (limits.totalRequests < limits.requestsPerConnection) throw new RangeError('NBD server limit totalRequests must be at least requestsPerConnection');
  return limits;
}

/** Requests and bytes in flight: one connection's, and everyone's. */
export interface InFlight {
  requests: number;
  bytes: number;
  totalRequests: number;
  totalBytes: number;
}

interface Waiter {
  connection: ConnectionBudget;
  bytes: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

/**
 * The server-wide budget. A connection that cannot get room waits; waiters
 * blocked only by the shared total are served first come, first served, so a
 * large request is not starved by small ones, while a connection blocked by
 * its own limit (its client not reading) never holds up the others.
 */
export class SharedBudget {
  requests = 0;
  bytes = 0;
  private readonly waiters: Waiter[] = [];

  constructor(readonly limits: NbdServerLimits) {}

  /** A new connection's share; `onChange` hears every change of what it (and so the server) holds. */
  connection(onChange: () => void = () => {}): ConnectionBudget {
    return new ConnectionBudget(this, onChange);
  }

  /** @internal Takes room at once if it is free and nobody waits ahead for the total; otherwise queues. */
  acquire(connection: ConnectionBudget, bytes: number): Promise<void> | undefined {
    // A waiter whose own connection has room is waiting for the total: it goes first.
    const queuedForTotal = this.waiters.some((waiter) => this.fitsConnection(waiter.connection, waiter.bytes));
    if (this.fitsConnection(connection, bytes) && !queuedForTotal && this.fitsTotal(bytes)) {
      this.take(connection, bytes);
      return undefined;
    }
    return new Promise((resolve, reject) => this.waiters.push({ connection, bytes, resolve, reject }));
  }

  /** @internal */
  release(connection: ConnectionBudget, requests: number, bytes: number): void {
    connection.requests -= requests;
    connection.bytes -= bytes;
    this.requests -= requests;
    this.bytes -= bytes;
    connection.onChange();
    this.wake();
  }

  /** @internal Drops a closed connection's waiter. */
  cancel(connection: ConnectionBudget, error: Error): void {
    for (let index = this.waiters.length - 1; index >= 0; index--) {
      const waiter = this.waiters[index]!;
      if (waiter.connection !== connection) continue;
      this.waiters.splice(index, 1);
      waiter.reject(error);
    }
    this.wake();
  }

  private wake(): void {
    for (let index = 0; index < this.waiters.length; ) {
      const waiter = this.waiters[index]!;
      if (!this.fitsConnection(waiter.connection, waiter.bytes)) {
        index++;
        continue;
      }
      if (!this.fitsTotal(waiter.bytes)) return;
      this.waiters.splice(index, 1);
      this.take(waiter.connection, waiter.bytes);
      waiter.resolve();
    }
  }

  private fitsConnection(connection: ConnectionBudget, bytes: number): boolean {
    return connection.requests < this.limits.requestsPerConnection && connection.bytes + bytes <= this.limits.bytesPerConnection;
  }

  private fitsTotal(bytes: number): boolean {
    return this.requests < this.limits.totalRequests && this.bytes + bytes <= this.limits.totalBytes;
  }

  private take(connection: ConnectionBudget, bytes: number): void {
    connection.requests++;
    connection.bytes += bytes;
    this.requests++;
    this.bytes += bytes;
    connection.onChange();
  }
}

/** One connection's share: what it holds, given back request by request or all at once when it closes. */
export class ConnectionBudget {
  requests = 0;
  bytes = 0;
  private closed: Error | undefined;

  constructor(
    private readonly shared: SharedBudget,
    /** @internal */ readonly onChange: () => void,
  ) {}

  /**
   * Room for one request of `bytes`: a ticket at once, or a promise of one when
   * the connection or the server is full. Releasing the ticket twice, or after
   * the connection closed, gives nothing back twice.
   */
  acquire(bytes: number): { release: () => void } | Promise<{ release: () => void }> {
    const ticket = () => {
      let held = true;
      return {
        release: () => {
          if (!held || this.closed) return;
          held = false;
          this.shared.release(this, 1, bytes);
        },
      };
    };
    if (this.closed) return Promise.reject(this.closed);
    const waiting = this.shared.acquire(this, bytes);
    return waiting === undefined ? ticket() : waiting.then(ticket);
  }

  inFlight(): InFlight {
    return { requests: this.requests, bytes: this.bytes, totalRequests: this.shared.requests, totalBytes: this.shared.bytes };
  }

  /** Gives back everything this connection holds and fails its waiting request. */
  close(error: Error): void {
    if (this.closed) return;
    this.shared.cancel(this, error);
    this.closed = error;
    if (this.requests > 0 || this.bytes > 0) this.shared.release(this, this.requests, this.bytes);
  }
}
