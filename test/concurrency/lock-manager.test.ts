import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/concurrency/fake-clock.ts';
import { KeyReused, LockManager, memoryFences } from '../../src/concurrency/index.ts';
import type { AcquireResult, LockEvents, LockManagerOptions } from '../../src/concurrency/index.ts';
import { LockstepError } from '../../src/protocol/errors.ts';
import type { Resource } from '../../src/protocol/resource.ts';
import { LOCK_EVENT_NAMES } from '../helpers/lock-events.ts';

const f = (n: number, program = 'main'): Resource => ({ program, function: n });
const structure = (program = 'main'): Resource => ({ program, structure: true });
const T0 = Date.UTC(2025, 0, 1);

type EventName = keyof LockEvents;
type Payload<K extends EventName> = Parameters<LockEvents[K]>[0];

function setup(opts: Partial<LockManagerOptions> = {}) {
  const clock = new FakeClock(T0);
  const locks = new LockManager({ clock, sessionName: (id) => `name-${id}`, ...opts });
  let log: Array<{ name: EventName; e: unknown }> = [];
  for (const name of LOCK_EVENT_NAMES) locks.on(name, (e: unknown) => log.push({ name, e }));
  return {
    clock,
    locks,
    /** Events since the last clear(), optionally of one kind. */
    events<K extends EventName>(name: K): Array<Payload<K>> {
      return log.filter((l) => l.name === name).map((l) => l.e as Payload<K>);
    },
    names(): EventName[] {
      return log.map((l) => l.name);
    },
    clear() {
      log = [];
    },
  };
}

function ticketOf(r: AcquireResult): string {
  if (r.status !== 'queued') throw new Error(`expected queued, got ${r.status}`);
  return r.ticket;
}

function fenceOf(r: AcquireResult, i = 0): number {
  if (r.status !== 'granted') throw new Error(`expected granted, got ${r.status}`);
  return r.grants[i]!.fence;
}

function caught(fn: () => unknown): LockstepError {
  try {
    fn();
  } catch (err) {
    if (err instanceof LockstepError) return err;
    throw err;
  }
  throw new Error('expected a LockstepError');
}

const W = (resources: Resource[], more: object = {}) => ({ resources, mode: 'write' as const, wait: true, ...more });
const R = (resources: Resource[], more: object = {}) => ({ resources, mode: 'read' as const, wait: true, ...more });

describe('requests', () => {
  it('sorts and de-duplicates resources and grants them together', () => {
    const { locks } = setup();
    const r = locks.acquire('a', W([f(3), structure(), f(1), f(3)]));
    expect(r.status).toBe('granted');
    if (r.status !== 'granted') return;
    expect(r.grants.map((g) => g.resource)).toEqual([structure(), f(1), f(3)]);
    expect(locks.holding('a').map((g) => g.resource)).toEqual([structure(), f(1), f(3)]);
  });

  it('rejects an empty resource list as a caller error', () => {
    const { locks } = setup();
    expect(() => locks.acquire('a', W([]))).toThrow(Error);
    expect(() => locks.acquire('a', W([]))).not.toThrow(LockstepError);
    expect(() => locks.release('a', [])).toThrow(Error);
  });

  it('holds nothing of a batch while it waits, then grants all of it in one event', () => {
    const { locks, events, clear } = setup();
    locks.acquire('a', W([f(2)]));
    const t = ticketOf(locks.acquire('b', W([f(1), f(2)])));
    expect(locks.holding('b')).toEqual([]);
    expect(locks.status().map((s) => [s.resource, s.queue.map((q) => q.ticket)])).toEqual([
      [f(1), [t]],
      [f(2), [t]],
    ]);
    clear();
    locks.release('a', [f(2)]);
    const granted = events('granted');
    expect(granted).toHaveLength(1);
    expect(granted[0]!.ticket).toBe(t);
    expect(granted[0]!.grants.map((g) => g.resource)).toEqual([f(1), f(2)]);
    expect(locks.holding('b').map((g) => g.resource)).toEqual([f(1), f(2)]);
    expect(locks.tickets('b')).toEqual([]);
  });
});

