import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import {
  isLockstepError,
  type LockHandle,
  type LockstepClient,
  type QueueUpdate,
  type WebSocketConstructor,
} from '../../src/client/index.ts';
import { addFns, next, useSdk } from '../helpers/sdk.ts';
import { until } from '../helpers/until.ts';

/** Starts an acquire and resolves, with its promise, once the server has queued it. */
async function queue(
  c: LockstepClient,
  f: number,
  updates: QueueUpdate[] = [],
  signal?: AbortSignal,
): Promise<{ granted: Promise<LockHandle> }> {
  let queued!: () => void;
  const isQueued = new Promise<void>((resolve) => (queued = resolve));
  const granted = c.acquire({
    functions: [f],
    mode: 'write',
    ...(signal === undefined ? {} : { signal }),
    onQueue: (u) => {
      updates.push(u);
      if (u.initial) queued();
    },
  });
  granted.catch(() => undefined);
  await Promise.race([isQueued, granted]);
  return { granted };
}

/**
 * `ws` sockets whose incoming frames the test can hold back, then let through in order; `sent`
 * counts the requests written, by method.
 */
function heldReplies() {
  const state = { holding: false, held: [] as Array<() => void> };
  const sent = new Map<string, number>();
  class Held extends WebSocket {
    constructor(url: string) {
      super(url);
      const send = this.send.bind(this);
      this.send = ((data: string) => {
        const { method } = JSON.parse(data) as { method: string };
        sent.set(method, (sent.get(method) ?? 0) + 1);
        send(data);
      }) as typeof this.send;
      let handler: ((event: unknown) => void) | null = null;
      this.addEventListener('message', (event) => {
        const deliver = () => handler?.(event);
        if (state.holding) state.held.push(deliver);
        else deliver();
      });
      Object.defineProperty(this, 'onmessage', {
        get: () => handler,
        set: (fn: ((event: unknown) => void) | null) => {
          handler = fn;
        },
      });
    }
  }
  return {
    WebSocket: Held as unknown as WebSocketConstructor,
    sent: (method: string) => sent.get(method) ?? 0,
    hold(): void {
      state.holding = true;
    },
    letThrough(): void {
      state.holding = false;
      for (const deliver of state.held.splice(0)) deliver();
    },
  };
}

