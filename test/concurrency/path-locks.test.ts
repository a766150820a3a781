import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/concurrency/fake-clock.ts';
import { LockManager } from '../../src/concurrency/index.ts';
import type { AcquireResult, QueuePosition } from '../../src/concurrency/index.ts';
import type { LockMode, Resource } from '../../src/protocol/resource.ts';
import { expectError } from '../helpers/errors.ts';

// Path locks in the core (docs/protocol.md, "Paths"): conflicts by whole segments, strict FIFO
// across the hierarchy, positions that count what a ticket really waits behind.

const p = (path: string, program = 'repo'): Resource => ({ program, path });
const f = (n: number): Resource => ({ program: 'repo', function: n });

function setup() {
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  const locks = new LockManager({ clock });
  const positions = new Map<string, QueuePosition[]>();
  locks.on('queued', (e) => positions.set(e.ticket, e.positions));
  locks.on('position', (e) => positions.set(e.ticket, e.positions));
  const granted: string[] = [];
  locks.on('granted', (e) => {
    if (e.ticket !== null) granted.push(e.ticket);
  });
  return { clock, locks, positions, granted };
}

const ask = (mode: LockMode, resources: Resource[], wait = true) => ({ resources, mode, wait });

function ticketOf(r: AcquireResult): string {
  if (r.status !== 'queued') throw new Error(`expected queued, got ${r.status}`);
  return r.ticket;
}

const at = (positions: QueuePosition[] | undefined) => positions?.map((q) => q.position);

describe('path conflicts', () => {
  it('a write on a directory conflicts with any lock below it, a read with a write below it', () => {
    const { locks } = setup();
    locks.acquire('a', ask('write', [p('src/a.ts')]));
    expect(locks.acquire('b', ask('write', [p('src')])).status).toBe('queued');
    expect(locks.acquire('c', ask('read', [p('src')])).status).toBe('queued');
    expectError(() => locks.acquire('d', ask('read', [p('src')], false)), 'LOCK_DENIED');
    // Reads share: a read below a read on the directory is granted.
    const { locks: l2 } = setup();
    l2.acquire('a', ask('read', [p('src/a.ts')]));
    expect(l2.acquire('b', ask('read', [p('src')])).status).toBe('granted');
    expect(l2.acquire('c', ask('write', [p('src/b.ts')])).status).toBe('queued');
  });

  it('never conflicts on paths of which neither is a prefix by whole segments', () => {
    const { locks } = setup();
    locks.acquire('a', ask('write', [p('src/a')]));
    expect(locks.acquire('b', ask('write', [p('src/ab')])).status).toBe('granted');
    expect(locks.acquire('c', ask('write', [p('srcx')])).status).toBe('granted');
    expect(locks.acquire('d', ask('write', [p('src/a', 'other')])).status).toBe('granted');
  });

  it('is case-sensitive', () => {
    const { locks } = setup();
    locks.acquire('a', ask('write', [p('Src')]));
    expect(locks.acquire('b', ask('write', [p('src/x')])).status).toBe('granted');
  });

  it('names the conflicting lock and its path in LOCK_DENIED', () => {
    const { locks } = setup();
    locks.acquire('a', ask('write', [p('src/a.ts')]));
    const err = expectError(() => locks.acquire('b', ask('write', [p('src')], false)), 'LOCK_DENIED');
    expect(err.details.blockers).toEqual([
      {
        resource: p('src'),
        holders: [expect.objectContaining({ sessionId: 'a', mode: 'write', resource: p('src/a.ts') })],
        queueLength: 0,
      },
    ]);
  });

  it('lets a session nest its own locks', () => {
    const { locks } = setup();
    locks.acquire('a', ask('write', [p('src')]));
    expect(locks.acquire('a', ask('write', [p('src/a.ts')])).status).toBe('granted');
    expect(locks.acquire('b', ask('read', [p('src/b.ts')])).status).toBe('queued');
  });
});