describe('fair queues', () => {
  it('grants strictly in FIFO order', () => {
    const { locks } = setup();
    locks.acquire('a', W([f(1)]));
    const tb = ticketOf(locks.acquire('b', W([f(1)])));
    const tc = ticketOf(locks.acquire('c', R([f(1)])));
    locks.release('a', [f(1)]);
    expect(locks.holding('b')).toHaveLength(1);
    expect(locks.tickets('c')).toEqual([
      expect.objectContaining({ ticket: tc, positions: [{ resource: f(1), position: 1 }] }),
    ]);
    expect(tb).not.toBe(tc);
    locks.release('b', [f(1)]);
    expect(locks.holding('c')).toHaveLength(1);
  });

  it('queues a compatible request behind anything already waiting (no writer starvation)', () => {
    const { locks } = setup();
    locks.acquire('a', R([f(1)]));
    locks.acquire('w', W([f(1)]));
    const r = locks.acquire('c', R([f(1)]));
    expect(r).toEqual({ status: 'queued', ticket: expect.any(String), positions: [{ resource: f(1), position: 2 }] });
    expect(locks.holding('c')).toEqual([]);
  });

  it('wakes every reader at the front up to the next writer, and nobody else', () => {
    const { locks, events, clear } = setup();
    locks.acquire('a', W([f(1)]));
    const t1 = ticketOf(locks.acquire('r1', R([f(1)])));
    const t2 = ticketOf(locks.acquire('r2', R([f(1)])));
    const t3 = ticketOf(locks.acquire('w3', W([f(1)])));
    const t4 = ticketOf(locks.acquire('r4', R([f(1)])));
    clear();
    locks.release('a', [f(1)]);
    expect(events('granted').map((g) => g.ticket)).toEqual([t1, t2]);
    expect(events('position').map((p) => [p.ticket, p.positions[0]!.position])).toEqual([
      [t3, 1],
      [t4, 2],
    ]);
    clear();
    locks.release('r1', [f(1)]);
    expect(events('granted')).toEqual([]);
    expect(events('position')).toEqual([]);
    locks.release('r2', [f(1)]);
    expect(events('granted').map((g) => g.ticket)).toEqual([t3]);
    clear();
    locks.release('w3', [f(1)]);
    expect(events('granted').map((g) => g.ticket)).toEqual([t4]);
  });

  it('lets a batch at the front block a later request even while that resource is free', () => {
    const { locks, events, clear } = setup();
    locks.acquire('a', W([f(2)]));
    const tb = ticketOf(locks.acquire('b', W([f(1), f(2)])));
    const r = locks.acquire('c', R([f(1)]));
    expect(r.status).toBe('queued');
    clear();
    locks.release('a', [f(2)]);
    expect(events('granted').map((g) => g.ticket)).toEqual([tb]);
    locks.release('b', [f(1), f(2)]);
    expect(locks.holding('c')).toHaveLength(1);
  });

  it('grants a batch only when it is at the front of every queue', () => {
    const { locks } = setup();
    locks.acquire('a', W([f(1)]));
    locks.acquire('x', W([f(2)]));
    ticketOf(locks.acquire('b', W([f(2)])));
    const tc = ticketOf(locks.acquire('c', W([f(1), f(2)])));
    locks.release('a', [f(1)]);
    expect(locks.tickets('c')[0]!.positions).toEqual([
      { resource: f(1), position: 1 },
      { resource: f(2), position: 2 },
    ]);
    locks.release('x', [f(2)]);
    expect(locks.holding('b')).toHaveLength(1);
    expect(locks.tickets('c')[0]!.ticket).toBe(tc);
    locks.release('b', [f(2)]);
    expect(locks.holding('c')).toHaveLength(2);
  });

  it('cascades: withdrawing the front ticket lets the one behind it run at once', () => {
    const { locks, events, clear } = setup();
    locks.acquire('a', R([f(1)]));
    const tb = ticketOf(locks.acquire('b', W([f(1)])));
    const tc = ticketOf(locks.acquire('c', R([f(1)])));
    clear();
    locks.cancel('b', tb);
    expect(events('cancelled')).toEqual([{ sessionId: 'b', ticket: tb, reason: 'cancel' }]);
    expect(events('granted').map((g) => g.ticket)).toEqual([tc]);
    expect(events('position')).toEqual([]);
  });

  it('cascades through batches: a grant on one resource frees the front of another', () => {
    const { locks, events, clear } = setup();
    locks.acquire('a', W([f(1)]));
    const tb = ticketOf(locks.acquire('b', R([f(1), f(2)])));
    const tc = ticketOf(locks.acquire('c', R([f(2), f(3)])));
    const td = ticketOf(locks.acquire('d', W([f(3)])));
    clear();
    locks.release('a', [f(1)]);
    expect(events('granted').map((g) => g.ticket)).toEqual([tb, tc]);
    expect(locks.tickets('d')[0]!.ticket).toBe(td);
  });

  it('reports a position only to tickets whose position changed, never the first one nor on grant', () => {
    const { locks, events, clear } = setup();
    locks.acquire('a', W([f(1), f(2)]));
    const tb = ticketOf(locks.acquire('b', W([f(1)])));
    const tc = ticketOf(locks.acquire('c', W([f(1), f(2)])));
    const td = ticketOf(locks.acquire('d', W([f(2)])));
    expect(events('position')).toEqual([]);
    expect(events('queued').map((q) => [q.ticket, q.positions.map((p) => p.position)])).toEqual([
      [tb, [1]],
      [tc, [2, 1]],
      [td, [2]],
    ]);
    clear();
    locks.cancel('b', tb);
    expect(events('position')).toEqual([
      {
        sessionId: 'c',
        ticket: tc,
        positions: [
          { resource: f(1), position: 1 },
          { resource: f(2), position: 1 },
        ],
      },
    ]);
    clear();
    locks.releaseAll('a');
    expect(events('granted').map((g) => g.ticket)).toEqual([tc]);
    expect(events('position')).toEqual([{ sessionId: 'd', ticket: td, positions: [{ resource: f(2), position: 1 }] }]);
  });
});

describe('coalesced position pushes (queuePushMs)', () => {
  const queue = (locks: LockManager, n: number) => {
    locks.acquire('h', W([f(1)]));
    return Array.from({ length: n }, (_, i) => ticketOf(locks.acquire(`w${i}`, W([f(1)]))));
  };
  const pushed = (events: ReturnType<typeof setup>['events']) =>
    events('position').map((e) => [e.ticket, e.positions.map((p) => p.position)]);

  it('pushes at once only to the ticket reaching position 1: a hand-over costs one push, not one per waiter', () => {
    const { locks, events, clear } = setup({ queuePushMs: 100 });
    const t = queue(locks, 100);
    clear();
    locks.release('h', [f(1)]);
    expect(events('granted').map((g) => g.ticket)).toEqual([t[0]]);
    expect(pushed(events)).toEqual([[t[1], [1]]]);
  });

  it('pushes the other moves once per interval with the latest positions, and the last change always', () => {
    const { locks, clock, events, clear } = setup({ queuePushMs: 100 });
    const t = queue(locks, 4);
    clear();
    locks.release('h', [f(1)]);
    clock.advance(40);
    locks.release('w0', [f(1)]);
    expect(pushed(events)).toEqual([
      [t[1], [1]],
      [t[2], [1]],
    ]);
    clear();
    clock.advance(59);
    expect(pushed(events)).toEqual([]);
    clock.advance(1);
    // t[3] went 4 -> 3 -> 2: one push, with where it stands now.
    expect(pushed(events)).toEqual([[t[3], [2]]]);
    clear();
    clock.advance(1000);
    expect(pushed(events)).toEqual([]);
    // A later move is pushed once more, an interval after it.
    const tx = ticketOf(locks.acquire('x', W([f(1)])));
    locks.cancel('w2', t[2]!);
    expect(pushed(events)).toEqual([[t[3], [1]]]);
    const ty = ticketOf(locks.acquire('y', W([f(1)])));
    locks.cancel('x', tx);
    clock.advance(99);
    expect(pushed(events)).toEqual([[t[3], [1]]]);
    clock.advance(1);
    expect(pushed(events)).toEqual([
      [t[3], [1]],
      [ty, [2]],
    ]);
  });

  it('pushes nothing to a ticket granted or withdrawn before its coalesced push', () => {
    const { locks, clock, events, clear } = setup({ queuePushMs: 100 });
    locks.acquire('h', W([f(1)]));
    locks.acquire('w', W([f(1)]));
    const r = ['r0', 'r1', 'r2'].map((id) => ticketOf(locks.acquire(id, R([f(1)]))));
    const tz = ticketOf(locks.acquire('z', W([f(1)])));
    clear();
    // w is granted; r0 reaches position 1; r1, r2 and z wait for the coalesced push.
    locks.release('h', [f(1)]);
    locks.cancel('z', tz);
    // The readers are granted together, r1 and r2 before their push was due.
    locks.release('w', [f(1)]);
    expect(
      events('granted')
        .map((g) => g.ticket)
        .slice(1),
    ).toEqual(r);
    clock.advance(100);
    expect(pushed(events)).toEqual([[r[0], [1]]]);
  });

  it('tells a waiter it is first again after an upgrade went in front of it and was granted', () => {
    const { locks, clock, events, clear } = setup({ queuePushMs: 100 });
    locks.acquire('a', R([f(1)], { wait: false }));
    locks.acquire('b', R([f(1)], { wait: false }));
    const tw = ticketOf(locks.acquire('w', W([f(1)])));
    // a's upgrade goes in front: w is 2, to be told with the coalesced push.
    ticketOf(locks.acquire('a', W([f(1)])));
    expect(pushed(events)).toEqual([]);
    clear();
    locks.release('b', [f(1)]);
    expect(events('granted').map((g) => g.sessionId)).toEqual(['a']);
    expect(pushed(events)).toEqual([[tw, [1]]]);
    clear();
    clock.advance(100);
    expect(pushed(events)).toEqual([]);
  });

  it('tells a waiter pushed out of position 1 where it stands at the coalesced push', () => {
    const { locks, clock, events } = setup({ queuePushMs: 100 });
    locks.acquire('a', R([f(1)], { wait: false }));
    locks.acquire('b', R([f(1)], { wait: false }));
    const tw = ticketOf(locks.acquire('w', W([f(1)])));
    ticketOf(locks.acquire('a', W([f(1)])));
    clock.advance(100);
    expect(pushed(events)).toEqual([[tw, [2]]]);
  });

  it('answers a retried key with where its ticket stands now, pushed or not', () => {
    const { locks } = setup({ queuePushMs: 100 });
    locks.acquire('h', W([f(1)]));
    locks.acquire('w0', W([f(1)]));
    locks.acquire('w1', W([f(1)]));
    const t = ticketOf(locks.acquire('k', W([f(1)], { key: 'k' })));
    locks.release('h', [f(1)]);
    expect(locks.acquire('k', W([f(1)], { key: 'k' }))).toEqual({
      status: 'queued',
      ticket: t,
      positions: [{ resource: f(1), position: 2 }],
    });
  });
});

