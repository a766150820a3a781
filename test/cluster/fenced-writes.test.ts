import pg from 'pg';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { holdsLease, readLease, renew, takeOver, terminate } from '../../src/cluster/lease.ts';
import { CloseCode } from '../../src/protocol/close-codes.ts';
import { type LockstepServer, start } from '../../src/server.ts';
import { migrate } from '../../src/service/index.ts';
import { PG_SCHEMA_VERSION } from '../../src/service/pg-schema.ts';
import { TestClient } from '../helpers/client.ts';
import { freshDatabase } from '../helpers/postgres.ts';
import { health } from './leader-nodes.ts';
import { until } from '../helpers/until.ts';

// Cluster rules 1 and 3 where PostgreSQL enforces them: a write transaction holds the lease row
// FOR KEY SHARE from its check to its commit, a takeover (FOR UPDATE) waits for it, every later
// write of the old term is refused, and the new leader ends the old one's backends.

const clients: pg.Client[] = [];
const servers: LockstepServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop('test over')));
  await Promise.all(clients.splice(0).map((c) => c.end().catch(() => undefined)));
});

async function connect(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => undefined);
  await c.connect();
  clients.push(c);
  return c;
}

const expire = (c: pg.Client) =>
  c.query("UPDATE lockstep_lease SET expires_at = clock_timestamp() - interval '1 second'");

