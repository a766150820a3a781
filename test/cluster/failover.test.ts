import { describe, expect, inject, it } from 'vitest';
import { SKEW_MARGIN_MS } from '../../src/cluster/restore.ts';
import type { TestClient } from '../helpers/client.ts';
import { freshDatabase } from '../helpers/postgres.ts';
import { type Agent, sql, untilRows, useNodes } from './nodes.ts';

// Failover as a resume (docs/cluster.md, failover rules), end to end: a node on PostgreSQL is killed with
// SIGKILL while agents hold locks and others wait; a new node on the same database is the new
// leader. Whoever resumes gets back exactly the locks the checks allow, with their fences and
// what was left of their leases, and nobody else gets those resources meanwhile.

const { node, open, resumed } = useNodes();

/** Creates functions under the structure lock; their ids by name. */
async function functions(url: string, names: string[]): Promise<number[]> {
  const setup = await open(url, 'setup');
  await setup.client.call('lock.acquire', { structure: true, mode: 'write' });
  const r = await setup.client.call('edit.apply', { ops: names.map((name) => ({ op: 'addFunction', name })) });
  await setup.client.call('lock.release', { structure: true });
  return names.map((n) => r.created.find((c: { name: string }) => c.name === n).id);
}

async function write(a: Agent, fn: number, ttlMs = 60_000): Promise<any> {
  const r = await a.client.call('lock.acquire', { functions: [fn], mode: 'write', ttlMs });
  expect(r.status).toBe('granted');
  return r.grants[0];
}

async function addNode(a: TestClient, fn: number, fence: number, id: number): Promise<void> {
  const { hash } = await a.call('function.get', { function: fn });
  await a.call('edit.apply', {
    ops: [{ op: 'addNode', function: fn, node: { id, op: 'const', attrs: { id } } }],
    expectedHashes: { [fn]: hash },
    fences: { [fn]: fence },
  });
}

const ms = (iso: string) => Date.parse(iso);