describe('reentrancy', () => {
  it('refreshes the lease and keeps the fence on the same mode, even past a queue', () => {
    const { locks, clock, events, clear } = setup();
    const first = locks.acquire('a', W([f(1)], { ttlMs: 10_000 }));
    locks.acquire('b', W([f(1)]));
    clock.advance(5000);
    clear();
    const again = locks.acquire('a', W([f(1)], { ttlMs: 10_000 }));
    expect(again.status).toBe('granted');
    if (again.status !== 'granted' || first.status !== 'granted') return;
    expect(again.grants[0]!.fence).toBe(first.grants[0]!.fence);
    expect(again.grants[0]!.expiresAt).toBe(T0 + 15_000);
    expect(events('granted')).toEqual([{ sessionId: 'a', ticket: null, grants: again.grants }]);
    clock.advance(9000);
    expect(locks.holding('a')).toHaveLength(1);
  });

  it('keeps write when a write holder asks for read', () => {
    const { locks, clock } = setup();
    const w = locks.acquire('a', W([f(1)]));
    clock.advance(10);
    const r = locks.acquire('a', R([f(1)]));
    expect(r.status === 'granted' && r.grants[0]).toMatchObject({
      mode: 'write',
      fence: fenceOf(w),
      expiresAt: T0 + 10 + 30 * 60_000,
    });
  });

  it('refreshes held resources as part of an immediate batch grant', () => {
    const { locks } = setup();
    const first = locks.acquire('a', W([f(1)]));
    const batch = locks.acquire('a', W([f(1), f(2)]));
    expect(fenceOf(batch, 0)).toBe(fenceOf(first));
    expect(fenceOf(batch, 1)).toBeGreaterThan(fenceOf(first));
  });

  it('queues a batch mixing held and busy resources, holding the held ones at the front, and refreshes them on grant', () => {
    const { locks, clock, events, clear } = setup();
    const held = locks.acquire('a', W([f(1)], { ttlMs: 60_000 }));
    locks.acquire('b', W([f(2)]));
    locks.acquire('c', W([f(1)]));
    const t = ticketOf(locks.acquire('a', W([f(1), f(2)], { ttlMs: 60_000 })));
    const f1 = locks.status().find((s) => 'function' in s.resource && s.resource.function === 1)!;
    expect(f1.queue.map((q) => [q.sessionId, q.position, q.front, q.upgrade])).toEqual([
      ['a', 1, true, false],
      ['c', 2, false, false],
    ]);
    clock.advance(1000);
    clear();
    locks.release('b', [f(2)]);
    const g = events('granted');
    expect(g.map((e) => e.ticket)).toEqual([t]);
    expect(g[0]!.grants[0]).toMatchObject({ resource: f(1), fence: fenceOf(held), expiresAt: T0 + 61_000 });
    expect(locks.tickets('c')).toHaveLength(1);
  });
});

describe('a session’s own tickets', () => {
  it('keep one order in every queue, so a holder never jumps its own earlier ticket', () => {
    const { locks, events, clear } = setup();
    locks.acquire('x', W([f(1), f(2)]));
    ticketOf(locks.acquire('s', R([f(1)])));
    const t1 = ticketOf(locks.acquire('s', R([f(1), f(2)])));
    locks.release('x', [f(1)]);
    expect(locks.grantOf('s', f(1))!.mode).toBe('read');
    const t2 = ticketOf(locks.acquire('s', W([f(1), f(2)])));
    for (const st of locks.status()) expect(st.queue.map((q) => q.ticket)).toEqual([t1, t2]);
    clear();
    locks.release('x', [f(2)]);
    expect(events('granted').map((g) => g.ticket)).toEqual([t1, t2]);
    expect(locks.holding('s').map((g) => g.mode)).toEqual(['write', 'write']);
  });
});

