import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/concurrency/fake-clock.ts';
import { LockManager } from '../../src/concurrency/index.ts';
import { SessionRegistry } from '../../src/concurrency/sessions.ts';
import type { SessionEvents } from '../../src/concurrency/sessions.ts';
import { LockstepError } from '../../src/protocol/errors.ts';
import type { Resource } from '../../src/protocol/resource.ts';

const f = (n: number): Resource => ({ program: 'main', function: n });
const T0 = Date.UTC(2025, 0, 1);
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function setup(opts: { idleTimeoutMs?: number; graceMs?: number } = {}) {
  const clock = new FakeClock(T0);
  const locks = new LockManager({ clock });
  const sessions = new SessionRegistry({ clock, locks, ...opts });
  const log: string[] = [];
  for (const name of ['joined', 'left', 'idle', 'detached', 'resumed'] as Array<keyof SessionEvents>) {
    sessions.on(name, (e: unknown) => {
      const s = e as { id?: string; name?: string; session?: { name: string }; reason?: string };
      log.push(s.session === undefined ? `${name}:${s.name}` : `${name}:${s.session.name}:${s.reason}`);
    });
  }
  locks.on('released', (e) => log.push(`released:${e.reason}`));
  locks.on('granted', (e) => log.push(`granted:${e.ticket === null ? 'now' : 'queued'}`));
  locks.on('cancelled', (e) => log.push(`cancelled:${e.reason}`));
  return { clock, locks, sessions, log };
}

function caughtType(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof LockstepError) return err.type;
    throw err;
  }
  return 'no error';
}

