import pg from 'pg';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { clearJournal } from '../../src/cluster/failover.ts';
import { journalTables, type JournalRecord } from '../../src/cluster/journal-batch.ts';
import { connectionTuning } from '../../src/cluster/lease-connection.ts';
import { holdsLease, registerBackend, takeOver } from '../../src/cluster/lease.ts';
import { type LockstepServer, start } from '../../src/server.ts';
import { PG_MIGRATIONS, PG_SCHEMA_VERSION } from '../../src/service/pg-schema.ts';
import { openPostgresStore, type PostgresStore } from '../../src/service/pg-store.ts';
import { freshDatabase } from '../helpers/postgres.ts';
import { health } from './leader-nodes.ts';
import { until } from '../helpers/until.ts';
import { sql } from './nodes.ts';

// Rules 3 and 7 of docs/cluster.md for the statements a leader makes outside its edits: clearing
// the journal and writing its batches are behind the lease check like every write, and the schema
// is migrated only by a node that takes the lease over, under the lease row's lock: never by a
// standby under a running leader.

const servers: LockstepServer[] = [];
const stores: PostgresStore[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop('test over')));
  await Promise.all(stores.splice(0).map((s) => s.close()));
});

const version = async (db: string): Promise<number> =>
  Number((await sql(db, "SELECT value FROM lockstep_meta WHERE key = 'schema_version'"))[0].value);

/** A held lock's journal record, as the lock core makes them. */
const held = (seq: number, fence: number): JournalRecord => ({
  seq,
  kind: 'held',
  sessionId: 'x',
  resource: { program: 'main', function: 1 },
  mode: 'write',
  fence,
  grantedAt: Date.now(),
  expiresAt: Date.now() + 30_000,
  ttlMs: 30_000,
  description: undefined,
});

const recorded = "SELECT l.fence, h.seq FROM cluster_locks l, cluster_journal_head h WHERE l.session_id = 'x'";

/** A schema, its lease taken by node a (epoch 1), and a's store behind its write fence. */
async function leaderA(db: string, lease: pg.Client): Promise<PostgresStore> {
  // Creates the schema.
  stores.push(await openPostgresStore(db, { now: () => Date.now() }));
  expect(
    await takeOver(lease, { nodeId: 'a', url: 'ws://a/ws', term: 'a' }, 60_000, 1_000, () => undefined),
  ).toMatchObject({ kind: 'taken', epoch: 1 });
  const fenced = await openPostgresStore(
    db,
    { now: () => Date.now() },
    {
      ...connectionTuning(60_000),
      connected: (c) => registerBackend(c, 1, 'a'),
      checkWrite: async (c) => {
        if (!(await holdsLease(c, 1, 'a'))) throw new Error('this node no longer leads');
      },
      claim: () => ({ epoch: 1, term: 'a' }),
      moved: () => new Error('this node no longer leads'),
    },
  );
  stores.push(fenced);
  return fenced;
}

describe('cluster: fenced schema and journal statements', () => {
  it('a deposed leader can neither clear the journal its successor keeps nor write a batch into it', async () => {
    const db = await freshDatabase(inject('postgresUrl'));
    const lease = new pg.Client({ connectionString: db });
    await lease.connect();
    try {
      const fenced = await leaderA(db, lease);
      const journal = journalTables(fenced, () => Date.now());
      // While it leads, a batch (the check and its rows in one statement) is written.
      await journal.write([held(1, 7)], 1);
      expect(await sql(db, recorded)).toEqual([{ fence: '7', seq: '1' }]);
      // Another node takes over and records a session of its own.
      await lease.query("UPDATE lockstep_lease SET epoch = 2, term = 'b', node_id = 'b'");
      await lease.query(
        "INSERT INTO cluster_sessions (session_id, name, role, secret_sha256) VALUES ('s', 'agent', 'agent', '\\x00')",
      );
      await expect(clearJournal(fenced)).rejects.toThrow(/no longer leads/);
      expect(await sql(db, 'SELECT session_id FROM cluster_sessions')).toEqual([{ session_id: 's' }]);
      // Its next batch is refused by the statement's own check, and rolled back whole.
      await expect(journal.write([held(2, 8)], 2)).rejects.toThrow(/no longer leads/);
      expect(await sql(db, recorded)).toEqual([{ fence: '7', seq: '1' }]);
    } finally {
      await lease.end();
    }
  });

  it('a journal batch sent while a takeover holds the lease row waits for it, then is refused', async () => {
    const db = await freshDatabase(inject('postgresUrl'));
    const lease = new pg.Client({ connectionString: db });
    await lease.connect();
    try {
      const journal = journalTables(await leaderA(db, lease), () => Date.now());
      // A takeover in flight: the row locked FOR UPDATE, its epoch not yet bumped.
      await lease.query('BEGIN');
      await lease.query('SELECT epoch FROM lockstep_lease WHERE id = 1 FOR UPDATE');
      const write = journal.write([held(1, 7)], 1);
      const refused = expect(write).rejects.toThrow(/no longer leads/);
      await until('the batch waits for the row lock', 10_000, async () => {
        const rows = await sql(
          db,
          "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%lockstep_journal_write%'",
        );
        return rows.length > 0 || undefined;
      });
      await lease.query("UPDATE lockstep_lease SET epoch = 2, term = 'b', node_id = 'b'");
      await lease.query('COMMIT');
      // It sees the committed takeover (the row's newest version), not the epoch it waited on.
      await refused;
      expect(await sql(db, 'SELECT count(*)::int AS n FROM cluster_locks')).toEqual([{ n: 0 }]);
      expect(await sql(db, 'SELECT seq FROM cluster_journal_head')).toEqual([{ seq: '0' }]);
    } finally {
      await lease.end();
    }
  });

  it('a node starting under a running leader leaves an older schema alone, and migrates it when it takes over', async () => {
    const db = await freshDatabase(inject('postgresUrl'));
    // A schema as of the lease's migration, held by a running leader (a live lease).
    const client = new pg.Client({ connectionString: db });
    await client.connect();
    try {
      await client.query('BEGIN');
      await client.query('CREATE TABLE lockstep_meta (key text PRIMARY KEY, value text NOT NULL)');
      for (const m of PG_MIGRATIONS.filter((m) => m.version <= 4)) await m.up(client, Date.now());
      await client.query("INSERT INTO lockstep_meta VALUES ('schema_version', '4')");
      await client.query(
        `UPDATE lockstep_lease SET epoch = 1, term = 'old', node_id = 'old', url = 'ws://old/ws',
           expires_at = clock_timestamp() + interval '1 hour'`,
      );
      await client.query('COMMIT');
    } finally {
      await client.end();
    }
    expect(PG_SCHEMA_VERSION).toBeGreaterThan(4);

    const s = await start({ port: 0, db, logLevel: 'silent', leaseTtlMs: 1500, leaseRenewMs: 250, leaseDriftMs: 250 });
    servers.push(s);
    const http = `http://127.0.0.1:${s.port}`;
    expect((await health(http)).body).toMatchObject({ role: 'standby', leader: 'ws://old/ws' });
    expect(await version(db)).toBe(4);

    // The old leader is gone: its lease runs out, and the node's takeover migrates the schema.
    await sql(db, "UPDATE lockstep_lease SET expires_at = clock_timestamp() - interval '1 second'");
    await until('the node leads', 15_000, async () => ((await health(http)).status === 200 ? true : undefined));
    expect(await version(db)).toBe(PG_SCHEMA_VERSION);
    expect((await health(http)).body).toMatchObject({ role: 'leader', epoch: 2 });
  });
});