describe('upgrades', () => {
  it('upgrades a sole reader at once with a fence larger than all', () => {
    const { locks } = setup();
    const r = locks.acquire('a', R([f(1)]));
    locks.acquire('b', W([f(2)]));
    locks.acquire('w', W([f(1)]));
    const up = locks.acquire('a', W([f(1)]));
    expect(up.status === 'granted' && up.grants[0]!.mode).toBe('write');
    expect(fenceOf(up)).toBeGreaterThan(fenceOf(r) + 1);
  });

  it('waits at the front, ahead of an earlier writer, until the other readers are gone', () => {
    const { locks, events, clear } = setup();
    locks.acquire('a', R([f(1)]));
    locks.acquire('b', R([f(1)]));
    const tw = ticketOf(locks.acquire('w', W([f(1)])));
    const up = locks.acquire('a', W([f(1)]));
    expect(up).toEqual({ status: 'queued', ticket: expect.any(String), positions: [{ resource: f(1), position: 1 }] });
    const tu = ticketOf(up);
    expect(locks.status()[0]!.queue.map((q) => [q.ticket, q.upgrade, q.front])).toEqual([
      [tu, true, true],
      [tw, false, false],
    ]);
    expect(events('position')).toEqual([{ sessionId: 'w', ticket: tw, positions: [{ resource: f(1), position: 2 }] }]);
    clear();
    locks.release('b', [f(1)]);
    expect(events('granted')).toEqual([
      { sessionId: 'a', ticket: tu, grants: [expect.objectContaining({ mode: 'write' })] },
    ]);
    expect(locks.holding('a')).toEqual([expect.objectContaining({ mode: 'write' })]);
    expect(locks.tickets('w')[0]!.positions[0]!.position).toBe(1);
  });

  it('refuses a second pending upgrade on the same resource as a deadlock, changing nothing', () => {
    const { locks, events } = setup();
    locks.acquire('a', R([f(1)]));
    locks.acquire('b', R([f(1)]));
    const tu = ticketOf(locks.acquire('a', W([f(1)])));
    const before = locks.status();
    const err = caught(() => locks.acquire('b', W([f(1)])));
    expect(err.type).toBe('DEADLOCK');
    expect(err.details.cycle).toEqual([
      { sessionId: 'b', name: 'name-b', resource: f(1) },
      { sessionId: 'a', name: 'name-a', ticket: tu, resource: f(1) },
    ]);
    expect(events('deadlock')).toEqual([{ sessionId: 'b', cycle: err.details.cycle }]);
    expect(locks.status()).toEqual(before);
  });
});

describe('downgrade', () => {
  it('turns write into read with the same fence and lets waiting readers in', () => {
    const { locks, events, clear } = setup();
    const w = locks.acquire('a', W([f(1), f(2)]));
    const t1 = ticketOf(locks.acquire('r1', R([f(1)])));
    const t2 = ticketOf(locks.acquire('r2', R([f(1)])));
    ticketOf(locks.acquire('w3', W([f(1)])));
    clear();
    const d = locks.downgrade('a', [f(1)]);
    expect(d).toEqual([expect.objectContaining({ resource: f(1), mode: 'read', fence: fenceOf(w) })]);
    expect(events('downgraded')).toEqual([{ sessionId: 'a', locks: d }]);
    expect(events('granted').map((g) => g.ticket)).toEqual([t1, t2]);
    expect(locks.downgrade('a', [f(1)])[0]!.mode).toBe('read');
    expect(locks.grantOf('a', f(2))!.mode).toBe('write');
  });

  it('fails with NOT_HELD when a resource is not held, changing nothing', () => {
    const { locks } = setup();
    locks.acquire('a', W([f(1)]));
    const err = caught(() => locks.downgrade('a', [f(1), f(2)]));
    expect(err.type).toBe('NOT_HELD');
    expect(err.details).toEqual({ resources: [f(2)] });
    expect(locks.grantOf('a', f(1))!.mode).toBe('write');
  });
});

describe('deadlock detection', () => {
  it('refuses a wait closing a cycle through holders', () => {
    const { locks } = setup();
    locks.acquire('a', W([f(1)]));
    locks.acquire('b', W([f(2)]));
    const ta = ticketOf(locks.acquire('a', W([f(2)])));
    const before = locks.status();
    const err = caught(() => locks.acquire('b', W([f(1)])));
    expect(err.type).toBe('DEADLOCK');
    expect(err.retryable).toBe(true);
    expect(err.details.cycle).toEqual([
      { sessionId: 'b', name: 'name-b', resource: f(1) },
      { sessionId: 'a', name: 'name-a', ticket: ta, resource: f(2) },
    ]);
    expect(locks.status()).toEqual(before);
    expect(locks.tickets('b')).toEqual([]);
  });

  it('refuses an immediate upgrade that would make queued readers wait for a session waiting for them', () => {
    const { locks } = setup();
    locks.acquire('q', W([f(4)]));
    locks.acquire('z', W([f(3)]));
    locks.acquire('s', R([f(1)]));
    // q's batch waits at the front of f1 (compatible with s's read) only because z holds f3.
    const tq = ticketOf(locks.acquire('q', R([f(1), f(3)])));
    const ts = ticketOf(locks.acquire('s', W([f(4)])));
    const before = locks.status();
    // s is f1's sole holder, but granting it write would make q wait for s while s waits for q.
    const err = caught(() => locks.acquire('s', W([f(1)], { wait: false })));
    expect(err.type).toBe('DEADLOCK');
    expect(err.details.cycle).toEqual([
      { sessionId: 's', name: 'name-s', ticket: ts, resource: f(4) },
      { sessionId: 'q', name: 'name-q', ticket: tq, resource: f(1) },
    ]);
    expect(locks.status()).toEqual(before);
    // Without s waiting for q, the same upgrade goes through at once.
    locks.cancel('s', ts);
    expect(locks.acquire('s', W([f(1)], { wait: false })).status).toBe('granted');
  });

  it('counts tickets queued ahead as waited for', () => {
    const { locks } = setup();
    locks.acquire('a', W([f(1)]));
    locks.acquire('c', W([f(2)]));
    const tb = ticketOf(locks.acquire('b', W([f(2)])));
    const ta = ticketOf(locks.acquire('a', W([f(2)])));
    const err = caught(() => locks.acquire('b', W([f(1)])));
    expect(err.type).toBe('DEADLOCK');
    expect(err.details.cycle).toEqual([
      { sessionId: 'b', name: 'name-b', resource: f(1) },
      { sessionId: 'a', name: 'name-a', ticket: ta, resource: f(2) },
    ]);
    expect(tb).toBeDefined();
  });

  it('finds longer cycles', () => {
    const { locks } = setup();
    for (const [s, n] of [
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ] as const)
      locks.acquire(s, W([f(n)]));
    locks.acquire('a', W([f(2)]));
    locks.acquire('b', W([f(3)]));
    const err = caught(() => locks.acquire('c', R([f(1)])));
    expect((err.details.cycle as Array<{ sessionId: string }>).map((c) => c.sessionId)).toEqual(['c', 'a', 'b']);
  });

  it('ignores waiting behind oneself', () => {
    const { locks } = setup();
    locks.acquire('b', W([f(1)]));
    ticketOf(locks.acquire('a', W([f(1)])));
    ticketOf(locks.acquire('a', W([f(1)])));
    expect(locks.tickets('a')).toHaveLength(2);
  });

  it('sees the new waits of tickets standing behind a front entry', () => {
    // x waits behind s's new front entry on f1; s already waits (via f6) for y, which waits for x.
    const { locks } = setup();
    locks.acquire('s', R([f(1)]));
    locks.acquire('z', W([f(4)]));
    locks.acquire('w', W([f(5)]));
    locks.acquire('y', W([f(6)]));
    const tx = ticketOf(locks.acquire('x', R([f(1), f(4)])));
    const ty = ticketOf(locks.acquire('y', W([f(4)])));
    const ts = ticketOf(locks.acquire('s', W([f(6)])));
    const err = caught(() => locks.acquire('s', R([f(1), f(5)])));
    expect(err.type).toBe('DEADLOCK');
    expect(err.details.cycle).toEqual([
      { sessionId: 's', name: 'name-s', ticket: ts, resource: f(6) },
      { sessionId: 'y', name: 'name-y', ticket: ty, resource: f(4) },
      { sessionId: 'x', name: 'name-x', ticket: tx, resource: f(1) },
    ]);
  });
});

