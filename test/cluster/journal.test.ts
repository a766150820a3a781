import { createHash } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import type { LockstepServer } from '../../src/server.ts';
import { SLOW_STATEMENTS, useDatabaseProxies } from '../helpers/database-proxy.ts';
import { freshDatabase } from '../helpers/postgres.ts';
import { addFunctions, useServers } from '../helpers/server.ts';
import { TestClient } from '../helpers/client.ts';
import { health, kill, spawnNode, TIMING } from './leader-nodes.ts';
import { until } from '../helpers/until.ts';
import { sql, untilRows } from './nodes.ts';

// What the leader writes for the next one (docs/cluster.md, "What is durable when"): a session
// before its hello is answered, and every lock change before the reply that tells of it, with
// times on the database's clock. What a reply or push told of is in the database when it arrives,
// read without waiting (the server's statements slowed, so that a reply that did not wait for its
// record would be read before the record); only a session's leaving, which nothing tells of, is
// waited for.

const t = useServers();
const databaseProxy = useDatabaseProxies();

/** A server on `db` whose statements are slow once it has started. */
async function slowServer(db: string): Promise<LockstepServer> {
  const proxy = await databaseProxy(db);
  const s = await t.server({ db: proxy.url });
  proxy.mode(SLOW_STATEMENTS);
  return s;
}

const LOCK_ROW = `SELECT mode, fence::int, ttl_ms::int,
    (expires_at - (extract(epoch FROM clock_timestamp()) * 1000)::bigint)::int AS left_ms
  FROM cluster_locks WHERE session_id = $1 AND resource = $2`;

describe('the lock journal', () => {
  it('records a session, with a digest of its secret only, before its hello is answered', async () => {
    const db = await freshDatabase(inject('postgresUrl'));
    const s = await slowServer(db);
    const c = await t.raw(s);
    const hello = await c.call('session.hello', { protocol: 1, name: 'alice' });
    // No waiting: the row was committed before the answer left.
    const rows = await sql(db, 'SELECT * FROM cluster_sessions');
    expect(rows).toEqual([
      {
        session_id: hello.sessionId,
        name: 'alice',
        role: 'agent',
        secret_sha256: createHash('sha256').update(hello.resumeSecret).digest(),
      },
    ]);
    expect(JSON.stringify(rows)).not.toContain(hello.resumeSecret);
  });

  it('has every grant, upgrade, renewal, downgrade and release committed before its reply, on the database clock', async () => {
    const db = await freshDatabase(inject('postgresUrl'));
    const s = await slowServer(db);
    const a = await t.agent(s, 'a');
    const [f] = await addFunctions(a, ['f'] as const);
    const r = (await a.call('lock.acquire', { functions: [f], mode: 'read', ttlMs: 600_000 })).grants[0];
    expect(await sql(db, LOCK_ROW, [a.sessionId, String(f)])).toMatchObject([{ mode: 'read', fence: r.fence }]);
    // The sole reader's upgrade: write at once, under a new fence.
    const g = (await a.call('lock.acquire', { functions: [f], mode: 'write', ttlMs: 600_000 })).grants[0];
    expect(g.fence).toBeGreaterThan(r.fence);
    const [held] = await sql(db, LOCK_ROW, [a.sessionId, String(f)]);
    expect(held).toMatchObject({ mode: 'write', fence: g.fence, ttl_ms: 600_000 });
    expect(held.left_ms).toBeGreaterThan(590_000);
    expect(held.left_ms).toBeLessThanOrEqual(600_000);

    await a.call('lock.renew', { functions: [f], ttlMs: 3_600_000 });
    expect((await sql(db, LOCK_ROW, [a.sessionId, String(f)]))[0].left_ms).toBeGreaterThan(3_000_000);
    await a.call('lock.downgrade', { functions: [f] });
    // A downgrade keeps the lease and the fence.
    expect(await sql(db, LOCK_ROW, [a.sessionId, String(f)])).toMatchObject([
      { mode: 'read', fence: g.fence, ttl_ms: 3_600_000 },
    ]);

    await a.call('lock.release', { functions: [f] });
    expect(await sql(db, LOCK_ROW, [a.sessionId, String(f)])).toEqual([]);
    await a.close();
    await untilRows(db, 'SELECT 1 FROM cluster_sessions', [], (rows) => rows.length === 0);
  });

  it('has a grant passed on committed before its lock.granted, and an expiry before its lock.expired', async () => {
    const db = await freshDatabase(inject('postgresUrl'));
    const s = await slowServer(db);
    const a = await t.agent(s, 'a');
    const b = await t.agent(s, 'b');
    const [f, g] = await addFunctions(a, ['f', 'g'] as const);
    await a.call('lock.acquire', { functions: [f], mode: 'write' });
    const queued = await b.call('lock.acquire', { functions: [f], mode: 'write', wait: true });
    await a.call('lock.release', { functions: [f] });
    const granted = await b.notification('lock.granted', (p) => p.ticket === queued.ticket);
    expect(await sql(db, LOCK_ROW, [b.sessionId, String(f)])).toMatchObject([
      { mode: 'write', fence: granted.grants[0].fence },
    ]);
    await b.call('lock.acquire', { functions: [g], mode: 'write', ttlMs: 300 });
    await b.notification('lock.expired');
    expect(await sql(db, LOCK_ROW, [b.sessionId, String(g)])).toEqual([]);
  });

  it('keeps nothing when resume grace is off, and clears what an earlier run left', async () => {
    const db = await freshDatabase(inject('postgresUrl'));
    // The earlier run ends without a graceful stop (kill -9), its journal left behind.
    const first = await spawnNode(db);
    const a = await TestClient.open(first.url, 'a');
    try {
      expect(await sql(db, 'SELECT 1 FROM cluster_sessions')).toHaveLength(1);
    } finally {
      await kill(first);
      await a.close();
    }
    const second = await t.server({ db, sessionGraceMs: 0, ...TIMING });
    await until('the second node leads', 15_000, async () =>
      (await health(`http://127.0.0.1:${second.port}`)).status === 200 ? true : undefined,
    );
    expect(await sql(db, 'SELECT 1 FROM cluster_sessions')).toHaveLength(0);
    await t.agent(second, 'b');
    expect(await sql(db, 'SELECT 1 FROM cluster_sessions')).toHaveLength(0);
  });
});

