import { createHash } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import { freshDatabase, startPostgres } from '../helpers/postgres.ts';
import { addFunctions, useServers } from '../helpers/server.ts';
import { TestClient } from '../helpers/client.ts';
import { health, kill, spawnNode, TIMING, until } from './leader-nodes.ts';
import { sql, untilRows } from './nodes.ts';

// What the leader writes for the next one (docs/cluster.md, failover rule 1): sessions before their hello is
// answered, and every lock change in batches within the bound, with times on the database's clock.

const t = useServers();

const LOCK_ROW = `SELECT mode, fence::int, ttl_ms::int,
    (expires_at - (extract(epoch FROM clock_timestamp()) * 1000)::bigint)::int AS left_ms
  FROM cluster_locks WHERE session_id = $1 AND resource = $2`;

describe('the lock journal', () => {
  it('records a session, with a digest of its secret only, before its hello is answered', async () => {
    const db = await freshDatabase(inject('postgresUrl'));
    const s = await t.server({ db, journalBatchMs: 10_000 });
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

  it('follows grants, renewals, downgrades and releases within the batch bound, on the database clock', async () => {
    const db = await freshDatabase(inject('postgresUrl'));
    const s = await t.server({ db, journalBatchMs: 20 });
    const a = await t.agent(s, 'a');
    const [f] = await addFunctions(a, ['f'] as const);
    const g = (await a.call('lock.acquire', { functions: [f], mode: 'write', ttlMs: 600_000 })).grants[0];
    const [held] = await untilRows(db, LOCK_ROW, [a.sessionId, String(f)], (rows) => rows.length === 1);
    expect(held).toMatchObject({ mode: 'write', fence: g.fence, ttl_ms: 600_000 });
    expect(held.left_ms).toBeGreaterThan(590_000);
    expect(held.left_ms).toBeLessThanOrEqual(600_000);

    await a.call('lock.renew', { functions: [f], ttlMs: 3_600_000 });
    await untilRows(db, LOCK_ROW, [a.sessionId, String(f)], (rows) => rows[0]?.left_ms > 3_000_000);
    await a.call('lock.downgrade', { functions: [f] });
    const [read] = await untilRows(db, LOCK_ROW, [a.sessionId, String(f)], (rows) => rows[0]?.mode === 'read');
    // A downgrade keeps the lease and the fence.
    expect(read).toMatchObject({ fence: g.fence, ttl_ms: 3_600_000 });

    await a.call('lock.release', { functions: [f] });
    await untilRows(db, LOCK_ROW, [a.sessionId, String(f)], (rows) => rows.length === 0);
    await a.close();
    await untilRows(db, 'SELECT 1 FROM cluster_sessions', [], (rows) => rows.length === 0);
  });

  it('writes the pending batch in every edit transaction, ahead of the bound', async () => {
    const db = await freshDatabase(inject('postgresUrl'));
    const s = await t.server({ db, journalBatchMs: 10_000 });
    const a = await t.agent(s, 'a');
    const [f] = await addFunctions(a, ['f'] as const);
    const g = (await a.call('lock.acquire', { functions: [f], mode: 'write' })).grants[0];
    const { hash } = await a.call('function.get', { function: f });
    await a.call('edit.apply', {
      ops: [{ op: 'addNode', function: f, node: { id: 1, op: 'const' } }],
      expectedHashes: { [f]: hash },
      fences: { [f]: g.fence },
    });
    // The batch bound (the longest, 10 s) is far off: only the edit's transaction can have written the grant.
    expect(await sql(db, LOCK_ROW, [a.sessionId, String(f)])).toMatchObject([{ mode: 'write', fence: g.fence }]);
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
  it('ends equal to the lock state when timer batches and edit transactions race', async () => {
    const db = await freshDatabase(inject('postgresUrl'));
    const s = await t.server({ db, journalBatchMs: 0 });
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
    await untilRows(
      db,
      "SELECT session_id || ':' || resource || ':' || mode || ':' || fence AS row FROM cluster_locks ORDER BY 1",
      [],
      (rows) => JSON.stringify(rows.map((r) => r.row).sort()) === JSON.stringify(expected),
    );
  });
});

describe('the lock journal without its database', () => {
  it('refuses a new session it cannot record (STORE_UNAVAILABLE) while locks keep working', async () => {
    const own = await startPostgres();
    try {
      const s = await t.server({ db: own.url });
      const a = await t.agent(s, 'a');
      const [f, g] = await addFunctions(a, ['f', 'g'] as const);
      await own.stop();
      const b = await t.raw(s);
      const refused = await b.fail('session.hello', { protocol: 1, name: 'b' });
      expect(refused.data).toMatchObject({ type: 'STORE_UNAVAILABLE', retryable: true });
      // The refused hello left no session behind; the lock core never waits on the database.
      expect(s.inspect().sessions.size).toBe(1);
      expect((await a.call('lock.acquire', { functions: [f, g], mode: 'write' })).status).toBe('granted');
      expect((await a.call('lock.release', { functions: [f, g] })).released).toHaveLength(2);
    } finally {
      await own.stop();
    }
  });
});