describe('LOCK_DENIED', () => {
  it('names the conflicting holders and queue, with retryAfterMs to the soonest lease end', () => {
    const { locks, clock, events } = setup();
    locks.acquire('a', R([f(1)], { ttlMs: 5000, description: 'reading' }));
    locks.acquire('b', R([f(1)], { ttlMs: 3000 }));
    locks.acquire('q', W([f(1)]));
    locks.acquire('c', W([f(2)], { ttlMs: 9000 }));
    clock.advance(1000);
    const before = locks.status();
    const err = caught(() => locks.acquire('d', { resources: [f(1), f(2), f(3)], mode: 'write' }));
    expect(err.type).toBe('LOCK_DENIED');
    expect(err.retryAfterMs).toBe(2000);
    const blockers = [
      {
        resource: f(1),
        holders: [
          {
            sessionId: 'a',
            name: 'name-a',
            mode: 'read',
            description: 'reading',
            expiresAt: T0 + 5000,
          },
          { sessionId: 'b', name: 'name-b', mode: 'read', expiresAt: T0 + 3000 },
        ],
        queueLength: 1,
      },
      {
        resource: f(2),
        holders: [{ sessionId: 'c', name: 'name-c', mode: 'write', expiresAt: T0 + 9000 }],
        queueLength: 0,
      },
    ];
    expect(err.details).toEqual({ blockers });
    expect(events('denied')).toEqual([{ sessionId: 'd', mode: 'write', resources: [f(1), f(2), f(3)], blockers }]);
    expect(locks.status()).toEqual(before);
  });

  it('has no retryAfterMs when only queued tickets block', () => {
    const { locks } = setup();
    locks.acquire('a', R([f(1)]));
    locks.acquire('q', W([f(1)]));
    const err = caught(() => locks.acquire('d', { resources: [f(1)], mode: 'read' }));
    expect(err.retryAfterMs).toBeUndefined();
    expect(err.details).toEqual({ blockers: [{ resource: f(1), holders: [], queueLength: 1 }] });
  });

  it('denies an upgrade that would have to wait, naming the other readers', () => {
    const { locks } = setup();
    locks.acquire('a', R([f(1)]));
    locks.acquire('b', R([f(1)]));
    const err = caught(() => locks.acquire('a', { resources: [f(1)], mode: 'write' }));
    expect(
      (err.details.blockers as Array<{ holders: Array<{ sessionId: string }> }>)[0]!.holders.map((h) => h.sessionId),
    ).toEqual(['b']);
    expect(locks.grantOf('a', f(1))!.mode).toBe('read');
  });
});

describe('leases', () => {
  it('clamps the ttl to the minimum and maximum', () => {
    const { locks } = setup({ minTtlMs: 100, maxTtlMs: 10_000 });
    const lo = locks.acquire('a', W([f(1)], { ttlMs: 1 }));
    const hi = locks.acquire('a', W([f(2)], { ttlMs: 1e9 }));
    const def = setup({ defaultTtlMs: 5000 }).locks.acquire('a', W([f(1)]));
    expect(lo.status === 'granted' && lo.grants[0]!.expiresAt).toBe(T0 + 100);
    expect(hi.status === 'granted' && hi.grants[0]!.expiresAt).toBe(T0 + 10_000);
    expect(def.status === 'granted' && def.grants[0]!.expiresAt).toBe(T0 + 5000);
  });

  it('warns min(warningMs, ttl/5) ahead, then expires, releases and grants the next waiter', () => {
    const { locks, clock, events, names, clear } = setup({ warningMs: 60_000 });
    locks.acquire('a', W([f(1)], { ttlMs: 10_000 }));
    locks.acquire('a', W([f(2)], { ttlMs: 600_000 }));
    const tb = ticketOf(locks.acquire('b', W([f(1)])));
    clear();
    clock.advance(7999);
    expect(events('expiring')).toEqual([]);
    clock.advance(1);
    expect(events('expiring')).toEqual([{ sessionId: 'a', locks: [expect.objectContaining({ resource: f(1) })] }]);
    clear();
    clock.advance(2000);
    expect(names()).toEqual(['expired', 'released', 'granted']);
    expect(events('released')[0]!.reason).toBe('expired');
    expect(events('granted')[0]!.ticket).toBe(tb);
    clear();
    clock.advance(600_000 - 60_000 - 10_000);
    expect(events('expiring')).toEqual([{ sessionId: 'a', locks: [expect.objectContaining({ resource: f(2) })] }]);
  });

  it('groups locks of one session ending at the same instant into one event', () => {
    const { locks, clock, events, clear } = setup();
    locks.acquire('a', W([f(1)], { ttlMs: 1000 }));
    locks.acquire('a', W([f(2)], { ttlMs: 1000 }));
    locks.acquire('b', W([f(3)], { ttlMs: 1000 }));
    clear();
    clock.advance(1000);
    expect(events('expiring').map((e) => [e.sessionId, e.locks.length])).toEqual([
      ['a', 2],
      ['b', 1],
    ]);
    expect(events('expired').map((e) => [e.sessionId, e.locks.map((g) => g.resource)])).toEqual([
      ['a', [f(1), f(2)]],
      ['b', [f(3)]],
    ]);
    expect(events('released')).toHaveLength(2);
    expect(locks.status()).toEqual([]);
  });

  it('renews from now with the same fence, and the old expiry no longer fires', () => {
    const { locks, clock, events, clear } = setup();
    const g = locks.acquire('a', W([f(1)], { ttlMs: 1000 }));
    clock.advance(900);
    const renewed = locks.renew('a', [f(1)]);
    expect(renewed).toEqual([expect.objectContaining({ fence: fenceOf(g), expiresAt: T0 + 1900 })]);
    expect(events('renewed')).toEqual([{ sessionId: 'a', locks: renewed }]);
    clear();
    clock.advance(500);
    expect(events('expired')).toEqual([]);
    locks.renew('a', [f(1)], 5000);
    clock.advance(4999);
    expect(locks.holding('a')).toHaveLength(1);
    clock.advance(1);
    expect(locks.holding('a')).toEqual([]);
  });

  it('fails renew and release with NOT_HELD naming what is not held, changing nothing', () => {
    const { locks } = setup();
    locks.acquire('a', W([f(1)], { ttlMs: 1000 }));
    locks.acquire('b', W([f(2)]));
    for (const op of [() => locks.renew('a', [f(1), f(2)], 9999), () => locks.release('a', [f(2), f(1)])]) {
      const err = caught(op);
      expect(err.type).toBe('NOT_HELD');
      expect(err.details).toEqual({ resources: [f(2)] });
    }
    expect(locks.grantOf('a', f(1))!.expiresAt).toBe(T0 + 1000);
    expect(locks.grantOf('b', f(2))).toBeDefined();
    expect(caught(() => locks.release('nobody', [f(1)])).type).toBe('NOT_HELD');
  });

  it('drives every lease from a single clock timer', () => {
    const { locks, clock } = setup();
    for (let i = 1; i <= 50; i++) locks.acquire(`s${i}`, W([f(i)], { ttlMs: 1000 + i }));
    expect(clock.pending()).toBe(1);
    expect(locks.scheduled).toBe(100);
    locks.close();
    expect(clock.pending()).toBe(0);
  });
});