describe('the lock journal under load', () => {
  it('ends equal to the lock state when agents lock, edit and release at once', async () => {
    const db = await freshDatabase(inject('postgresUrl'));
    const s = await t.server({ db });
    const setup = await t.agent(s, 'setup');
    const fns = await addFunctions(setup, ['f1', 'f2', 'f3', 'f4'] as const);
    const agents = await Promise.all(['a', 'b', 'c'].map((name) => t.agent(s, name)));
    const work = agents.map(async (a, i) => {
      for (let round = 0; round < 15; round++) {
        const fn = fns[(i + round) % fns.length]!;
        const frame = await a.request('lock.acquire', { functions: [fn], mode: round % 3 === 0 ? 'read' : 'write' });
        if (frame.error?.data?.type === 'LOCK_DENIED') continue;
        const g = frame.result.grants[0];
        if (g.mode === 'write') {
          const { hash } = await a.call('function.get', { function: fn });
          await a.call('edit.apply', {
            ops: [{ op: 'addNode', function: fn, node: { id: 1000 * i + round, op: 'const' } }],
            expectedHashes: { [fn]: hash },
            fences: { [fn]: g.fence },
          });
        }
        if (round % 4 === 1) await a.call('lock.renew', { functions: [fn], ttlMs: 90_000 + round });
        else await a.call('lock.release', { functions: [fn] });
      }
    });
    const outcomes = await Promise.allSettled(work);
    expect(outcomes.filter((o) => o.status === 'rejected')).toEqual([]);
    const expected = (await setup.call('lock.status', {})).resources
      .flatMap((r: any) => r.holders.map((h: any) => `${h.sessionId}:${r.resource.function}:${h.mode}:${h.fence}`))
      .sort();
    expect(expected.length).toBeGreaterThan(0);
    // Every reply waited for its record: the journal is the lock state now, without waiting.
    const rows = await sql(
      db,
      "SELECT session_id || ':' || resource || ':' || mode || ':' || fence AS row FROM cluster_locks ORDER BY 1",
    );
    expect(rows.map((r) => r.row).sort()).toEqual(expected);
  });
});