describe('SDK acquire()', () => {
  const t = useSdk();

  it('grants three clients in the order they queued, reporting positions as they change', async () => {
    const s = await t.server();
    const [a, b, c] = await Promise.all([t.client(s, 'a'), t.client(s, 'b'), t.client(s, 'c')]);
    const [f] = (await addFns(a, ['f'])) as [number];
    const order: string[] = [];
    const lockA = await a.acquire({ functions: [f], mode: 'write' });
    expect(lockA.queued).toBe(false);
    const bUpdates: QueueUpdate[] = [];
    const cUpdates: QueueUpdate[] = [];
    const qb = await queue(b, f, bUpdates);
    const qc = await queue(c, f, cUpdates);
    const grantedB = qb.granted.then((h) => {
      order.push('b');
      return h;
    });
    const grantedC = qc.granted.then((h) => {
      order.push('c');
      return h;
    });
    expect(bUpdates).toEqual([
      {
        ticket: expect.any(String),
        initial: true,
        positions: [{ resource: { program: 'main', function: f }, position: 1 }],
      },
    ]);
    expect(cUpdates[0]?.positions[0]?.position).toBe(2);

    await lockA.release();
    const lockB = await grantedB;
    expect(order).toEqual(['b']);
    expect(lockB.queued).toBe(true);
    expect(lockB.fences[String(f)]).toBeGreaterThan(lockA.fences[String(f)] ?? Infinity);
    await lockB.release();
    const lockC = await grantedC;
    expect(order).toEqual(['b', 'c']);
    expect(cUpdates.map((u) => [u.initial, u.positions[0]?.position])).toEqual([
      [true, 2],
      [false, 1],
    ]);
    expect(c.held().map((g) => g.fence)).toEqual([lockC.fences[String(f)]]);
    await lockC.release();
  });

  it('withdraws the ticket when aborted, and rejects with ABORTED', async () => {
    const s = await t.server();
    const [a, b] = await Promise.all([t.client(s, 'a'), t.client(s, 'b')]);
    const [f] = (await addFns(a, ['f'])) as [number];
    const lockA = await a.acquire({ functions: [f], mode: 'write' });
    const abort = new AbortController();
    const { granted } = await queue(b, f, [], abort.signal);
    expect((await a.lock.status({})).resources[0]?.queue).toHaveLength(1);
    abort.abort();
    const err = await granted.catch((e: unknown) => e);
    expect(isLockstepError(err, 'ABORTED')).toBe(true);
    expect((await a.lock.status({})).resources[0]?.queue).toEqual([]);
    await lockA.release();
    expect((await a.lock.status({})).resources).toEqual([]);
    expect(b.held()).toEqual([]);
  });

  it('withdraws a ticket aborted before the server answered, and never sends an acquire aborted up front', async () => {
    const s = await t.server();
    const [a, b] = await Promise.all([t.client(s, 'a'), t.client(s, 'b')]);
    const [f] = (await addFns(a, ['f'])) as [number];
    await a.acquire({ functions: [f], mode: 'write' });
    const abort = new AbortController();
    const pending = b.acquire({ functions: [f], mode: 'write', signal: abort.signal });
    abort.abort();
    await expect(pending).rejects.toMatchObject({ type: 'ABORTED' });
    await expect(b.acquire({ functions: [f], mode: 'write', signal: abort.signal })).rejects.toMatchObject({
      type: 'ABORTED',
    });
    expect((await a.lock.status({})).resources[0]?.queue).toEqual([]);
  });

  it('rejects with WAIT_TIMEOUT, DEADLOCK and LOCK_DENIED', async () => {
    const s = await t.server();
    const [a, b] = await Promise.all([t.client(s, 'a'), t.client(s, 'b')]);
    const [f, g] = (await addFns(a, ['f', 'g'])) as [number, number];
    await a.acquire({ functions: [f], mode: 'write' });
    await b.acquire({ functions: [g], mode: 'write' });
    await expect(b.acquire({ functions: [f], mode: 'write', waitTimeoutMs: 100 })).rejects.toMatchObject({
      type: 'WAIT_TIMEOUT',
      retryable: true,
      code: 0,
    });
    await expect(b.acquire({ functions: [f], mode: 'write', wait: false })).rejects.toMatchObject({
      type: 'LOCK_DENIED',
      code: 423,
      retryable: true,
    });
    const aWaits = await queue(a, g);
    const deadlock = await b.acquire({ functions: [f], mode: 'write' }).catch((e: unknown) => e);
    expect(deadlock).toMatchObject({ type: 'DEADLOCK', code: 409, retryable: true, method: 'lock.acquire' });
    expect(isLockstepError(deadlock) && Array.isArray(deadlock.data.cycle)).toBe(true);
    await b.lock.releaseAll();
    expect((await aWaits.granted).functions).toEqual([g]);
  });

  it('an abort racing a reentrant grant leaves the lock another handle already held', async () => {
    const s = await t.server();
    const a = await t.client(s, 'a');
    const [f] = (await addFns(a, ['f'])) as [number];
    const first = await a.acquire({ functions: [f], mode: 'write' });
    const abort = new AbortController();
    const again = a.acquire({ functions: [f], mode: 'write', signal: abort.signal });
    abort.abort();
    await expect(again).rejects.toMatchObject({ type: 'ABORTED' });
    // Whatever the abort gave back was sent before this ping's reply came.
    await a.session.ping();
    expect(first.held).toBe(true);
    const [status] = (await a.lock.status({})).resources;
    expect(status?.holders).toMatchObject([{ sessionId: a.sessionId, mode: 'write', fence: first.fences[String(f)] }]);
  });

  it('gives back a grant that came after its call timed out, but not once a later acquire was answered with the same lock', async () => {
    const s = await t.server();
    const replies = heldReplies();
    const a = await t.client(s, 'a', { WebSocket: replies.WebSocket });
    const b = await t.client(s, 'b');
    const [f] = (await addFns(a, ['f'])) as [number];
    replies.hold();
    const late = a.acquire({ functions: [f], mode: 'write', timeoutMs: 50 });
    await expect(late).rejects.toMatchObject({ type: 'TIMEOUT' });
    // Sent before the late grant is read: the server answers it as reentrant, with that lock.
    const sentBefore = replies.sent('lock.acquire');
    const again = a.acquire({ functions: [f], mode: 'write' });
    await until('the second acquire sent', 10_000, async () =>
      replies.sent('lock.acquire') > sentBefore ? true : undefined,
    );
    replies.letThrough();
    const lock = await again;
    // Whatever was given back was sent before this ping's reply came.
    await a.session.ping();
    expect(lock.held).toBe(true);
    await expect(b.acquire({ functions: [f], mode: 'write', wait: false })).rejects.toMatchObject({
      type: 'LOCK_DENIED',
    });
    const [status] = (await a.lock.status({})).resources;
    expect(status?.holders).toMatchObject([{ sessionId: a.sessionId, mode: 'write', fence: lock.fences[String(f)] }]);

    // Alone, a late grant is given back.
    await lock.release();
    replies.hold();
    const alone = a.acquire({ functions: [f], mode: 'write', timeoutMs: 50 });
    await expect(alone).rejects.toMatchObject({ type: 'TIMEOUT' });
    replies.letThrough();
    await until('the late grant given back', 10_000, async () =>
      (await a.lock.status({})).resources.length === 0 && a.held().length === 0 ? true : undefined,
    );
  });

  it('an abort racing an upgrade grant downgrades back to the read lock held before', async () => {
    const s = await t.server();
    const a = await t.client(s, 'a');
    const [f] = (await addFns(a, ['f'])) as [number];
    const reading = await a.acquire({ functions: [f], mode: 'read' });
    const abort = new AbortController();
    const upgrade = a.acquire({ functions: [f], mode: 'write', signal: abort.signal });
    abort.abort();
    await expect(upgrade).rejects.toMatchObject({ type: 'ABORTED' });
    await a.session.ping();
    await a.session.ping();
    expect(reading.held).toBe(true);
    const [status] = (await a.lock.status({})).resources;
    expect(status?.holders).toMatchObject([{ sessionId: a.sessionId, mode: 'read' }]);
    expect(a.heldGrant({ program: 'main', function: f })?.mode).toBe('read');
  });

  it("a handle whose lease expired does not release, renew or downgrade the resource's later grant", async () => {
    const s = await t.server();
    const a = await t.client(s, 'a');
    const [f] = (await addFns(a, ['f'])) as [number];
    const expired = next(a, 'lock.expired');
    const old = await a.acquire({ functions: [f], mode: 'write', ttlMs: 100 });
    await expired;
    expect(old.held).toBe(false);
    const current = await a.acquire({ functions: [f], mode: 'write' });
    expect(current.fences[String(f)]).toBeGreaterThan(old.fences[String(f)] ?? Infinity);
    expect(old.held).toBe(false);
    expect(await old.release()).toEqual([]);
    expect(await old.renew()).toEqual([]);
    expect(await old.downgrade()).toEqual([]);
    expect(current.held).toBe(true);
    expect(a.held()).toMatchObject([{ mode: 'write', fence: current.fences[String(f)] }]);
    const [status] = (await a.lock.status({})).resources;
    expect(status?.holders).toMatchObject([{ sessionId: a.sessionId, fence: current.fences[String(f)] }]);
    expect(await current.release()).toEqual([{ program: 'main', function: f }]);
  });

  it('withLocks releases however the function ends', async () => {
    const s = await t.server();
    const a = await t.client(s, 'a');
    const [f] = (await addFns(a, ['f'])) as [number];
    expect(await a.withLocks({ functions: [f], mode: 'read' }, (lock) => lock.functions)).toEqual([f]);
    const failing = a.withLocks({ functions: [f], mode: 'write' }, () => {
      throw new Error('agent crashed mid-edit');
    });
    await expect(failing).rejects.toThrow('agent crashed mid-edit');
    expect((await a.lock.status({})).resources).toEqual([]);
    expect(a.held()).toEqual([]);
  });

  it('also emits the queue and grant pushes as typed events', async () => {
    const s = await t.server();
    const [a, b] = await Promise.all([t.client(s, 'a'), t.client(s, 'b')]);
    const [f] = (await addFns(a, ['f'])) as [number];
    const lockA = await a.acquire({ functions: [f], mode: 'write' });
    const { granted } = await queue(b, f);
    const pushed = new Promise<string>((resolve) => b.once('lock.granted', (p) => resolve(p.ticket)));
    await lockA.release();
    const lockB = await granted;
    expect(await pushed).toBe(lockB.ticket);
  });
});