describe('a lease whose timer runs late (busy event loop)', () => {
  // clock.jump() moves time without firing timers: the expiry is overdue but has not run.
  it('is lapsed for the edit check: grantOf runs the expiry first and the next waiter is granted', () => {
    const { locks, clock, events, names, clear } = setup();
    locks.acquire('a', W([f(1)], { ttlMs: 1000 }));
    const tb = ticketOf(locks.acquire('b', W([f(1)])));
    clear();
    clock.jump(1000);
    expect(names()).toEqual([]);
    expect(locks.grantOf('a', f(1))).toBeUndefined();
    expect(names()).toEqual(['expiring', 'expired', 'released', 'granted']);
    expect(events('released')[0]!.reason).toBe('expired');
    expect(events('granted')[0]!.ticket).toBe(tb);
    clear();
    // The timer, when it finally runs, finds nothing left to do.
    clock.advance(0);
    expect(names()).toEqual([]);
  });

  it('is lapsed for renew, release and downgrade: NOT_HELD, as if the timer had run', () => {
    for (const op of [
      (l: LockManager) => l.renew('a', [f(1)]),
      (l: LockManager) => l.release('a', [f(1)]),
      (l: LockManager) => l.downgrade('a', [f(1)]),
    ]) {
      const { locks, clock, events } = setup();
      locks.acquire('a', W([f(1)], { ttlMs: 1000 }));
      clock.jump(1000);
      expect(caught(() => op(locks)).type).toBe('NOT_HELD');
      expect(events('expired')).toHaveLength(1);
      expect(locks.status()).toEqual([]);
    }
  });

  it('still counts for a check made before its end', () => {
    const { locks, clock, names, clear } = setup();
    locks.acquire('a', W([f(1)], { ttlMs: 1000 }));
    clear();
    clock.jump(999);
    expect(locks.grantOf('a', f(1))).toBeDefined();
    expect(locks.renew('a', [f(1)])[0]!.expiresAt).toBe(T0 + 1999);
    expect(names()).toEqual(['expiring', 'renewed']);
  });

  it('ends before a new request is looked at, which is then granted at once', () => {
    const { locks, clock, events } = setup();
    locks.acquire('a', W([f(1)], { ttlMs: 1000 }));
    clock.jump(1500);
    const r = locks.acquire('c', W([f(1)], { wait: false, ttlMs: 1000 }));
    expect(r.status).toBe('granted');
    expect(r.status === 'granted' && r.grants[0]!.expiresAt).toBe(T0 + 2500);
    expect(events('denied')).toEqual([]);
  });
});

describe('a queued grant after a late expiry', () => {
  it('gets its whole ttl, counted from the grant, not from the end of the lease before it', () => {
    const { locks, clock, events } = setup();
    locks.acquire('a', W([f(1)], { ttlMs: 1000 }));
    const tb = ticketOf(locks.acquire('b', W([f(1)], { ttlMs: 2000 })));
    const tc = ticketOf(locks.acquire('c', W([f(1)], { ttlMs: 3000 })));
    // a's expiry timer fires 75 ms late.
    clock.jump(1075);
    clock.advance(0);
    const granted = (ticket: string) => events('granted').find((e) => e.ticket === ticket);
    expect(granted(tb)).toMatchObject({ grants: [{ grantedAt: T0 + 1075, expiresAt: T0 + 3075 }] });
    // b's lease is then found lapsed 40 ms late by a call, before its timer runs.
    clock.jump(2040);
    expect(locks.status()[0]!.holders).toEqual([expect.objectContaining({ sessionId: 'c', grantedAt: T0 + 3115 })]);
    expect(granted(tc)).toMatchObject({ grants: [{ expiresAt: T0 + 6115 }] });
  });
});

describe('wait timeouts', () => {
  it('withdraws the ticket at its deadline, renumbers and wakes whoever can now run', () => {
    const { locks, clock, events, names, clear } = setup();
    locks.acquire('a', R([f(1)]));
    locks.acquire('x', W([f(2)]));
    const tb = ticketOf(locks.acquire('b', W([f(1), f(2)], { waitTimeoutMs: 500 })));
    const tc = ticketOf(locks.acquire('c', R([f(1)])));
    const td = ticketOf(locks.acquire('d', W([f(2)])));
    clear();
    clock.advance(499);
    expect(names()).toEqual([]);
    clock.advance(1);
    expect(names()).toEqual(['waitTimeout', 'cancelled', 'granted', 'position']);
    expect(events('waitTimeout')).toEqual([{ sessionId: 'b', ticket: tb }]);
    expect(events('cancelled')).toEqual([{ sessionId: 'b', ticket: tb, reason: 'timeout' }]);
    expect(events('granted')[0]!.ticket).toBe(tc);
    expect(events('position')).toEqual([{ sessionId: 'd', ticket: td, positions: [{ resource: f(2), position: 1 }] }]);
    expect(locks.tickets('b')).toEqual([]);
  });

  it('drops the timeout once the ticket is granted', () => {
    const { locks, clock, events } = setup();
    locks.acquire('a', W([f(1)]));
    locks.acquire('b', W([f(1)], { waitTimeoutMs: 500 }));
    locks.release('a', [f(1)]);
    clock.advance(1000);
    expect(events('waitTimeout')).toEqual([]);
    expect(locks.holding('b')).toHaveLength(1);
  });
});