describe('failover as a resume', () => {
  it('gives resuming holders their locks back on the new leader, and nothing the checks refuse', async () => {
    const db = await freshDatabase(inject('postgresUrl'));
    const first = await node(db);
    const [f1, f2, f3, f4, f5, f6] = (await functions(first.url, ['f1', 'f2', 'f3', 'f4', 'f5', 'f6'])) as number[] as [
      number,
      number,
      number,
      number,
      number,
      number,
    ];

    const a = await open(first.url, 'a');
    const b = await open(first.url, 'b');
    const c = await open(first.url, 'c');
    const d = await open(first.url, 'd');
    const e = await open(first.url, 'e');
    const q = await open(first.url, 'q');
    expect(a.hello.graceMs).toBe(10_000);

    const a1 = await write(a, f1);
    const b2 = (await b.client.call('lock.acquire', { functions: [f2], mode: 'read', ttlMs: 60_000 })).grants[0];
    const b3 = await write(b, f3);
    await write(c, f4);
    const d5 = await write(d, f5);
    await write(e, f6);
    // A waiter: its ticket is not restored.
    const queued = await q.client.call('lock.acquire', { functions: [f1], mode: 'write', wait: true });
    expect(queued.status).toBe('queued');
    // e leaves on purpose: its session and lock leave the journal.
    await e.client.close();
    await untilRows(
      db,
      'SELECT 1 FROM cluster_sessions WHERE session_id = $1',
      [e.sessionId],
      (rows) => rows.length === 0,
    );
    // An edit commits with everything journaled before it; then the leader dies at once.
    await addNode(a.client, f1, a1.fence, 7001);
    await first.kill();

    // What the old leader could not have known: c's lease ran out by the database's clock, and
    // an edit under a newer grant than d's was committed on f5 (say, by a leader after it).
    await sql(db, 'UPDATE cluster_locks SET expires_at = expires_at - 3600000 WHERE session_id = $1', [c.sessionId]);
    await sql(
      db,
      `INSERT INTO resource_fences (program, resource, fence) VALUES ('main', $1, $2)
       ON CONFLICT (program, resource) DO UPDATE SET fence = excluded.fence`,
      [String(f5), d5.fence + 1],
    );
    const recordedMax = (await sql(db, 'SELECT max(fence)::int AS m FROM cluster_locks'))[0].m as number;

    const second = await node(db);
    // A newcomer during the grace window: a's f1 is held for a, absent.
    const t = await open(second.url, 't');
    const denied = await t.client.fail('lock.acquire', { functions: [f1], mode: 'write' });
    expect(denied.data?.type).toBe('LOCK_DENIED');
    const waiting = await t.client.call('lock.acquire', { functions: [f1], mode: 'write', wait: true });
    expect(waiting.status).toBe('queued');
    // A resource nobody recorded is granted at once, above every recorded fence.
    const free = (await t.client.call('lock.acquire', { functions: [f6], mode: 'write' })).grants[0];
    expect(free.fence).toBeGreaterThan(recordedMax);

    const ra = await resumed(second.url, a);
    expect(ra.frame.result).toMatchObject({ sessionId: a.sessionId, resumed: true });
    expect(ra.frame.result.restored).toHaveLength(1);
    const back = ra.frame.result.restored[0];
    expect(back).toMatchObject({ resource: { program: 'main', function: f1 }, mode: 'write', fence: a1.fence });
    // What was left of the lease, not a fresh one (plus the skew margin, give or take the clock
    // conversions).
    expect(ms(back.expiresAt)).toBeLessThanOrEqual(ms(a1.expiresAt) + SKEW_MARGIN_MS + 500);
    expect(ms(back.expiresAt)).toBeGreaterThan(ms(a1.expiresAt) - 2_000);
    // The edit before the kill is there once; the next edit under the same fence commits.
    await addNode(ra.client, f1, a1.fence, 7002);
    const body = (await ra.client.call('function.get', { function: f1 })).function;
    expect(body.nodes.filter((n: { id: number }) => n.id === 7001)).toHaveLength(1);
    expect(body.nodes.filter((n: { id: number }) => n.id === 7002)).toHaveLength(1);
    // Still not t's: a holds it until it releases.
    expect(t.client.pending('lock.granted')).toEqual([]);
    await ra.client.call('lock.release', { functions: [f1] });
    const granted = await t.client.notification('lock.granted', (p) => p.ticket === waiting.ticket);
    expect(granted.grants[0].fence).toBeGreaterThan(recordedMax);

    const rb = await resumed(second.url, b);
    expect(rb.frame.result.restored).toEqual([
      expect.objectContaining({ resource: { program: 'main', function: f2 }, mode: 'read', fence: b2.fence }),
      expect.objectContaining({ resource: { program: 'main', function: f3 }, mode: 'write', fence: b3.fence }),
    ]);
    expect(ra.frame.result.notRestored).toEqual([]);
    expect(rb.frame.result.notRestored).toEqual([]);
    // Expired by the database's clock: not restored, and the resume says why.
    expect((await resumed(second.url, c)).frame.result).toMatchObject({
      resumed: true,
      restored: [],
      notRestored: [{ resource: { program: 'main', function: f4 }, mode: 'write', reason: 'expired' }],
    });
    // A newer fence was committed on f5: not restored, and f5 is free for others.
    expect((await resumed(second.url, d)).frame.result).toMatchObject({
      resumed: true,
      restored: [],
      notRestored: [
        { resource: { program: 'main', function: f5 }, mode: 'write', fence: d5.fence, reason: 'fence-moved' },
      ],
    });
    expect((await t.client.call('lock.acquire', { functions: [f5], mode: 'write' })).status).toBe('granted');
    // A waiter resumes without its ticket.
    expect((await resumed(second.url, q)).frame.result).toMatchObject({ resumed: true, restored: [], notRestored: [] });
    // A session that had left gets nothing: it is unknown.
    expect((await resumed(second.url, e)).frame.error.data.type).toBe('NOT_FOUND');
  }, 60_000);
});
