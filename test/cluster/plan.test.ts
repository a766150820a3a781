import { describe, expect, it } from 'vitest';
import {
  applyRestore,
  type JournalState,
  planRestore,
  type RecordedLock,
  SKEW_MARGIN_MS,
} from '../../src/cluster/restore.ts';
import { FakeClock } from '../../src/concurrency/fake-clock.ts';
import { LockManager, SessionRegistry } from '../../src/concurrency/index.ts';
import type { Resource } from '../../src/protocol/resource.ts';

// The restore checks of docs/cluster.md failover rule 3 on journal states a consistent leader never writes
// (records that crossed), as well as the ordinary ones.

const NOW = Date.UTC(2026, 0, 1);
const f = (n: number): Resource => ({ program: 'main', function: n });
const session = (id: string) => ({ id, name: id, role: 'agent' as const, secretDigest: Buffer.alloc(32) });

function lock(
  sessionId: string,
  resource: Resource,
  mode: 'read' | 'write',
  fence: number,
  leftMs = 60_000,
): RecordedLock {
  return {
    sessionId,
    resource,
    mode,
    fence,
    grantedAt: NOW - 1_000,
    expiresAt: NOW + leftMs,
    ttlMs: 120_000,
    description: null,
  };
}

function state(locks: RecordedLock[], committed: Record<number, number> = {}): JournalState {
  return {
    head: 7,
    readAt: NOW,
    sessions: ['a', 'b', 'c'].map(session),
    locks,
    committedFence: (r) => ('function' in r ? committed[r.function] : undefined),
  };
}

const restoredOf = (plan: ReturnType<typeof planRestore>) =>
  [...plan.locks].flatMap(([id, ls]) =>
    ls.map((l) => `${id}:${'function' in l.resource ? l.resource.function : 's'}:${l.fence}`),
  );
const droppedOf = (plan: ReturnType<typeof planRestore>) =>
  plan.dropped.map((d) => `${d.lock.sessionId}:${d.lock.fence}:${d.reason}`);

describe('planRestore', () => {
  it('restores, of path records that conflict through the hierarchy, only the highest fence', () => {
    const p = (path: string): Resource => ({ program: 'main', path });
    const plan = planRestore(
      state([
        lock('a', p('src'), 'write', 5),
        lock('b', p('src/a.ts'), 'write', 9),
        lock('c', p('src/ab'), 'read', 7),
        lock('c', p('docs'), 'read', 3),
        lock('a', p('docs/x'), 'read', 4),
      ]),
      () => true,
    );
    expect([...plan.locks].flatMap(([id, ls]) => ls.map((l) => `${id}:${l.fence}`)).sort()).toEqual(
      ['a:4', 'b:9', 'c:3', 'c:7'].sort(),
    );
    // src (5) loses to src/a.ts (9); src/ab then crosses nothing kept; docs and docs/x both read.
    expect(droppedOf(plan)).toEqual(['a:5:superseded']);
  });

  it('restores, of conflicting records of a resource, only the highest fence', () => {
    const plan = planRestore(
      state([lock('a', f(1), 'write', 5), lock('b', f(1), 'write', 9), lock('c', f(1), 'read', 7)]),
      () => true,
    );
    expect(restoredOf(plan)).toEqual(['b:1:9']);
    expect(droppedOf(plan).sort()).toEqual(['a:5:superseded', 'c:7:superseded']);
  });

  it('restores readers together, unless a newer writer supersedes them', () => {
    const readers = planRestore(state([lock('a', f(1), 'read', 5), lock('b', f(1), 'read', 6)]), () => true);
    expect(restoredOf(readers).sort()).toEqual(['a:1:5', 'b:1:6']);
    const writer = planRestore(state([lock('a', f(1), 'read', 5), lock('b', f(1), 'write', 6)]), () => true);
    expect(restoredOf(writer)).toEqual(['b:1:6']);
  });

  it('drops a lock of a session that left, below a committed fence, on a gone resource, or expired', () => {
    const plan = planRestore(
      state(
        [
          lock('gone', f(1), 'write', 5),
          lock('a', f(2), 'write', 6),
          lock('a', f(3), 'write', 7),
          lock('b', f(4), 'write', 8, -SKEW_MARGIN_MS),
          lock('c', f(5), 'write', 9),
        ],
        { 2: 7, 5: 9 },
      ),
      (r) => !('function' in r) || r.function !== 3,
    );
    expect(droppedOf(plan)).toEqual(['gone:5:session-left', 'a:6:stale-fence', 'a:7:resource-gone', 'b:8:expired']);
    // A fence equal to the committed one is the holder's own edit: restored.
    expect(restoredOf(plan)).toEqual(['c:5:9']);
    // What was left of its lease by the later reckoning: its holder may count on the lease it was
    // told of until then by the old leader's clock.
    expect(plan.locks.get('c')?.[0]).toMatchObject({ expiresAt: NOW + 60_000 + SKEW_MARGIN_MS, ttlMs: 120_000 });
  });

  it('restores a lock whose recorded lease may still run by the old leader’s clock, until it could have ended', () => {
    // b's recorded lease ends 300 ms from now, c's ended 300 ms ago: either may still be running
    // by the old leader's clock. a's ended a margin and more ago.
    const plan = planRestore(
      state([lock('b', f(1), 'write', 8, 300), lock('c', f(2), 'write', 9, -300), lock('a', f(3), 'write', 10, -501)]),
      () => true,
    );
    expect(restoredOf(plan)).toEqual(['b:1:8', 'c:2:9']);
    expect(droppedOf(plan)).toEqual(['a:10:expired']);
    expect(plan.locks.get('b')?.[0]).toMatchObject({ expiresAt: NOW + 300 + SKEW_MARGIN_MS });
    expect(plan.locks.get('c')?.[0]).toMatchObject({ expiresAt: NOW - 300 + SKEW_MARGIN_MS });
  });

  it('grants nobody else the resource of a recorded lock before its lease could have ended', () => {
    // The holder was told its lease ends 300 ms from now; the new leader's reckoning of it may be
    // off by the skew margin either way. Another session asks for the resource at once.
    const clock = new FakeClock(NOW);
    const locks = new LockManager({ clock });
    const sessions = new SessionRegistry({ clock, locks, graceMs: 10_000 });
    applyRestore(
      planRestore(state([lock('b', f(1), 'write', 8, 300)]), () => true),
      locks,
      sessions,
    );
    expect(locks.acquire('t', { resources: [f(1)], mode: 'write', wait: true }).status).toBe('queued');
    clock.advance(300 + SKEW_MARGIN_MS - 1);
    expect(locks.holding('t')).toEqual([]);
    clock.advance(1);
    expect(locks.holding('t')).toMatchObject([{ resource: f(1), mode: 'write' }]);
  });
});