describe('fences', () => {
  it('increase strictly per program, from the given start, one per resource of a batch', () => {
    const { locks } = setup({ fences: memoryFences({ main: 41 }) });
    const a = locks.acquire('a', W([f(1), f(2), structure()]));
    expect(a.status === 'granted' && a.grants.map((g) => g.fence)).toEqual([42, 43, 44]);
    const other = locks.acquire('a', W([f(1, 'aux')]));
    expect(fenceOf(other)).toBe(1);
    locks.release('a', [f(1)]);
    expect(fenceOf(locks.acquire('b', R([f(1)])))).toBe(45);
  });

  it('take a new fence on upgrade and on a grant from the queue, keep it on refresh, renew and downgrade', () => {
    const { locks } = setup();
    const r = fenceOf(locks.acquire('a', R([f(1)])));
    const up = fenceOf(locks.acquire('a', W([f(1)])));
    expect(up).toBeGreaterThan(r);
    expect(locks.renew('a', [f(1)])[0]!.fence).toBe(up);
    expect(locks.downgrade('a', [f(1)])[0]!.fence).toBe(up);
    expect(fenceOf(locks.acquire('a', R([f(1)])))).toBe(up);
    locks.acquire('b', W([f(1)]));
    locks.release('a', [f(1)]);
    expect(locks.grantOf('b', f(1))!.fence).toBeGreaterThan(up);
  });
});

