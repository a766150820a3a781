import { describe, expect, it } from 'vitest';
import { LockstepClientError } from '../../src/client/errors.ts';
import { waitForGrant } from '../../src/client/grant-waiter.ts';
import { LeaderSearch } from '../../src/client/leader-search.ts';
import { Leases } from '../../src/client/leases.ts';
import { reconcile } from '../../src/client/reconcile.ts';
import type { Grant } from '../../src/protocol/wire.ts';

// The decisions of a failover without a socket: which node to try next, and what to do with the
// locks a new leader restored.

const expiresAt = new Date(Date.now() + 60_000).toISOString();
const lock = (fn: number, mode: 'read' | 'write', fence: number): Grant => ({
  resource: { program: 'main', function: fn },
  mode,
  fence,
  expiresAt,
});

const notLeader = (leader: string | null, retryAfterMs = 800) =>
  new LockstepClientError({
    type: 'NOT_LEADER',
    code: 421,
    message: 'not the leader',
    retryable: true,
    retryAfterMs,
    data: { leader },
  });
const unreachable = LockstepClientError.local('CONNECT_FAILED', 'cannot connect');

describe('reconcile: restored locks against the believed ones', () => {
  it('keeps exact matches, gives back what is not believed, and re-acquires what did not come back', () => {
    const believed = [lock(1, 'write', 10), lock(2, 'read', 11), lock(3, 'write', 12), lock(4, 'write', 20)];
    const restored = [
      lock(1, 'write', 10), // believed exactly: kept
      lock(2, 'write', 11), // another mode: not the grant the client holds
      lock(4, 'write', 19), // an older fence: the upgrade or re-grant after it was not recorded
      lock(5, 'write', 13), // released before the crash, or granted by a lost reply
    ];
    const plan = reconcile(believed, restored);
    expect(plan.kept).toEqual([lock(1, 'write', 10)]);
    expect(plan.release).toEqual([lock(2, 'write', 11), lock(4, 'write', 19), lock(5, 'write', 13)]);
    expect(plan.reacquire).toEqual([lock(2, 'read', 11), lock(3, 'write', 12), lock(4, 'write', 20)]);
  });

  it('with nothing restored, re-acquires everything; with nothing believed, releases everything', () => {
    expect(reconcile([lock(1, 'write', 1)], [])).toEqual({ kept: [], release: [], reacquire: [lock(1, 'write', 1)] });
    expect(reconcile([], [lock(1, 'write', 1)])).toEqual({ kept: [], release: [lock(1, 'write', 1)], reacquire: [] });
  });
});

describe('a re-acquired lock carries on the lost one', () => {
  it("the old grant's handles hold it and name its new fence", () => {
    const leases = new Leases({ renew: async () => undefined, failed: () => undefined }, 0.5);
    leases.add([lock(1, 'write', 10)], 60_000, true);
    const terms = leases.terms(lock(1, 'write', 10).resource);
    expect(terms).toEqual({ ttlMs: 60_000, auto: true, fences: [10] });
    leases.remove([lock(1, 'write', 10).resource]);
    leases.add([lock(1, 'write', 30)], 60_000, true);
    expect(leases.heldUnder(lock(1, 'write', 10).resource, 10)).toBe(false);
    leases.carryOn(lock(1, 'write', 30).resource, terms?.fences ?? []);
    expect(leases.heldUnder(lock(1, 'write', 10).resource, 10)).toBe(true);
    expect(leases.get(lock(1, 'write', 10).resource)?.fence).toBe(30);
    leases.clear();
  });
});

describe('LeaderSearch', () => {
  const [a, b, c] = ['ws://a/ws', 'ws://b/ws', 'ws://c/ws'];

  it('follows the leader a standby names, even one not in the list, at once', () => {
    const s = new LeaderSearch([a, b, c], 2_000);
    expect(s.current).toBe(a);
    expect(s.failed(notLeader('ws://elsewhere/ws'))).toEqual({ url: 'ws://elsewhere/ws', waitMs: 0, roundOver: false });
    expect(s.current).toBe('ws://elsewhere/ws');
  });

  it('without a leader, waits what is left of the lease (capped) and tries the next node; a round ends after each failed once', () => {
    const s = new LeaderSearch([a, b, c], 2_000);
    expect(s.failed(notLeader(null, 800))).toEqual({ url: b, waitMs: 800, roundOver: false });
    expect(s.failed(notLeader(null, 60_000))).toEqual({ url: c, waitMs: 2_000, roundOver: false });
    expect(s.failed(unreachable)).toEqual({ url: a, waitMs: 0, roundOver: true });
    // A new round starts counting again.
    expect(s.failed(unreachable)).toEqual({ url: b, waitMs: 0, roundOver: false });
  });

  it('a followed leader that fails sends it on to the next listed node; names pointing at each other cannot loop', () => {
    const s = new LeaderSearch([a, b], 2_000);
    expect(s.failed(notLeader(b))).toMatchObject({ url: b, roundOver: false });
    expect(s.failed(notLeader(a))).toMatchObject({ url: a, roundOver: false });
    // Follows are bounded by the number of nodes: from here on a NOT_LEADER counts as a failure.
    expect(s.failed(notLeader(b))).toMatchObject({ url: b, roundOver: false });
    expect(s.failed(notLeader(a))).toMatchObject({ url: a, roundOver: true });
  });

  it('with one URL (a load balancer) a round is that URL and the leader it names', () => {
    const s = new LeaderSearch([a], 2_000);
    expect(s.failed(notLeader(b))).toEqual({ url: b, waitMs: 0, roundOver: false });
    expect(s.failed(unreachable)).toEqual({ url: a, waitMs: 0, roundOver: true });
    s.connected();
    expect(s.failed(unreachable)).toEqual({ url: a, waitMs: 0, roundOver: true });
  });
});

describe('a waiting acquire suspended across a failover', () => {
  function waiting(signal?: AbortSignal) {
    const cancelled: string[] = [];
    const { waiter, promise } = waitForGrant({
      method: 'lock.acquire',
      signal,
      onQueue: undefined,
      onError: () => undefined,
      cancel: async (ticket) => cancelled.push(ticket),
      release: async () => undefined,
      done: (grants) => grants,
    });
    return { waiter, promise, cancelled };
  }

  it('is granted under its new ticket once queued again', async () => {
    const w = waiting();
    w.waiter.queued('t1', []);
    w.waiter.suspend();
    expect(w.waiter.done).toBe(false);
    w.waiter.queued('t2', []);
    w.waiter.granted([lock(1, 'write', 5)], [undefined]);
    await expect(w.promise).resolves.toEqual([lock(1, 'write', 5)]);
    expect(w.waiter.done).toBe(true);
  });

  it('aborted while suspended, rejects at once without a cancel: it has no ticket anywhere', async () => {
    const abort = new AbortController();
    const w = waiting(abort.signal);
    w.waiter.queued('t1', []);
    w.waiter.suspend();
    abort.abort();
    await expect(w.promise).rejects.toMatchObject({ type: 'ABORTED' });
    expect(w.cancelled).toEqual([]);
    expect(w.waiter.done).toBe(true);
  });
});
