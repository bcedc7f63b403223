import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { type ConnectionBudget, DEFAULT_NBD_SERVER_LIMITS, type NbdServerLimits, readCost, resolveLimits, SharedBudget } from './flow-control.js';

const small: NbdServerLimits = { maxPayload: 512, requestsPerConnection: 4, bytesPerConnection: 4000, totalRequests: 6, totalBytes: 6000, writeBufferBytes: 1 << 20 };

type Ticket = { release: () => void };

/** Acquires and reports whether the ticket came at once, later (after the returned promise), or not yet. */
function take(connection: ConnectionBudget, bytes: number): { ticket: () => Ticket | undefined; settled: Promise<void> } {
  const result = connection.acquire(bytes);
  if (!(result instanceof Promise)) return { ticket: () => result, settled: Promise.resolve() };
  let ticket: Ticket | undefined;
  return { ticket: () => ticket, settled: result.then((granted) => void (ticket = granted), () => {}) };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('the NBD server budget', () => {
  it('a connection blocked by its own limit does not hold up another connection', async () => {
    const budget = new SharedBudget(small);
    const stuck = budget.connection();
    const other = budget.connection();
    for (let i = 0; i < 4; i++) expect(take(stuck, 10).ticket()).toBeDefined();
    const fifth = take(stuck, 10);
    expect(fifth.ticket()).toBeUndefined();
    expect(take(other, 10).ticket()).toBeDefined();
    await tick();
    expect(fifth.ticket()).toBeUndefined();
  });

  it('requests waiting for the total are served first come, first served: a large one is not starved by small ones', async () => {
    const budget = new SharedBudget(small);
    const [a, b, c] = [budget.connection(), budget.connection(), budget.connection()];
    const first = take(a, 3000).ticket()!;
    const second = take(b, 2500).ticket()!;
    const large = take(c, 3000);
    expect(large.ticket()).toBeUndefined();
    // Room for a small request is free, but the large one asked first.
    const small1 = take(a, 100);
    expect(small1.ticket()).toBeUndefined();
    first.release();
    await large.settled;
    expect(large.ticket()).toBeDefined();
    await tick();
    expect(small1.ticket()).toBeDefined();
    expect(budget.bytes).toBe(2500 + 3000 + 100);
    second.release();
  });

  it('closing a connection gives back all it holds and fails its waiting request; a late release gives nothing back twice', async () => {
    const budget = new SharedBudget(small);
    const leaving = budget.connection();
    const staying = budget.connection();
    const held = [take(leaving, 1000).ticket()!, take(leaving, 1000).ticket()!];
    take(staying, 500);
    let failure: unknown;
    const waiting = leaving.acquire(5000);
    expect(waiting).toBeInstanceOf(Promise);
    (waiting as Promise<Ticket>).catch((error: unknown) => (failure = error));
    leaving.close(new Error('gone'));
    await tick();
    expect(failure).toMatchObject({ message: 'gone' });
    expect({ requests: budget.requests, bytes: budget.bytes }).toEqual({ requests: 1, bytes: 500 });
    for (const ticket of held) ticket.release();
    expect({ requests: budget.requests, bytes: budget.bytes }).toEqual({ requests: 1, bytes: 500 });
    await expect(leaving.acquire(10)).rejects.toThrow('gone');
  });

  it('limits that cannot work are refused when the server is made', () => {
    expect(resolveLimits()).toEqual(DEFAULT_NBD_SERVER_LIMITS);
    expect(resolveLimits({ maxPayload: undefined })).toEqual(DEFAULT_NBD_SERVER_LIMITS);
    expect(() => resolveLimits({ maxPayload: 64 << 20 })).toThrow(RangeError);
    expect(() => resolveLimits({ bytesPerConnection: 1 << 20 })).toThrow(/bytesPerConnection/);
    expect(() => resolveLimits({ totalBytes: 1 << 20 })).toThrow(/totalBytes/);
    expect(() => resolveLimits({ requestsPerConnection: 0 })).toThrow(RangeError);
    expect(() => resolveLimits({ writeBufferBytes: Number.NaN })).toThrow(RangeError);
    expect(resolveLimits({ maxPayload: 1 << 20, bytesPerConnection: readCost(1 << 20) }).bytesPerConnection).toBe(readCost(1 << 20));
  });

  test.prop(
    [
      fc.array(
        fc.oneof(
          fc.record({ op: fc.constant('acquire' as const), connection: fc.nat({ max: 3 }), bytes: fc.integer({ min: 1, max: 4000 }) }),
          fc.record({ op: fc.constant('release' as const), pick: fc.nat() }),
          fc.record({ op: fc.constant('close' as const), connection: fc.nat({ max: 3 }) }),
        ),
        { maxLength: 80 },
      ),
    ],
    { numRuns: 200 },
  )('whatever the order of requests, releases and hang-ups: never above a limit, and all of it back at the end', async (operations) => {
    const budget = new SharedBudget(small);
    const connections = Array.from({ length: 4 }, () => budget.connection());
    const tickets: Ticket[] = [];
    const check = () => {
      expect(budget.requests).toBeLessThanOrEqual(small.totalRequests);
      expect(budget.bytes).toBeLessThanOrEqual(small.totalBytes);
      expect(budget.requests).toBeGreaterThanOrEqual(0);
      expect(budget.bytes).toBeGreaterThanOrEqual(0);
      for (const connection of connections) {
        expect(connection.requests).toBeLessThanOrEqual(small.requestsPerConnection);
        expect(connection.bytes).toBeLessThanOrEqual(small.bytesPerConnection);
      }
      expect(connections.reduce((sum, connection) => sum + connection.bytes, 0)).toBe(budget.bytes);
    };
    for (const operation of operations) {
      if (operation.op === 'acquire') {
        const result = connections[operation.connection]!.acquire(operation.bytes);
        if (result instanceof Promise) result.then((ticket) => tickets.push(ticket), () => {});
        else tickets.push(result);
      } else if (operation.op === 'release') {
        if (tickets.length > 0) tickets.splice(operation.pick % tickets.length, 1)[0]!.release();
      } else {
        connections[operation.connection]!.close(new Error('closed'));
      }
      await tick();
      check();
    }
    for (const connection of connections) connection.close(new Error('closed'));
    await tick();
    check();
    expect({ requests: budget.requests, bytes: budget.bytes }).toEqual({ requests: 0, bytes: 0 });
  });
});