describe('FIFO across the hierarchy', () => {
  it('queues a later file lock behind a waiting directory lock, and grants in order', () => {
    const { locks, positions, granted } = setup();
    locks.acquire('a', ask('write', [p('src/a.ts')]));
    const dir = ticketOf(locks.acquire('b', ask('write', [p('src')])));
    const file = ticketOf(locks.acquire('c', ask('write', [p('src/b.ts')])));
    expect(at(positions.get(dir))).toEqual([1]);
    expect(at(positions.get(file))).toEqual([2]);
    // Unrelated paths do not queue behind it.
    expect(locks.acquire('d', ask('write', [p('docs/x.md')])).status).toBe('granted');
    locks.release('a', [p('src/a.ts')]);
    expect(granted).toEqual([dir]);
    expect(at(positions.get(file))).toEqual([1]);
    locks.release('b', [p('src')]);
    expect(granted).toEqual([dir, file]);
  });

  it('does not queue two files of one directory behind each other', () => {
    const { locks, positions } = setup();
    locks.acquire('a', ask('write', [p('src/a.ts')]));
    locks.acquire('a', ask('write', [p('src/b.ts')]));
    const ta = ticketOf(locks.acquire('b', ask('write', [p('src/a.ts')])));
    const tb = ticketOf(locks.acquire('c', ask('write', [p('src/b.ts')])));
    expect(at(positions.get(ta))).toEqual([1]);
    expect(at(positions.get(tb))).toEqual([1]);
    expect(locks.acquire('d', ask('write', [p('src/c.ts')])).status).toBe('granted');
  });

  it('keeps strict FIFO among tickets for one path, as for a function', () => {
    const { locks, positions } = setup();
    locks.acquire('a', ask('write', [p('src')]));
    const r1 = ticketOf(locks.acquire('b', ask('read', [p('src')])));
    const r2 = ticketOf(locks.acquire('c', ask('read', [p('src')])));
    expect(at(positions.get(r1))).toEqual([1]);
    expect(at(positions.get(r2))).toEqual([2]);
  });

  it('mixes paths and functions in one all-or-nothing batch', () => {
    const { locks, granted } = setup();
    locks.acquire('a', ask('write', [f(1)]));
    const t = ticketOf(locks.acquire('b', ask('write', [p('src'), f(1)])));
    expect(locks.acquire('c', ask('write', [p('src/x')])).status).toBe('queued');
    locks.release('a', [f(1)]);
    expect(granted[0]).toBe(t);
    expect(locks.holding('b').map((g) => g.resource)).toEqual([f(1), p('src')]);
  });
});

