import { describe, expect, it } from 'vitest';
import { addFunctions, useServers } from '../helpers/server.ts';

describe('locks over the wire', () => {
  const t = useServers();

  it('queues three agents in order and hands over when the holder disconnects', async () => {
    const s = await t.server();
    const [a, b, c] = [await t.agent(s, 'a'), await t.agent(s, 'b'), await t.agent(s, 'c')];
    const [f] = await addFunctions(a, ['f']);
    const res = { program: 'main', function: f };

    const ga = await a.call('lock.acquire', { functions: [f], mode: 'write', description: 'refactor' });
    expect(ga.status).toBe('granted');
    expect(ga.grants[0]).toMatchObject({ resource: res, mode: 'write' });
    expect(Number.isInteger(ga.grants[0].fence)).toBe(true);
    expect(new Date(ga.grants[0].expiresAt).toISOString()).toBe(ga.grants[0].expiresAt);

    const qb = await b.call('lock.acquire', { functions: [f], mode: 'write', wait: true });
    const qc = await c.call('lock.acquire', { functions: [f], mode: 'write', wait: true });
    expect(qb).toEqual({ status: 'queued', ticket: expect.any(String), positions: [{ resource: res, position: 1 }] });
    expect(qc.positions).toEqual([{ resource: res, position: 2 }]);

    await a.close();
    const granted = await b.notification('lock.granted');
    expect(granted.ticket).toBe(qb.ticket);
    expect(granted.grants[0].fence).toBeGreaterThan(ga.grants[0].fence);
    const moved = await c.notification('lock.queue');
    expect(moved).toEqual({ ticket: qc.ticket, positions: [{ resource: res, position: 1 }] });
    expect(b.pending('lock.queue')).toEqual([]);
  });

  it('denies without wait, naming holders, queue length and when the lease ends', async () => {
    const s = await t.server();
    const [a, b] = [await t.agent(s, 'a'), await t.agent(s, 'b')];
    const [f] = await addFunctions(a, ['f']);
    await a.call('lock.acquire', { functions: [f], mode: 'write', ttlMs: 60_000, description: 'busy' });
    await b.call('events.subscribe', { topics: ['locks'] });
    const err = await b.fail('lock.acquire', { functions: [f], mode: 'read' });
    expect((await b.notification('event', (e) => e.type === 'denied')).data.blockers).toEqual(err.data!.blockers);
    expect(err.code).toBe(423);
    expect(err.data).toMatchObject({ type: 'LOCK_DENIED', retryable: true });
    expect(err.data!.retryAfterMs).toBeGreaterThan(50_000);
    expect(err.data!.blockers).toEqual([
      {
        resource: { program: 'main', function: f },
        holders: [
          { sessionId: a.sessionId, name: 'a', mode: 'write', description: 'busy', expiresAt: expect.any(String) },
        ],
        queueLength: 0,
      },
    ]);
  });

  it('grants a waiting batch only when both functions are free', async () => {
    const s = await t.server();
    const [a, b, c] = [await t.agent(s, 'a'), await t.agent(s, 'b'), await t.agent(s, 'c')];
    const [f, g] = await addFunctions(a, ['f', 'g']);
    await a.call('lock.acquire', { functions: [f], mode: 'write' });
    await b.call('lock.acquire', { functions: [g], mode: 'write' });
    const q = await c.call('lock.acquire', { functions: [g, f], mode: 'write', wait: true });
    expect(q.status).toBe('queued');
    expect(q.positions.map((p: any) => p.resource.function)).toEqual([f, g].sort((x, y) => x - y));

    await a.call('lock.release', { functions: [f] });
    // Still held by b: nothing may be granted, and c holds nothing meanwhile.
    const status = await c.call('lock.status', {});
    expect(status.resources.find((r: any) => r.resource.function === f).holders).toEqual([]);
    expect(c.pending('lock.granted')).toEqual([]);

    await b.call('lock.release', { functions: [g] });
    const granted = await c.notification('lock.granted');
    expect(granted.ticket).toBe(q.ticket);
    expect(granted.grants.map((x: any) => x.resource.function).sort()).toEqual([f, g].sort());
  });

  it('refuses the second read-to-write upgrade as a deadlock', async () => {
    const s = await t.server();
    const [a, b] = [await t.agent(s, 'a'), await t.agent(s, 'b')];
    const [f] = await addFunctions(a, ['f']);
    await a.call('lock.acquire', { functions: [f], mode: 'read' });
    await b.call('lock.acquire', { functions: [f], mode: 'read' });
    const up = await a.call('lock.acquire', { functions: [f], mode: 'write', wait: true });
    expect(up.status).toBe('queued');
    const err = await b.fail('lock.acquire', { functions: [f], mode: 'write', wait: true });
    expect(err.code).toBe(409);
    expect(err.data!.type).toBe('DEADLOCK');
    expect(Array.isArray(err.data!.cycle)).toBe(true);
    // b gives up its read lock: a's upgrade goes through.
    await b.call('lock.release', { functions: [f] });
    const g = await a.notification('lock.granted');
    expect(g.grants[0].mode).toBe('write');
  });

  it('warns before a short lease ends, expires it, and grants the next waiter', async () => {
    const s = await t.server();
    const [a, b] = [await t.agent(s, 'a'), await t.agent(s, 'b')];
    const [f] = await addFunctions(a, ['f']);
    const g = await a.call('lock.acquire', { functions: [f], mode: 'write', ttlMs: 300 });
    const q = await b.call('lock.acquire', { functions: [f], mode: 'write', wait: true });
    const expiring = await a.notification('lock.expiring');
    expect(expiring.locks).toEqual(g.grants);
    const expired = await a.notification('lock.expired');
    expect(expired.locks).toEqual(g.grants);
    const granted = await b.notification('lock.granted');
    expect(granted.ticket).toBe(q.ticket);
    // The lapsed holder's edit is refused.
    const err = await a.fail('edit.apply', {
      ops: [{ op: 'addNode', function: f, node: { id: 1, op: 'const' } }],
      fences: { [f]: g.grants[0].fence },
    });
    expect(err.data!.type).toBe('LOCK_REQUIRED');
  });

  it('supports reentrancy, renew, downgrade, cancel, releaseAll and idempotency keys', async () => {
    const s = await t.server();
    const [a, b] = [await t.agent(s, 'a'), await t.agent(s, 'b')];
    const [f, g] = await addFunctions(a, ['f', 'g']);
    const first = await a.call('lock.acquire', { functions: [f], mode: 'write', ttlMs: 10_000 });
    const again = await a.call('lock.acquire', { functions: [f], mode: 'write', ttlMs: 20_000 });
    expect(again.grants[0].fence).toBe(first.grants[0].fence);
    expect(Date.parse(again.grants[0].expiresAt)).toBeGreaterThan(Date.parse(first.grants[0].expiresAt));

    const renewed = await a.call('lock.renew', { functions: [f], ttlMs: 30_000 });
    expect(renewed.grants[0].fence).toBe(first.grants[0].fence);

    const q1 = await b.call('lock.acquire', { functions: [f], mode: 'read', wait: true, key: 'k1' });
    const q2 = await b.call('lock.acquire', { functions: [f], mode: 'read', wait: true, key: 'k1' });
    expect(q2).toEqual(q1);
    const reused = await b.fail('lock.acquire', { functions: [f], mode: 'write', wait: true, key: 'k1' });
    expect(reused).toMatchObject({ code: -32602, data: { key: 'k1' } });
    const st = await b.call('lock.status', { program: 'main' });
    expect(st.resources.find((r: any) => r.resource.function === f).queue).toHaveLength(1);

    const down = await a.call('lock.downgrade', { functions: [f] });
    expect(down.grants[0]).toMatchObject({ mode: 'read', fence: first.grants[0].fence });
    const granted = await b.notification('lock.granted');
    expect(granted.ticket).toBe(q1.ticket);

    const q3 = await b.call('lock.acquire', { functions: [g], mode: 'write', wait: true });
    expect(q3.status).toBe('granted');
    await a.call('lock.acquire', { functions: [g], mode: 'read', wait: true }).then(async (q) => {
      expect(q.status).toBe('queued');
      expect(await a.call('lock.cancel', { ticket: q.ticket })).toEqual({ ticket: q.ticket, cancelled: true });
    });
    const notMine = await b.fail('lock.cancel', { ticket: 'nope' });
    expect(notMine.data!.type).toBe('NOT_FOUND');

    const notHeld = await a.fail('lock.release', { functions: [f, g] });
    expect(notHeld.data).toMatchObject({ type: 'NOT_HELD', resources: [{ program: 'main', function: g }] });
    expect((await a.call('lock.releaseAll')).released).toEqual([{ program: 'main', function: f }]);
  });

  it('refuses locks to observers and on unknown functions', async () => {
    const s = await t.server();
    const [a, o] = [await t.agent(s, 'a'), await t.agent(s, 'watcher', 'observer')];
    const err = await o.fail('lock.acquire', { functions: [1], mode: 'read' });
    expect(err).toMatchObject({ code: 403, data: { type: 'FORBIDDEN', retryable: false } });
    const nf = await a.fail('lock.acquire', { functions: [999], mode: 'read' });
    expect(nf).toMatchObject({ code: 404, data: { type: 'NOT_FOUND', functions: [999] } });
    const np = await a.fail('lock.acquire', { program: 'nope', structure: true, mode: 'write' });
    expect(np.data!.type).toBe('NOT_FOUND');
  });

  it('times out a wait and tells the waiter', async () => {
    const s = await t.server();
    const [a, b] = [await t.agent(s, 'a'), await t.agent(s, 'b')];
    const [f] = await addFunctions(a, ['f']);
    await a.call('lock.acquire', { functions: [f], mode: 'write' });
    const q = await b.call('lock.acquire', { functions: [f], mode: 'write', wait: true, waitTimeoutMs: 50 });
    expect(await b.notification('lock.waitTimeout')).toEqual({ ticket: q.ticket });
  });

  it('lists agents with what they hold and wait for', async () => {
    const s = await t.server();
    const [a, b] = [await t.agent(s, 'a'), await t.agent(s, 'b')];
    const [f] = await addFunctions(a, ['f']);
    await a.call('lock.acquire', { functions: [f], mode: 'write' });
    const q = await b.call('lock.acquire', { functions: [f], mode: 'write', wait: true });
    const { agents } = await a.call('agent.list');
    const byName = Object.fromEntries(agents.map((x: any) => [x.name, x]));
    expect(byName.a.locks).toHaveLength(1);
    expect(byName.b.waiting).toEqual([
      { ticket: q.ticket, mode: 'write', positions: [{ resource: { program: 'main', function: f }, position: 1 }] },
    ]);
    expect(byName.a.role).toBe('agent');
  });
});
