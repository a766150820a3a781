import { describe, expect, it } from 'vitest';
import { LockstepClientError } from '../../src/client/errors.ts';
import { waitForGrant } from '../../src/client/grant-waiter.ts';
import { LeaderSearch } from '../../src/client/leader-search.ts';
import { Resends, withKey } from '../../src/client/keyed-calls.ts';
import { Leases } from '../../src/client/leases.ts';
import { LockHandle } from '../../src/client/lock-handle.ts';
import { type BelievedLock, settleLocks } from '../../src/client/resume-plan.ts';
import type { LostLock } from '../../src/client/types.ts';
import type { Grant, NotRestored } from '../../src/protocol/wire.ts';

// The decisions of a drop and a resume without a socket: which node to try next, what becomes of
// the locks the client held (held again, given back, lost and why), of its handles, and of the
// keyed calls whose reply the drop lost.

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

const believed = (g: Grant, until = Date.now() + 60_000, fences = [g.fence]): BelievedLock => ({
  grant: g,
  fences,
  until,
});
const gone = (fn: number, fence: number, reason: NotRestored['reason']): NotRestored => ({
  resource: lock(fn, 'write', fence).resource,
  mode: 'write',
  fence,
  reason,
});

describe('settleLocks: what a resume gave back against what the client believes it holds', () => {
  const NOW = Date.now();

  it('keeps exact matches, gives back what is not believed, and loses what did not come back as it was', () => {
    const plan = settleLocks(
      [
        believed(lock(1, 'write', 10)),
        believed(lock(2, 'read', 11)),
        believed(lock(3, 'write', 12)),
        believed(lock(4, 'write', 20)),
      ],
      [
        lock(1, 'write', 10), // believed exactly: kept
        lock(2, 'write', 11), // another mode: not the grant the handles name
        lock(4, 'write', 19), // an older fence: the upgrade or re-grant after it was not recorded
        lock(5, 'write', 13), // released before the crash, or granted by a lost reply
      ],
      [],
      NOW,
    );
    expect(plan.kept).toEqual([lock(1, 'write', 10)]);
    expect(plan.release).toEqual([lock(2, 'write', 11), lock(4, 'write', 19), lock(5, 'write', 13)]);
    expect(plan.lost).toEqual([
      { resource: lock(2, 'read', 11).resource, mode: 'read', fences: [11], reason: 'fence-moved' },
      { resource: lock(3, 'write', 12).resource, mode: 'write', fences: [12], reason: 'not-restored' },
      { resource: lock(4, 'write', 20).resource, mode: 'write', fences: [20], reason: 'fence-moved' },
    ]);
  });

  it("names a new leader's reason for a record it kept back, if the record is the handle's", () => {
    const plan = settleLocks(
      [
        believed(lock(1, 'write', 10)),
        believed(lock(2, 'write', 11)),
        believed(lock(3, 'read', 7), undefined, [7, 12]),
      ],
      [],
      [gone(1, 10, 'expired'), gone(2, 9, 'fence-moved'), gone(3, 12, 'resource-gone')],
      NOW,
    );
    expect(plan.lost.map((l) => l.reason)).toEqual(['expired', 'not-restored', 'resource-gone']);
    expect(plan.lost[2]?.fences).toEqual([7, 12]);
  });

  it("without a record, tells an expiry by the client's own clock", () => {
    const plan = settleLocks(
      [believed(lock(1, 'write', 10), NOW - 1), believed(lock(2, 'write', 11), NOW + 1)],
      [],
      undefined,
      NOW,
    );
    expect(plan.lost.map((l) => l.reason)).toEqual(['expired', 'not-restored']);
  });

  it('with nothing given back, loses everything; with nothing believed, gives everything back', () => {
    expect(settleLocks([believed(lock(1, 'write', 1), NOW - 1)], [], [], NOW)).toEqual({
      kept: [],
      release: [],
      lost: [{ resource: lock(1, 'write', 1).resource, mode: 'write', fences: [1], reason: 'expired' }],
    });
    expect(settleLocks([], [lock(1, 'write', 1)], [], NOW)).toEqual({
      kept: [],
      release: [lock(1, 'write', 1)],
      lost: [],
    });
  });
});

/** Leases with no renewal, the losses they report, and a handle on one write lock. */
function handleOn(g: Grant) {
  const lost: LostLock[] = [];
  const leases = new Leases({ renew: async () => undefined, failed: () => undefined, lost: (l) => lost.push(l) }, 0.5);
  leases.add([g], 60_000, false);
  const owner = {
    releaseHeld: async () => [],
    renewHeld: async () => [],
    downgradeHeld: async () => [],
  };
  const handle = new LockHandle(owner, leases, 'main', [g], undefined);
  return { leases, lost, handle, owner };
}