describe('cluster: epoch-fenced writes', () => {
  it('a takeover waits for a write that passed its check, later writes of the old term are refused, and the old backends end', async () => {
    const url = await freshDatabase(inject('postgresUrl'));
    const [old, next, other] = [await connect(url), await connect(url), await connect(url)];
    await old.query('BEGIN');
    expect(await migrate(old, Date.now())).toBeUndefined();
    await old.query('COMMIT');

    const a = { nodeId: 'a', url: 'ws://a/ws', term: 'term-a' };
    const b = { nodeId: 'b', url: 'ws://b/ws', term: 'term-b' };
    const first = await takeOver(old, a, 60_000, 1_000, () => undefined);
    expect(first).toMatchObject({ kind: 'taken', epoch: 1 });
    // Not expired: nobody else may take it.
    expect(await takeOver(next, b, 60_000, 1_000, () => undefined)).toMatchObject({ kind: 'held' });

    // A write of A has passed its check and not committed yet.
    await old.query('BEGIN');
    expect(await holdsLease(old, 1, 'term-a')).toBe(true);
    // Renewals do not wait behind writes (FOR NO KEY UPDATE against FOR KEY SHARE).
    expect(await renew(other, 1, 'term-a', 60_000)).toBe(true);
    await expire(other);
    // The takeover cannot commit while that write is open.
    expect(await takeOver(next, b, 60_000, 300, () => undefined)).toEqual({ kind: 'blocked' });
    await old.query('CREATE TABLE IF NOT EXISTS late_write (x int)');
    await old.query('COMMIT');

    const second = await takeOver(next, b, 60_000, 1_000, () => undefined);
    expect(second).toMatchObject({ kind: 'taken', epoch: 2 });
    if (second.kind !== 'taken') return;
    expect(second.backends.map((b) => b.pid)).toEqual([(await old.query('SELECT pg_backend_pid() AS p')).rows[0].p]);
    expect((await readLease(other)).nodeId).toBe('b');

    // A's next write is refused by its own check: the row says epoch 2.
    await old.query('BEGIN');
    expect(await holdsLease(old, 1, 'term-a')).toBe(false);
    await old.query('ROLLBACK');
    // B's renewal holds; A's does not.
    expect(await renew(other, 1, 'term-a', 60_000)).toBe(false);
    expect(await renew(other, 2, 'term-b', 60_000)).toBe(true);

    // The new leader ends the old one's backends: A's connection is gone.
    expect(await terminate(next, second.backends)).toBe(1);
    await expect(old.query('SELECT 1')).rejects.toThrow();
  });

  it('a leader whose lease was taken has its edit refused by PostgreSQL, never committed, and becomes a standby', async () => {
    const db = await freshDatabase(inject('postgresUrl'));
    // Renewals far apart, so that the edit, not a renewal, is what finds the lease gone.
    const s = await start({
      port: 0,
      db,
      logLevel: 'silent',
      leaseTtlMs: 30_000,
      leaseRenewMs: 20_000,
      leaseDriftMs: 1_000,
    });
    servers.push(s);
    const agent = await TestClient.open(s.url, 'agent');
    await agent.call('lock.acquire', { structure: true, mode: 'write' });
    await agent.call('edit.apply', { ops: [{ op: 'addFunction', name: 'kept' }] });

    // Another node's takeover, as it commits it: a new epoch and term.
    const sql = await connect(db);
    await sql.query("UPDATE lockstep_lease SET epoch = epoch + 1, term = 'intruder', node_id = 'other'");
    let answered = false;
    void agent.request('edit.apply', { ops: [{ op: 'addFunction', name: 'late' }] }).then(() => {
      answered = true;
    });

    // Frames come before the close: an answer would have been seen by now.
    expect((await agent.closed).code).toBe(CloseCode.NOT_LEADER);
    expect(answered).toBe(false);
    const revisions = await sql.query('SELECT revision FROM revisions ORDER BY revision');
    expect(revisions.rows.map((r) => r.revision)).toEqual([1]);
    const h = await until('standby', 5_000, async () => {
      const got = await health(`http://127.0.0.1:${s.port}`);
      return got.body.role === 'standby' ? got : undefined;
    });
    expect(h.status).toBe(503);
    const metrics = await (await fetch(`http://127.0.0.1:${s.port}/metrics`)).text();
    expect(metrics).toMatch(/^lockstep_cluster_step_downs_total\{reason="write-refused"\} 1$/m);
  });

  // Also on a schema older than the node's (a rolling upgrade: the old leader still runs on it),
  // whose lease rows record backend start times all the same (version 6 on).
  it.each([
    ['its own schema', false],
    ['the schema one version older', true],
  ])(
    'a node taking over ends an old leader transaction stuck on the lease row, which never commits (%s)',
    {
      timeout: 60_000,
    },
    async (_, older) => {
      const db = await freshDatabase(inject('postgresUrl'));
      const stuck = await connect(db);
      await stuck.query('BEGIN');
      expect(await migrate(stuck, Date.now())).toBeUndefined();
      await stuck.query('CREATE TABLE old_leader_writes (x int)');
      if (older) {
        // Undoes migration 10, the newest.
        expect(PG_SCHEMA_VERSION).toBe(10);
        await stuck.query('ALTER TABLE path_contents ALTER COLUMN blob SET NOT NULL');
        await stuck.query("UPDATE lockstep_meta SET value = '9' WHERE key = 'schema_version'");
      }
      await stuck.query('COMMIT');
      // An old leader, its lease run out, paused inside a write that passed its check.
      await stuck.query(
        `UPDATE lockstep_lease SET epoch = 1, term = 'old', node_id = 'old', url = 'ws://old/ws',
         expires_at = clock_timestamp() - interval '1 second', pids = ARRAY[pg_backend_pid()],
         pid_starts = ARRAY[(SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid())]`,
      );
      await stuck.query('BEGIN');
      expect(await holdsLease(stuck, 1, 'old')).toBe(true);
      await stuck.query('INSERT INTO old_leader_writes VALUES (1)');

      const s = await start({
        port: 0,
        db,
        logLevel: 'silent',
        leaseTtlMs: 1500,
        leaseRenewMs: 250,
        leaseDriftMs: 250,
      });
      servers.push(s);
      const led = await until('the new node leads', 15_000, async () => {
        const h = await health(`http://127.0.0.1:${s.port}`);
        return h.status === 200 ? h : undefined;
      });
      expect(led.body).toMatchObject({ role: 'leader', epoch: 2 });
      await expect(stuck.query('COMMIT')).rejects.toThrow();
      const check = await connect(db);
      expect((await check.query('SELECT count(*)::int AS n FROM old_leader_writes')).rows[0].n).toBe(0);
    },
  );
});
