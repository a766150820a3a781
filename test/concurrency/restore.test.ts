import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/concurrency/fake-clock.ts';
import { LockDenied, LockManager, type RestoredLock, SessionRegistry } from '../../src/concurrency/index.ts';
import { LockstepError } from '../../src/protocol/errors.ts';
import { type LockMode, type Resource, resourceKey } from '../../src/protocol/resource.ts';

// Locks restored after a failover (docs/cluster.md, failover rule 6): held for their absent owner, with their
// own fences and leases, until it resumes and releases them, its grace window ends, or they expire.

const f = (n: number): Resource => ({ program: 'main', function: n });
const T0 = Date.UTC(2025, 0, 1);
const GRACE = 10_000;
const SECRET = 'the-resume-secret';

function setup() {
  const clock = new FakeClock(T0);
  const locks = new LockManager({ clock });
  const sessions = new SessionRegistry({ clock, locks, graceMs: GRACE });
  const released: Array<{ sessionId: string; reason: string }> = [];
  locks.on('released', (e) => released.push({ sessionId: e.sessionId, reason: e.reason }));
  return { clock, locks, sessions, released };
}

function restored(resource: Resource, mode: LockMode, fence: number, leftMs: number): RestoredLock {
  return { resource, mode, fence, grantedAt: T0 - 1_000, expiresAt: T0 + leftMs, ttlMs: 60_000 };
}

function adoptOwner(s: ReturnType<typeof setup>, id: string, held: RestoredLock[]): void {
  s.sessions.adopt({ id, name: id, role: 'agent', secretDigest: createHash('sha256').update(SECRET).digest() });
  s.locks.restore(id, held);
}

describe('restored locks', () => {
  it('keep their fence and the rest of their lease, and are the owner’s again when it resumes', () => {
    const s = setup();
    adoptOwner(s, 'owner', [restored(f(1), 'write', 41, 5_000)]);
    expect(s.sessions.get('owner')?.state).toBe('detached');
    expect(s.locks.holding('owner')).toEqual([
      { resource: f(1), mode: 'write', fence: 41, grantedAt: T0 - 1_000, expiresAt: T0 + 5_000 },
    ]);
    expect(() => s.sessions.resume('owner', 'wrong')).toThrow(LockstepError);
    s.sessions.resume('owner', SECRET);
    // Renewing without a ttl gives the lock's own lease; the fence stays.
    expect(s.locks.renew('owner', [f(1)])).toMatchObject([{ fence: 41, expiresAt: T0 + 60_000 }]);
  });

  it('hold off conflicting requests (denied, or queued FIFO) until the owner releases', () => {
    const s = setup();
    adoptOwner(s, 'owner', [restored(f(1), 'write', 41, 60_000)]);
    expect(() => s.locks.acquire('t', { resources: [f(1)], mode: 'read' })).toThrow(LockDenied);
    const first = s.locks.acquire('t', { resources: [f(1)], mode: 'write', wait: true });
    const second = s.locks.acquire('u', { resources: [f(1)], mode: 'write', wait: true });
    expect([first.status, second.status]).toEqual(['queued', 'queued']);
    s.clock.advance(GRACE - 1);
    expect(s.locks.holding('t')).toEqual([]);
    s.sessions.resume('owner', SECRET);
    s.locks.release('owner', [f(1)]);
    expect(s.locks.holding('t')).toMatchObject([{ resource: f(1), mode: 'write' }]);
    expect(s.locks.holding('u')).toEqual([]);
  });

  it('go when the grace window ends without the owner, and waiters get them in order', () => {
    const s = setup();
    adoptOwner(s, 'owner', [restored(f(1), 'write', 41, 60_000)]);
    s.locks.acquire('t', { resources: [f(1)], mode: 'write', wait: true });
    s.clock.advance(GRACE);
    expect(s.sessions.get('owner')).toBeUndefined();
    expect(s.released).toEqual([{ sessionId: 'owner', reason: 'disconnect' }]);
    expect(s.locks.holding('t')).toMatchObject([{ resource: f(1), fence: 1 }]);
  });

  it('end at their recorded expiry, not a fresh lease', () => {
    const s = setup();
    adoptOwner(s, 'owner', [restored(f(1), 'write', 41, 2_000)]);
    s.locks.acquire('t', { resources: [f(1)], mode: 'write', wait: true });
    s.clock.advance(1_999);
    expect(s.locks.holding('t')).toEqual([]);
    s.clock.advance(1);
    expect(s.released).toEqual([{ sessionId: 'owner', reason: 'expired' }]);
    expect(s.locks.holding('t')).toHaveLength(1);
  });

  it('share a read lock with other readers, and refuse a restore that conflicts', () => {
    const s = setup();
    adoptOwner(s, 'owner', [restored(f(1), 'read', 41, 60_000)]);
    expect(s.locks.acquire('t', { resources: [f(1)], mode: 'read' }).status).toBe('granted');
    expect(() => s.locks.restore('other', [restored(f(1), 'write', 42, 60_000)])).toThrow(/conflicts/);
  });
});