describe('everything else as for functions', () => {
  it('gives a path a fence above every fence its program issued', () => {
    const { locks } = setup();
    const fn = locks.acquire('a', ask('write', [f(1)]));
    const path = locks.acquire('b', ask('write', [p('src')]));
    if (fn.status !== 'granted' || path.status !== 'granted') throw new Error('not granted');
    expect(path.grants[0]!.fence).toBeGreaterThan(fn.grants[0]!.fence);
  });

  it('upgrades a sole read to write at once, and queues an upgrade behind a reader below', () => {
    const { locks, granted } = setup();
    locks.acquire('a', ask('read', [p('src')]));
    expect(locks.acquire('a', ask('write', [p('src')])).status).toBe('granted');
    locks.downgrade('a', [p('src')]);
    locks.acquire('b', ask('read', [p('src/x')]));
    const up = ticketOf(locks.acquire('a', ask('write', [p('src')])));
    locks.release('b', [p('src/x')]);
    expect(granted).toEqual([up]);
  });

  it('lets a holder past tickets that wait for it instead of deadlocking', () => {
    const { locks } = setup();
    locks.acquire('a', ask('write', [p('src/a')]));
    ticketOf(locks.acquire('b', ask('read', [p('src')])));
    // b waits for a; a's new lock below src must not wait behind b.
    expect(locks.acquire('a', ask('write', [p('src/b')])).status).toBe('granted');
  });

  it('refuses a wait that closes a cycle through the hierarchy', () => {
    const { locks } = setup();
    locks.acquire('a', ask('write', [p('src/a')]));
    locks.acquire('b', ask('write', [p('docs')]));
    ticketOf(locks.acquire('a', ask('write', [p('docs/x')])));
    expectError(() => locks.acquire('b', ask('write', [p('src')])), 'DEADLOCK');
  });

  it('leaves nothing behind when a session goes', () => {
    const { locks, granted } = setup();
    locks.acquire('a', ask('write', [p('src/a/b')]));
    const t = ticketOf(locks.acquire('b', ask('write', [p('src')])));
    locks.acquire('c', ask('write', [p('lib')]));
    ticketOf(locks.acquire('a', ask('write', [p('lib/x')])));
    locks.removeSession('a');
    expect(granted).toContain(t);
    locks.removeSession('b');
    locks.removeSession('c');
    expect(locks.status()).toEqual([]);
    expect(locks.scheduled).toBe(0);
  });

  it('lists only the paths locked or awaited in status, with real positions', () => {
    const { locks } = setup();
    locks.acquire('a', ask('write', [p('src/a/b')]));
    const t = ticketOf(locks.acquire('b', ask('write', [p('src')])));
    const status = locks.status('repo');
    expect(status.map((s) => s.resource)).toEqual([p('src'), p('src/a/b')]);
    expect(status[0]!.queue).toEqual([expect.objectContaining({ ticket: t, position: 1 })]);
  });

  it('answers paths.check: the covering write lock held, or who is in the way', () => {
    const { locks } = setup();
    locks.acquire('a', ask('write', [p('src')]));
    expect(locks.pathWriter('a', { program: 'repo', path: 'src/x/y.ts' })).toMatchObject({ held: { fence: 1 } });
    const other = locks.pathWriter('b', { program: 'repo', path: 'src/x/y.ts' });
    expect(other.held).toBeUndefined();
    expect(other).toMatchObject({ blocker: { holders: [{ sessionId: 'a', resource: p('src') }], queueLength: 0 } });
    expect(locks.status()).toHaveLength(1);
  });
});

describe('the holder hears of its waiters', () => {
  it('at once the first time, then at most once per interval, with the state then', () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const locks = new LockManager({ clock, waitersPushMs: 1000 });
    const told: Array<{ sessionId: string; waiting: number[]; oldest: number[] }> = [];
    locks.on('waiters', (e) =>
      told.push({
        sessionId: e.sessionId,
        waiting: e.locks.map((l) => l.waiting),
        oldest: e.locks.map((l) => l.oldestWaitMs),
      }),
    );
    locks.acquire('a', ask('write', [p('src')]));
    locks.acquire('b', ask('read', [p('src/x')]));
    clock.advance(0);
    expect(told).toEqual([{ sessionId: 'a', waiting: [1], oldest: [0] }]);
    clock.advance(300);
    locks.acquire('c', ask('write', [p('src')]));
    clock.advance(0);
    expect(told).toHaveLength(1);
    clock.advance(700);
    expect(told[1]).toEqual({ sessionId: 'a', waiting: [2], oldest: [1000] });
    // The waiters give up or go away: the holder is told nobody waits any more, once.
    locks.acquire('d', ask('read', [p('src/y')]));
    locks.removeSession('b');
    const c = locks.tickets('c')[0]!;
    locks.cancel('c', c.ticket);
    locks.removeSession('d');
    clock.advance(1000);
    expect(told[2]).toEqual({ sessionId: 'a', waiting: [0], oldest: [0] });
    clock.advance(5000);
    expect(told).toHaveLength(3);
    // A waiter gone before the holder was told of it: nothing to tell.
    locks.acquire('e', ask('write', [p('src/z')]));
    locks.removeSession('e');
    clock.advance(1000);
    expect(told).toHaveLength(3);
    locks.removeSession('a');
    expect(locks.scheduled).toBe(0);
  });
});
