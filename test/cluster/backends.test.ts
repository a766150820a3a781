import pg from 'pg';
import { afterEach, describe, expect, inject, it } from 'vitest';
import {
  type Backend,
  recordedBackends,
  registerBackend,
  renew,
  takeOver,
  terminate,
} from '../../src/cluster/lease.ts';
import { type LockstepServer, start } from '../../src/server.ts';
import { migrate } from '../../src/service/index.ts';
import { TestClient } from '../helpers/client.ts';
import { freshDatabase } from '../helpers/postgres.ts';
import { addFunctions } from '../helpers/server.ts';
import { until } from '../helpers/until.ts';
import { installAudit, readAudit } from './workload-audit.ts';

// Rule 7 of docs/cluster.md: every backend of a leader is in the lease row, by pid and start
// time, before its first statement (a failed registration is a failed connection), and a new
// leader ends only backends that are still the ones recorded.

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

const pidOf = async (c: pg.Client): Promise<number> => (await c.query('SELECT pg_backend_pid() AS p')).rows[0].p;

/** A database with its schema and a lease taken by `lease` (epoch 1, term "a"). */
async function leased(): Promise<{ url: string; lease: pg.Client }> {
  const url = await freshDatabase(inject('postgresUrl'));
  const lease = await connect(url);
  await lease.query('BEGIN');
  expect(await migrate(lease, Date.now())).toBeUndefined();
  await lease.query('COMMIT');
  const taken = await takeOver(lease, { nodeId: 'a', url: 'ws://a/ws', term: 'a' }, 60_000, 1_000, () => undefined);
  expect(taken).toMatchObject({ kind: 'taken', epoch: 1 });
  return { url, lease };
}

describe('cluster: the leader backends in the lease row', () => {
  it('records each backend by pid and start time, drops only ended ones, and renewals keep them all', async () => {
    const { url, lease } = await leased();
    const [s1, s2] = [await connect(url), await connect(url)];
    await registerBackend(s1, 1, 'a');
    await registerBackend(s2, 1, 'a');
    const pids = async () => (await recordedBackends(lease)).map((b) => b.pid);
    expect(await pids()).toEqual([await pidOf(lease), await pidOf(s1), await pidOf(s2)]);
    const started = await s1.query(
      'SELECT backend_start::text AS s FROM pg_stat_activity WHERE pid = pg_backend_pid()',
    );
    expect((await recordedBackends(lease))[1]?.started).toBe(started.rows[0].s);

    const gone = await pidOf(s1);
    await s1.end();
    await until('the backend has ended', 5_000, async () => {
      const { rows } = await lease.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [gone]);
      return rows.length === 0 ? true : undefined;
    });
    const s3 = await connect(url);
    await registerBackend(s3, 1, 'a');
    expect(await pids()).toEqual([await pidOf(lease), await pidOf(s2), await pidOf(s3)]);
    expect(await renew(lease, 1, 'a', 60_000)).toBe(true);
    expect(await pids()).toEqual([await pidOf(lease), await pidOf(s2), await pidOf(s3)]);

    // A term that no longer holds the lease cannot register: that connection is not used.
    await expect(registerBackend(await connect(url), 1, 'other')).rejects.toThrow(/no longer held/);
  });

  it('ends only backends that are still the ones recorded, never one that got a recorded pid since', async () => {
    const { url } = await leased();
    const store = await connect(url);
    await registerBackend(store, 1, 'a');
    const next = await connect(url);
    const recorded = await recordedBackends(next);
    const [leaseBackend, storeBackend] = recorded as [Backend, Backend];

    // The same pid with another start time: a backend that is not the one recorded.
    const reused = { pid: storeBackend.pid, started: '2000-01-01 00:00:00+00' };
    expect(await terminate(next, [reused])).toBe(0);
    await expect(store.query('SELECT 1')).resolves.toBeDefined();

    expect(await terminate(next, [leaseBackend, storeBackend])).toBe(2);
    await expect(store.query('SELECT 1')).rejects.toThrow();
  });

  it('never lets a store connection whose registration failed run a statement', async () => {
    const db = await freshDatabase(inject('postgresUrl'));
    // Renewals far apart: the row lock the test takes must not cost the lease.
    const s = await start({ port: 0, db, logLevel: 'silent', leaseTtlMs: 30_000, leaseRenewMs: 10_000 });
    servers.push(s);
    await installAudit(db);
    const agent = await TestClient.open(s.url, 'agent');
    const [f] = await addFunctions(agent, ['f']);
    await agent.call('lock.acquire', { functions: [f], mode: 'write' });
    const sql = await connect(db);
    const [leasePid, ...storePids] = (await recordedBackends(sql)).map((b) => b.pid);

    // The lease row locked, as a renewal or a takeover check would hold it; then every store
    // connection ended, so that the next edit opens a new one, whose registration waits.
    const locker = await connect(db);
    await locker.query('BEGIN');
    await locker.query('SELECT 1 FROM lockstep_lease WHERE id = 1 FOR NO KEY UPDATE');
    await sql.query('SELECT pg_terminate_backend(p) FROM unnest($1::int[]) AS p', [storePids]);
    const edit = (id: number) =>
      agent.request('edit.apply', { ops: [{ op: 'addNode', function: f, node: { id, op: 'x' } }] });
    const answers: Array<Promise<unknown>> = [];
    const waiting = await until('a new store connection registering', 10_000, async () => {
      answers.push(edit(answers.length + 1));
      const { rows } = await sql.query(
        `SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%lockstep_lease%'
           AND query NOT LIKE '%expires_at%' AND pid <> $1`,
        [leasePid],
      );
      return rows[0]?.pid as number | undefined;
    });
    // The registration fails (as any statement can); the connection must not carry the edit.
    await sql.query('SELECT pg_cancel_backend($1)', [waiting]);
    await locker.query('COMMIT');
    await Promise.all(answers);

    await until('an edit commits on a registered connection', 10_000, async () => {
      const r = await edit(1000 + answers.length);
      answers.push(Promise.resolve(r));
      return r.error === undefined ? true : undefined;
    });
    const revisions = (await readAudit(db)).filter((a) => a.tbl === 'revisions');
    expect(revisions.length).toBeGreaterThan(0);
    expect(revisions.filter((a) => !a.byHolder)).toEqual([]);
  });
});