/**
 * The grace window's promise, over random operations of present agents around an absent owner's
 * restored locks: nobody else holds a restored resource in a conflicting mode while the owner
 * still holds it, that is before it resumes and releases it, the window ends or the lease runs out.
 */
describe('restored locks under random operations', () => {
  const agents = ['a', 'b', 'c'] as const;
  const op = fc.oneof(
    fc.record({
      kind: fc.constant('acquire' as const),
      who: fc.constantFrom(...agents),
      fn: fc.integer({ min: 1, max: 4 }),
      mode: fc.constantFrom<LockMode>('read', 'write'),
      wait: fc.boolean(),
    }),
    fc.record({ kind: fc.constant('release' as const), who: fc.constantFrom(...agents) }),
    fc.record({ kind: fc.constant('leave' as const), who: fc.constantFrom(...agents) }),
    fc.record({ kind: fc.constant('resumeAndRelease' as const), fn: fc.integer({ min: 1, max: 4 }) }),
    fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 4_000 }) }),
  );
  const reserved = fc.uniqueArray(
    fc.record({
      fn: fc.integer({ min: 1, max: 4 }),
      mode: fc.constantFrom<LockMode>('read', 'write'),
      leftMs: fc.integer({ min: 1, max: 20_000 }),
    }),
    { selector: (r) => r.fn, minLength: 1, maxLength: 3 },
  );

  it('never grants a restored resource in a conflicting mode to anyone but its owner', () => {
    fc.assert(
      fc.property(reserved, fc.array(op, { maxLength: 40 }), (held, ops) => {
        const s = setup();
        adoptOwner(
          s,
          'owner',
          held.map((r, i) => restored(f(r.fn), r.mode, 100 + i, r.leftMs)),
        );
        const check = () => {
          for (const mine of s.locks.holding('owner')) {
            const status = s.locks.status().find((r) => resourceKey(r.resource) === resourceKey(mine.resource));
            const others = status?.holders.filter((h) => h.sessionId !== 'owner') ?? [];
            const conflict = others.some((h) => h.mode === 'write' || mine.mode === 'write');
            if (conflict) throw new Error(`${resourceKey(mine.resource)} granted over the owner's restored lock`);
          }
        };
        for (const o of ops) {
          if (o.kind === 'acquire') {
            try {
              s.locks.acquire(o.who, { resources: [f(o.fn)], mode: o.mode, wait: o.wait });
            } catch (err) {
              if (!(err instanceof LockstepError)) throw err;
            }
          } else if (o.kind === 'release') {
            s.locks.releaseAll(o.who);
          } else if (o.kind === 'leave') {
            s.locks.removeSession(o.who);
          } else if (o.kind === 'resumeAndRelease') {
            if (s.sessions.get('owner') === undefined) continue;
            s.sessions.resume('owner', SECRET);
            if (s.locks.grantOf('owner', f(o.fn)) !== undefined) s.locks.release('owner', [f(o.fn)]);
          } else {
            s.clock.advance(o.ms);
          }
          check();
        }
        // Liveness: once the window is over, nothing restored is left to hold anyone up.
        s.clock.advance(GRACE + 20_000);
        expect(s.locks.holding('owner')).toEqual([]);
      }),
      { seed: 20261202, numRuns: 200 },
    );
  });
});
