import { describe, expect, it } from 'vitest';
import { backoffDelay, type HelloResult, type LockstepClient } from '../../src/client/index.ts';
import { DEFAULT_BACKOFF } from '../../src/client/backoff.ts';
import { until } from '../helpers/until.ts';
import { addFns, droppableSockets, next, useSdk } from '../helpers/sdk.ts';

async function dropAndReturn(c: LockstepClient, sockets: ReturnType<typeof droppableSockets>, refuseNext = 0) {
  const disconnected = next(c, 'disconnected');
  const connected = next(c, 'connected');
  sockets.drop(refuseNext);
  return { disconnected: (await disconnected)[0], connected: (await connected)[0] };
}

describe('SDK reconnect', () => {
  const t = useSdk();
  const backoff = { initialDelayMs: 20, factor: 2, maxDelayMs: 1_000, jitter: 0 };

  it('reconnects with backoff after the server drops the socket and, with resume grace, still holds its locks', async () => {
    const s = await t.server({ sessionGraceMs: 60_000 });
    const sockets = droppableSockets();
    const a = await t.client(s, 'a', { WebSocket: sockets.WebSocket, reconnect: backoff });
    expect(a.hello?.resumeSecret).toEqual(expect.any(String));
    const [f] = (await addFns(a, ['f'])) as [number];
    const lock = await a.acquire({ functions: [f], mode: 'write' });
    const sessionId = a.sessionId;
    const delays: number[] = [];
    a.on('reconnecting', (r) => delays.push(r.delayMs));
    // While the socket is down the client cannot know whether the lock is still its own.
    const whileDown: unknown[] = [];
    a.on('suspended', ({ locks }) => whileDown.push(locks, lock.state, lock.held, a.suspended));
    a.on('lost', (l) => whileDown.push(l));

    const { disconnected, connected } = await dropAndReturn(a, sockets, 2);
    expect(disconnected.willReconnect).toBe(true);
    expect(delays).toEqual([20, 40, 80]);
    expect(whileDown).toEqual([lock.grants, 'suspended', false, true]);
    expect(connected).toMatchObject({ resumed: true, reconnect: true, hello: { sessionId, resumed: true } });
    expect(a.sessionId).toBe(sessionId);
    expect(lock.state).toBe('held');
    expect(lock.signal.aborted).toBe(false);
    const [status] = (await a.lock.status({})).resources;
    expect(status?.holders).toMatchObject([{ sessionId, fence: lock.fences[String(f)] }]);
    const edit = await a.edit.apply({
      ops: [{ op: 'addNode', function: f, node: { id: 1, op: 'const' } }],
      fences: lock.fences,
    });
    expect(edit.functions[0]?.version).toBe(2);
  });

  it('reports a lock whose lease ran out while the socket was down as lost, with the reason, and aborts the signal of the withLocks holding it', async () => {
    const s = await t.server({ sessionGraceMs: 60_000 });
    const sockets = droppableSockets();
    const a = await t.client(s, 'a', { WebSocket: sockets.WebSocket, reconnect: backoff });
    const observer = await t.client(s, 'observer', { role: 'observer' });
    const [f] = (await addFns(a, ['f'])) as [number];
    await observer.events.subscribe({ topics: ['locks'] });
    const ttlMs = 300;
    const expired = next(observer, 'event', (e) => e.type === 'expired');
    const lost = next(a, 'lost');
    // A listener that throws does not cut the resume short: its error goes to 'error'.
    a.on('lost', () => {
      throw new Error('a careless listener');
    });
    const careless = next(a, 'error', (e) => e.message === 'a careless listener');
    const states: string[] = [];
    const outcome = await a.withLocks({ functions: [f], mode: 'write', ttlMs }, async (lock) => {
      const grantedBy = Date.now();
      const suspended = next(a, 'suspended');
      sockets.cut();
      await suspended;
      states.push(lock.state);
      // The server let the lease run out while the client was away; the client's own clock
      // agrees once it is past the lease from when the grant was read.
      await expired;
      await until('the lease over by the client clock', 10_000, async () =>
        Date.now() > grantedBy + ttlMs ? true : undefined,
      );
      sockets.heal();
      await new Promise((resolve) => lock.signal.addEventListener('abort', resolve, { once: true }));
      states.push(lock.state);
      return { reason: lock.signal.reason, fences: lock.fences, lost: lock.lost };
    });
    const info = {
      resource: { program: 'main', function: f },
      mode: 'write',
      fences: [outcome.fences[f]],
      reason: 'expired',
    };
    expect(states).toEqual(['suspended', 'lost']);
    expect((await lost)[0]).toEqual(info);
    expect(outcome.lost).toEqual(info);
    expect(outcome.reason).toMatchObject({ type: 'LOCK_LOST', retryable: false, data: info });
    await careless;
    expect(a.state).toBe('open');
    expect(a.held()).toEqual([]);
    // Never acquired again behind the application's back; an edit under the lost fence is refused.
    expect((await a.lock.status({})).resources).toEqual([]);
    await expect(
      a.edit.apply({ ops: [{ op: 'addNode', function: f, node: { id: 1, op: 'const' } }], fences: outcome.fences }),
    ).rejects.toMatchObject({ type: 'LOCK_REQUIRED' });
  });

  it('re-subscribes events from the last sequence number and restores watches', async () => {
    const s = await t.server({ sessionGraceMs: 60_000 });
    const sockets = droppableSockets();
    const c = await t.client(s, 'observer', { WebSocket: sockets.WebSocket, reconnect: backoff, role: 'observer' });
    const steady = await t.client(s, 'steady', { role: 'observer' });
    const a = await t.client(s, 'a');
    const [f] = (await addFns(a, ['f'])) as [number];
    const seen = { c: [] as number[], steady: [] as number[] };
    c.on('event', (e) => seen.c.push(e.seq));
    steady.on('event', (e) => seen.steady.push(e.seq));
    await c.events.subscribe({ topics: ['locks', 'edits'] });
    await steady.events.subscribe({ topics: ['locks', 'edits'] });
    await c.function.watch({ functions: [f] });
    const granted = next(c, 'event', (e) => e.type === 'granted');
    await a.acquire({ functions: [f], mode: 'write' });
    await granted;

    const disconnected = next(c, 'disconnected');
    const connected = next(c, 'connected');
    sockets.drop();
    await disconnected;
    // While the observer is away: an edit and a release it must still hear about, in order.
    await a.edit.apply({ ops: [{ op: 'addNode', function: f, node: { id: 1, op: 'const' } }] });
    await a.lock.releaseAll();
    expect((await connected)[0].resumed).toBe(true);

    const changed = next(c, 'function.changed');
    const mark = Math.max(...seen.steady);
    const last = next(c, 'event', (e) => e.type === 'released' && e.seq > mark);
    const lastSteady = next(steady, 'event', (e) => e.type === 'released' && e.seq > mark);
    await a.withLocks({ functions: [f], mode: 'write' }, () =>
      a.edit.apply({ ops: [{ op: 'addNode', function: f, node: { id: 2, op: 'const' } }] }),
    );
    expect((await changed)[0]).toMatchObject({ function: f, version: 3 });
    await Promise.all([last, lastSteady]);
    expect(seen.c).toEqual(seen.steady);
  });

  it('starts a new session when the old one cannot be taken back, and says its locks are lost', async () => {
    const s = await t.server();
    const sockets = droppableSockets();
    const a = await t.client(s, 'a', { WebSocket: sockets.WebSocket, reconnect: backoff });
    expect(a.hello?.resumeSecret).toBeUndefined();
    const [f] = (await addFns(a, ['f'])) as [number];
    const lock = await a.acquire({ functions: [f], mode: 'write' });
    const before = a.sessionId;
    const lost = next(a, 'sessionLost');
    // Without resume grace the server released it with the socket: lost at once, not suspended.
    const lostLock = next(a, 'lost');
    a.on('suspended', () => expect.fail('nothing to suspend without resume grace'));
    const { connected } = await dropAndReturn(a, sockets);
    expect(connected.resumed).toBe(false);
    expect((await lost)[0]).toMatchObject({
      previousSessionId: before,
      locks: [{ resource: { program: 'main', function: f } }],
    });
    expect((await lostLock)[0]).toEqual({
      resource: { program: 'main', function: f },
      mode: 'write',
      fences: [lock.grants[0]?.fence],
      reason: 'session-lost',
    });
    expect(lock.state).toBe('lost');
    expect(a.sessionId).not.toBe(before);
    expect(a.held()).toEqual([]);
    expect((await a.lock.status({})).resources).toEqual([]);
  });

  it('rejects a waiting acquire with DISCONNECTED, and works again once reconnected', async () => {
    const s = await t.server({ sessionGraceMs: 60_000 });
    const sockets = droppableSockets();
    const holder = await t.client(s, 'holder');
    const a = await t.client(s, 'a', { WebSocket: sockets.WebSocket, reconnect: backoff });
    const [f] = (await addFns(holder, ['f'])) as [number];
    const held = await holder.acquire({ functions: [f], mode: 'write' });
    let queued!: () => void;
    const isQueued = new Promise<void>((resolve) => (queued = resolve));
    const waiting = a.acquire({ functions: [f], mode: 'write', onQueue: () => queued() });
    await isQueued;
    const connected = next(a, 'connected');
    sockets.drop();
    await expect(waiting).rejects.toMatchObject({ type: 'DISCONNECTED', retryable: true });
    await connected;
    expect((await holder.lock.status({})).resources[0]?.queue).toEqual([]);
    const again = a.acquire({ functions: [f], mode: 'write' });
    await held.release();
    expect((await again).functions).toEqual([f]);
  });

  it('closes with UNAUTHORIZED when the server refuses the resume and ends the socket, instead of retrying forever', async () => {
    const s = await t.server({ sessionGraceMs: 60_000 });
    const sockets = droppableSockets();
    const a = await t.client(s, 'a', { WebSocket: sockets.WebSocket, reconnect: backoff });
    // The server no longer takes this client's credentials (a revoked token answers the same way).
    const internals = (a as unknown as { connection: { helloResult: HelloResult } }).connection;
    internals.helloResult = { ...internals.helloResult, resumeSecret: 'not-the-secret' };
    const attempts: number[] = [];
    a.on('reconnecting', (r) => attempts.push(r.attempt));
    const closed = next(a, 'closed');
    sockets.drop();
    const [info] = await closed;
    expect(info.error).toMatchObject({ type: 'UNAUTHORIZED', retryable: false });
    expect(attempts).toEqual([1]);
    expect(a.state).toBe('closed');
  });

  it('gives up after maxAttempts and fails what waits with CLOSED', async () => {
    const s = await t.server();
    const a = await t.client(s, 'a', { reconnect: { ...backoff, maxAttempts: 2 } });
    const attempts: number[] = [];
    a.on('reconnecting', (r) => attempts.push(r.attempt));
    const closed = next(a, 'closed');
    await s.stop('gone for good');
    const [info] = await closed;
    expect(attempts).toEqual([1, 2]);
    expect(info.error).toMatchObject({ type: 'CLOSED' });
    expect(a.state).toBe('closed');
    await expect(a.session.ping()).rejects.toMatchObject({ type: 'CLOSED' });
  });

  it('backs off exponentially, capped, with jitter taken off each delay', () => {
    const b = { ...DEFAULT_BACKOFF, initialDelayMs: 100, maxDelayMs: 1_000, factor: 2, jitter: 0.5 };
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, b, () => 0))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(backoffDelay(3, b, () => 1)).toBe(200);
    expect(backoffDelay(3, b, () => 0.5)).toBe(300);
  });
});