describe('a handle across a drop', () => {
  it('is suspended while the socket is down, not held, and held again once given back', () => {
    const { leases, lost, handle } = handleOn(lock(1, 'write', 10));
    expect(handle.state).toBe('held');
    leases.suspend();
    expect(handle.state).toBe('suspended');
    expect(handle.held).toBe(false);
    expect(handle.fences).toEqual({ 1: 10 });
    leases.settle([lock(1, 'write', 10)]);
    expect(handle.state).toBe('held');
    expect(handle.signal.aborted).toBe(false);
    expect(lost).toEqual([]);
  });

  it('is lost when not given back: its signal aborts with LOCK_LOST naming the lock, and its fences stay the old ones', () => {
    const { leases, lost, handle } = handleOn(lock(1, 'write', 10));
    leases.suspend();
    leases.lose([lock(1, 'write', 10).resource], 'expired');
    leases.settle([]);
    const info = { resource: lock(1, 'write', 10).resource, mode: 'write', fences: [10], reason: 'expired' };
    expect(handle.state).toBe('lost');
    expect(handle.held).toBe(false);
    expect(handle.lost).toEqual(info);
    expect(lost).toEqual([info]);
    expect(handle.signal.aborted).toBe(true);
    expect(handle.signal.reason).toMatchObject({ type: 'LOCK_LOST', retryable: false, data: info });
    // The server refuses these: the lock is not held under them any more.
    expect(handle.fences).toEqual({ 1: 10 });
    // Granted again later is another hold: the lost handle stays lost.
    leases.add([lock(1, 'write', 30)], 60_000, false);
    expect(handle.state).toBe('lost');
  });

  it('a reentrant handle shares the loss; a released lock is not lost', () => {
    const { leases, lost, handle, owner } = handleOn(lock(1, 'write', 10));
    leases.add([lock(2, 'write', 11)], 60_000, false);
    const again = new LockHandle(owner, leases, 'main', [lock(1, 'write', 10)], undefined);
    const other = new LockHandle(owner, leases, 'main', [lock(2, 'write', 11)], undefined);
    leases.remove([lock(2, 'write', 11).resource]);
    expect(other.state).toBe('released');
    leases.lose([lock(1, 'write', 10).resource, lock(2, 'write', 11).resource], 'session-lost');
    expect(lost.map((l) => l.resource)).toEqual([lock(1, 'write', 10).resource]);
    expect([handle.signal.aborted, again.signal.aborted, other.signal.aborted]).toEqual([true, true, false]);
  });
});

describe('a keyed call asked again', () => {
  it("carries the fences it was first sent with, whatever becomes of the caller's object", () => {
    const fences = { 1: 10 };
    const sent = withKey({ ops: [], fences });
    fences[1] = 30;
    expect(sent.fences).toEqual({ 1: 10 });
    expect(withKey({ key: 'mine', fences }).key).toBe('mine');
  });

  function waiting(resends: Resends, sessionId: string, sent: string[], name: string, signal?: AbortSignal) {
    const lost = LockstepClientError.local('DISCONNECTED', `${name}: connection closed`);
    const call = resends.after(lost, {
      method: 'edit.apply',
      request: async (channel) => {
        sent.push(`${name}@${channel as unknown as string}`);
        return name;
      },
      connection: undefined as never,
      resends,
      sessionId,
      deadline: Date.now() + 60_000,
      signal,
    });
    return call;
  }

  it("goes out on the resumed session's socket, in the order made; another session's fails with the drop", async () => {
    const resends = new Resends();
    const sent: string[] = [];
    const a = waiting(resends, 's1', sent, 'a');
    const b = waiting(resends, 's0', sent, 'b');
    const c = waiting(resends, 's1', sent, 'c');
    resends.resend('socket2' as never, 's1');
    // Sent at once, before anything the resume does after it.
    expect(sent).toEqual(['a@socket2', 'c@socket2']);
    await expect(a).resolves.toBe('a');
    await expect(b).rejects.toMatchObject({ type: 'DISCONNECTED', message: 'b: connection closed' });
    await expect(c).resolves.toBe('c');
  });

  it('fails with the drop when the session is lost or the client closed, and at once when aborted', async () => {
    const resends = new Resends();
    const sent: string[] = [];
    const lostSession = waiting(resends, 's1', sent, 'a');
    resends.fail();
    await expect(lostSession).rejects.toMatchObject({ type: 'DISCONNECTED' });
    const abort = new AbortController();
    const aborted = waiting(resends, 's1', sent, 'b', abort.signal);
    abort.abort();
    await expect(aborted).rejects.toMatchObject({ type: 'ABORTED' });
    resends.close();
    await expect(waiting(resends, 's1', sent, 'c')).rejects.toMatchObject({ type: 'DISCONNECTED' });
    resends.resend('socket2' as never, 's1');
    expect(sent).toEqual([]);
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