describe('idempotency keys', () => {
  it('return the same request again and never queue twice: where it stands now, or how it ended', () => {
    const { locks } = setup();
    locks.acquire('a', W([f(1)]));
    locks.acquire('c', W([f(1)], { wait: true }));
    const first = locks.acquire('b', W([f(1)], { key: 'k1', wait: true }));
    expect(first).toMatchObject({ status: 'queued', positions: [{ resource: f(1), position: 2 }] });
    const again = locks.acquire('b', W([f(1)], { key: 'k1', wait: true }));
    expect(again).toEqual(first);
    expect(locks.tickets('b')).toHaveLength(1);

    locks.releaseAll('a');
    // c is granted; b moved up: a retry reports position 1, the same ticket.
    expect(locks.acquire('b', W([f(1)], { key: 'k1', wait: true }))).toEqual({
      ...first,
      positions: [{ resource: f(1), position: 1 }],
    });
    locks.releaseAll('c');
    // Granted meanwhile (a lock.granted the client may have missed): the retry says so.
    const won = locks.acquire('b', W([f(1)], { key: 'k1', wait: true }));
    expect(won).toEqual({ status: 'granted', grants: locks.holding('b') });

    const g = locks.acquire('b', W([f(2)], { key: 'k2' }));
    expect(locks.acquire('b', W([f(2)], { key: 'k2' }))).toBe(g);
  });

  it('refuse a key reused for a different request', () => {
    const { locks } = setup();
    locks.acquire('b', W([f(1)], { key: 'k' }));
    const before = locks.status();
    for (const other of [W([f(2)], { key: 'k' }), R([f(1)], { key: 'k' }), W([f(1)], { key: 'k', wait: false })]) {
      let thrown: unknown;
      try {
        locks.acquire('b', other);
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(KeyReused);
      expect(thrown).toMatchObject({ key: 'k' });
    }
    expect(locks.status()).toEqual(before);
    // The same request in another order of resources is the same request.
    locks.acquire('b', W([f(3), f(4)], { key: 'k2' }));
    expect(locks.acquire('b', W([f(4), f(3)], { key: 'k2' })).status).toBe('granted');
  });

  it('tell a retry that its ticket was withdrawn, except one lost with its connection', () => {
    const { locks } = setup();
    locks.acquire('a', W([f(1)]));
    const q = locks.acquire('b', W([f(1)], { key: 'k', wait: true }));
    if (q.status !== 'queued') throw new Error('expected queued');
    locks.cancel('b', q.ticket);
    const err = caught(() => locks.acquire('b', W([f(1)], { key: 'k', wait: true })));
    expect(err).toMatchObject({ type: 'NOT_FOUND', details: { ticket: q.ticket, reason: 'cancel' } });

    locks.acquire('b', W([f(1)], { key: 'lost', wait: true }));
    locks.withdrawTickets('b');
    const retry = locks.acquire('b', W([f(1)], { key: 'lost', wait: true }));
    expect(retry.status).toBe('queued');
    expect(locks.tickets('b')).toHaveLength(1);
  });

  it('rethrow a first error the same, per session', () => {
    const { locks } = setup();
    locks.acquire('a', W([f(1)]));
    const err = caught(() => locks.acquire('b', { resources: [f(1)], mode: 'write', key: 'k' }));
    locks.release('a', [f(1)]);
    expect(caught(() => locks.acquire('b', { resources: [f(1)], mode: 'write', key: 'k' }))).toBe(err);
    expect(locks.acquire('c', { resources: [f(1)], mode: 'write', key: 'k' }).status).toBe('granted');
  });

  it('are dropped with the session and bounded per session', () => {
    const { locks } = setup();
    const first = locks.acquire('a', R([f(1)], { key: 'k' }));
    locks.removeSession('a');
    expect(locks.acquire('a', R([f(1)], { key: 'k' }))).not.toBe(first);
    const oldest = locks.acquire('b', R([f(9)], { key: 'key-0' }));
    for (let i = 1; i <= 1000; i++) locks.acquire('b', R([f(9)], { key: `key-${i}` }));
    expect(locks.acquire('b', R([f(9)], { key: 'key-1000' }))).not.toBe(oldest);
    expect(locks.acquire('b', R([f(9)], { key: 'key-0' }))).not.toBe(oldest);
  });
});

describe('release, cancel and session removal', () => {
  it('release acts only on the caller’s own locks and returns what it released', () => {
    const { locks, events } = setup();
    locks.acquire('a', W([f(1), f(2)]));
    expect(caught(() => locks.release('b', [f(1)])).type).toBe('NOT_HELD');
    const out = locks.release('a', [f(2)]);
    expect(out.map((g) => g.resource)).toEqual([f(2)]);
    expect(events('released')).toEqual([{ sessionId: 'a', locks: out, reason: 'release' }]);
    expect(locks.releaseAll('a').map((g) => g.resource)).toEqual([f(1)]);
    expect(locks.releaseAll('a')).toEqual([]);
    expect(locks.status()).toEqual([]);
  });

  it('cancel accepts only the caller’s own waiting tickets', () => {
    const { locks } = setup();
    locks.acquire('a', W([f(1)]));
    const tb = ticketOf(locks.acquire('b', W([f(1)])));
    expect(caught(() => locks.cancel('c', tb)).type).toBe('NOT_FOUND');
    expect(caught(() => locks.cancel('b', 'nope')).type).toBe('NOT_FOUND');
    locks.release('a', [f(1)]);
    expect(caught(() => locks.cancel('b', tb)).type).toBe('NOT_FOUND');
  });

  it('removeSession withdraws every ticket and releases every lock in one step, then wakes waiters', () => {
    const { locks, names, events, clear } = setup();
    locks.acquire('a', W([f(1), f(2)]));
    locks.acquire('x', W([f(3)]));
    const ta = ticketOf(locks.acquire('a', W([f(3)], { waitTimeoutMs: 1000 })));
    const tb = ticketOf(locks.acquire('b', W([f(1)])));
    clear();
    const out = locks.removeSession('a');
    expect(out.cancelled).toEqual([ta]);
    expect(out.released.map((g) => g.resource)).toEqual([f(1), f(2)]);
    expect(names()).toEqual(['cancelled', 'released', 'granted']);
    expect(events('released')[0]!.reason).toBe('disconnect');
    expect(events('granted')[0]!.ticket).toBe(tb);
    expect(locks.holding('a')).toEqual([]);
    expect(locks.tickets('a')).toEqual([]);
    expect(locks.scheduled).toBe(4);
    expect(locks.removeSession('a')).toEqual({ released: [], cancelled: [] });
  });

  it('withdrawTickets keeps the locks', () => {
    const { locks, events } = setup();
    locks.acquire('x', W([f(2)]));
    locks.acquire('a', W([f(1)]));
    const t = ticketOf(locks.acquire('a', W([f(2)])));
    expect(locks.withdrawTickets('a')).toEqual([t]);
    expect(events('cancelled')).toEqual([{ sessionId: 'a', ticket: t, reason: 'disconnect' }]);
    expect(locks.holding('a')).toHaveLength(1);
  });

  it('dropResources withdraws tickets naming them and releases locks on them', () => {
    const { locks, events } = setup();
    locks.acquire('a', W([f(1), f(2)]));
    const tb = ticketOf(locks.acquire('b', W([f(1), f(3)])));
    const tc = ticketOf(locks.acquire('c', R([f(2)])));
    locks.dropResources((r) => r.program === 'main' && 'function' in r && r.function === 1);
    expect(events('cancelled')).toEqual([{ sessionId: 'b', ticket: tb, reason: 'removed' }]);
    expect(events('released')).toEqual([
      { sessionId: 'a', locks: [expect.objectContaining({ resource: f(1) })], reason: 'removed' },
    ]);
    expect(locks.grantOf('a', f(2))).toBeDefined();
    locks.dropResources((r) => r.program === 'main');
    expect(events('granted').filter((g) => g.ticket === tc)).toEqual([]);
    expect(locks.status()).toEqual([]);
  });
});

describe('drain (server shutting down)', () => {
  it('grants nothing more: not to waiters whose turn comes, not to new requests', () => {
    const { locks, clock, events, names, clear } = setup();
    locks.acquire('a', W([f(1)]));
    locks.acquire('x', W([f(2)], { ttlMs: 1000 }));
    locks.acquire('b', W([f(1)]));
    locks.acquire('c', R([f(2)]));
    clear();
    locks.drain();
    locks.removeSession('a', 'shutdown');
    clock.advance(1000);
    expect(events('granted')).toEqual([]);
    expect(names()).toEqual(['released', 'expiring', 'expired', 'released']);
    expect(events('released').map((e) => e.reason)).toEqual(['shutdown', 'expired']);
    expect(locks.tickets('b')).toHaveLength(1);
    const refused = caught(() => locks.acquire('d', W([f(3)], { wait: false })));
    expect(refused.type).toBe('SHUTTING_DOWN');
    expect(locks.holding('d')).toEqual([]);
    locks.removeSession('b', 'shutdown');
    expect(events('cancelled')).toEqual([{ sessionId: 'b', ticket: expect.any(String), reason: 'shutdown' }]);
  });
});

describe('introspection', () => {
  it('status lists held and awaited resources in canonical order, optionally of one program', () => {
    const { locks } = setup();
    locks.acquire('a', W([f(5), f(1, 'aux')], { description: 'edit' }));
    locks.acquire('b', R([structure()], { description: 'look' }));
    locks.acquire('c', W([f(5)], { description: 'wait' }));
    expect(locks.status().map((s) => s.resource)).toEqual([f(1, 'aux'), structure(), f(5)]);
    const main = locks.status('main');
    expect(main.map((s) => s.resource)).toEqual([structure(), f(5)]);
    expect(main[1]).toEqual({
      resource: f(5),
      holders: [
        {
          sessionId: 'a',
          mode: 'write',
          fence: expect.any(Number),
          grantedAt: T0,
          expiresAt: T0 + 1_800_000,
          description: 'edit',
        },
      ],
      queue: [
        {
          ticket: expect.any(String),
          sessionId: 'c',
          mode: 'write',
          position: 1,
          upgrade: false,
          front: false,
          description: 'wait',
        },
      ],
    });
    expect(locks.tickets('c')).toEqual([
      {
        ticket: expect.any(String),
        sessionId: 'c',
        resources: [f(5)],
        mode: 'write',
        positions: [{ resource: f(5), position: 1 }],
        enqueuedAt: T0,
        description: 'wait',
      },
    ]);
    expect(locks.grantOf('b', structure())).toMatchObject({ mode: 'read', description: 'look' });
    expect(locks.grantOf('b', f(5))).toBeUndefined();
  });

  it('hands out copies that cannot corrupt its state', () => {
    const { locks } = setup();
    const g = locks.acquire('a', W([f(1)]));
    if (g.status === 'granted') (g.grants[0]!.resource as { function: number }).function = 99;
    locks.holding('a')[0]!.mode = 'read';
    expect(locks.holding('a')).toEqual([expect.objectContaining({ resource: f(1), mode: 'write' })]);
  });
});

describe('listeners calling back in', () => {
  it('see a consistent state, and events stay in causal order', () => {
    const { locks, names } = setup();
    locks.acquire('a', W([f(1)]));
    locks.acquire('b', W([f(1)]));
    locks.acquire('c', W([f(1)]));
    locks.on('granted', (e) => {
      if (e.sessionId === 'b') locks.release('b', [f(1)]);
    });
    locks.release('a', [f(1)]);
    expect(locks.holding('c')).toHaveLength(1);
    expect(names().slice(-5)).toEqual(['released', 'granted', 'position', 'released', 'granted']);
  });
});