describe('SessionRegistry', () => {
  it('registers sessions with UUID v4 ids and default names', () => {
    const { sessions, log } = setup();
    const { session, resumeSecret } = sessions.register({ role: 'agent' });
    expect(session.id).toMatch(UUID_V4);
    expect(session.name).toBe(`agent-${session.id.slice(0, 8)}`);
    expect(session).toMatchObject({ role: 'agent', connectedAt: T0, lastActiveAt: T0, state: 'connected' });
    expect(resumeSecret).toBeUndefined();
    const named = sessions.register({ name: 'alice', role: 'observer' }).session;
    expect(named.name).toBe('alice');
    expect(named.id).not.toBe(session.id);
    expect(sessions.size).toBe(2);
    expect(sessions.get(session.id)).toEqual(session);
    expect(log).toEqual([`joined:${session.name}`, 'joined:alice']);
  });

  it('lists sessions with the locks they hold and the tickets they wait on', () => {
    const { sessions, locks } = setup();
    const a = sessions.register({ name: 'a', role: 'agent' }).session;
    const b = sessions.register({ name: 'b', role: 'agent' }).session;
    locks.acquire(a.id, { resources: [f(1)], mode: 'write' });
    locks.acquire(b.id, { resources: [f(1)], mode: 'read', wait: true });
    const list = sessions.list();
    expect(list.map((s) => [s.name, s.locks.length, s.waiting.length])).toEqual([
      ['a', 1, 0],
      ['b', 0, 1],
    ]);
  });

  it('remove() releases everything and withdraws every ticket in one call, then announces the leave', () => {
    const { sessions, locks, log } = setup();
    const a = sessions.register({ name: 'a', role: 'agent' }).session;
    const b = sessions.register({ name: 'b', role: 'agent' }).session;
    locks.acquire(a.id, { resources: [f(1)], mode: 'write' });
    locks.acquire(b.id, { resources: [f(2)], mode: 'write' });
    locks.acquire(a.id, { resources: [f(2)], mode: 'write', wait: true });
    locks.acquire('c', { resources: [f(1)], mode: 'write', wait: true, waitTimeoutMs: 5000 });
    log.length = 0;
    sessions.remove(a.id, 'disconnect');
    expect(log).toEqual(['cancelled:disconnect', 'released:disconnect', 'granted:queued', 'left:a:disconnect']);
    expect(locks.holding(a.id)).toEqual([]);
    expect(locks.tickets(a.id)).toEqual([]);
    expect(locks.holding('c')).toHaveLength(1);
    expect(locks.holding(b.id)).toHaveLength(1);
    expect(sessions.get(a.id)).toBeUndefined();
    sessions.remove(a.id, 'disconnect');
    expect(log.filter((l) => l.startsWith('left'))).toHaveLength(1);
  });

  it('remove() for a shutdown names shutdown as the reason of every release and withdrawal', () => {
    const { sessions, locks, log } = setup();
    const a = sessions.register({ name: 'a', role: 'agent' }).session;
    locks.acquire(a.id, { resources: [f(1)], mode: 'write' });
    locks.acquire('x', { resources: [f(2)], mode: 'write' });
    locks.acquire(a.id, { resources: [f(2)], mode: 'write', wait: true });
    log.length = 0;
    sessions.remove(a.id, 'shutdown');
    expect(log).toEqual(['cancelled:shutdown', 'released:shutdown', 'left:a:shutdown']);
  });

  it('reports an idle session once its idle timeout passes, with touch() pushing it back', () => {
    const { sessions, clock, log } = setup({ idleTimeoutMs: 1000 });
    const a = sessions.register({ name: 'a', role: 'agent' }).session;
    sessions.register({ name: 'b', role: 'agent' });
    clock.advance(600);
    sessions.touch(a.id);
    clock.advance(400);
    expect(log).toEqual(['joined:a', 'joined:b', 'idle:b']);
    clock.advance(599);
    expect(log).toHaveLength(3);
    clock.advance(1);
    expect(log).toEqual(['joined:a', 'joined:b', 'idle:b', 'idle:a']);
    expect(sessions.get(a.id)!.lastActiveAt).toBe(T0 + 600);
    sessions.remove(a.id, 'idle');
    expect(log.at(-1)).toBe('left:a:idle');
  });

  it('tracks idle deadlines on one timer', () => {
    const { sessions, clock } = setup();
    for (let i = 0; i < 20; i++) sessions.register({ role: 'agent' });
    expect(clock.pending()).toBe(1);
    sessions.close();
    expect(clock.pending()).toBe(0);
  });

  it('detach() without grace is a disconnect', () => {
    const { sessions, locks, log } = setup();
    const a = sessions.register({ name: 'a', role: 'agent' }).session;
    locks.acquire(a.id, { resources: [f(1)], mode: 'write' });
    sessions.detach(a.id);
    expect(log.slice(-2)).toEqual(['released:disconnect', 'left:a:disconnect']);
    expect(sessions.size).toBe(0);
  });

  describe('with resume grace', () => {
    it('withdraws tickets at once, keeps the locks, and hands them back on resume', () => {
      const { sessions, locks, clock, log } = setup({ graceMs: 10_000 });
      const { session: a, resumeSecret } = sessions.register({ name: 'a', role: 'agent' });
      expect(resumeSecret).toMatch(/^[A-Za-z0-9_-]{43}$/);
      locks.acquire('other', { resources: [f(2)], mode: 'write' });
      locks.acquire(a.id, { resources: [f(1)], mode: 'write' });
      locks.acquire(a.id, { resources: [f(2)], mode: 'write', wait: true });
      sessions.detach(a.id);
      expect(log.slice(-2)).toEqual(['cancelled:disconnect', 'detached:a']);
      expect(sessions.get(a.id)!.state).toBe('detached');
      expect(locks.tickets(a.id)).toEqual([]);
      clock.advance(9999);
      expect(caughtType(() => sessions.resume(a.id, 'wrong'))).toBe('UNAUTHORIZED');
      const back = sessions.resume(a.id, resumeSecret!);
      expect(back).toMatchObject({ id: a.id, state: 'connected', lastActiveAt: T0 + 9999 });
      expect(log.at(-1)).toBe('resumed:a');
      clock.advance(100_000);
      expect(locks.holding(a.id)).toEqual([expect.objectContaining({ resource: f(1) })]);
      expect(sessions.get(a.id)!.state).toBe('connected');
    });

    it('releases the locks when the grace ends, after which resume finds nothing', () => {
      const { sessions, locks, clock, log } = setup({ graceMs: 10_000 });
      const { session: a, resumeSecret } = sessions.register({ name: 'a', role: 'agent' });
      locks.acquire(a.id, { resources: [f(1)], mode: 'write' });
      locks.acquire('b', { resources: [f(1)], mode: 'write', wait: true });
      sessions.detach(a.id);
      sessions.detach(a.id);
      clock.advance(10_000);
      expect(log.slice(-3)).toEqual(['released:disconnect', 'granted:queued', 'left:a:grace-expired']);
      expect(caughtType(() => sessions.resume(a.id, resumeSecret!))).toBe('NOT_FOUND');
      expect(caughtType(() => sessions.resume('unknown', resumeSecret!))).toBe('NOT_FOUND');
    });

    it('does not report a detached session as idle', () => {
      const { sessions, clock, log } = setup({ graceMs: 5000, idleTimeoutMs: 1000 });
      const a = sessions.register({ name: 'a', role: 'agent' }).session;
      sessions.detach(a.id);
      clock.advance(4000);
      expect(log).toEqual(['joined:a', 'detached:a']);
    });

    it('lets remove() end a detached session early', () => {
      const { sessions, clock, log } = setup({ graceMs: 5000 });
      const a = sessions.register({ name: 'a', role: 'agent' }).session;
      sessions.detach(a.id);
      sessions.remove(a.id, 'shutdown');
      clock.advance(10_000);
      expect(log).toEqual(['joined:a', 'detached:a', 'left:a:shutdown']);
      expect(clock.pending()).toBe(0);
    });
  });

  it('refuses resume without grace', () => {
    const { sessions } = setup();
    const a = sessions.register({ role: 'agent' }).session;
    expect(caughtType(() => sessions.resume(a.id, 'anything'))).toBe('UNAUTHORIZED');
  });
});
