import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { connectionTuning, LeaseConnection, leaseFailure } from '../../src/cluster/lease-connection.ts';
import { LockstepError } from '../../src/protocol/errors.ts';
import { PgConnection } from '../../src/service/pg-connection.ts';
import { freshDatabase } from '../helpers/postgres.ts';
import { until } from '../helpers/until.ts';

// How the connections of a cluster node behave whatever the database's defaults are
// (docs/postgresql.md, docs/cluster.md rule 7).

async function show(url: string): Promise<string> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query('SHOW synchronous_commit')).rows[0].synchronous_commit;
  } finally {
    await c.end();
  }
}

/** A database whose default is to acknowledge commits before they are durable. */
async function asyncByDefault(): Promise<string> {
  const url = await freshDatabase(inject('postgresUrl'));
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(`ALTER DATABASE ${new URL(url).pathname.slice(1)} SET synchronous_commit = off`);
  } finally {
    await admin.end();
  }
  expect(await show(url)).toBe('off');
  return url;
}

describe('cluster connections', () => {
  it('the lease connection commits synchronously, as the store connections do, whatever the default', async () => {
    const url = await asyncByDefault();
    const lease = new LeaseConnection(url, 3_000, async () => undefined);
    try {
      const shown = await lease.use(async (c) => (await c.query('SHOW synchronous_commit')).rows[0].synchronous_commit);
      expect(shown).toBe('on');
    } finally {
      await lease.close();
    }
    const store = new PgConnection(url, () => Date.now(), {
      ...connectionTuning(3_000),
      checkWrite: async () => undefined,
      connected: async () => undefined,
      claim: () => ({ epoch: 1, term: 't' }),
      moved: () => new Error('moved'),
    });
    try {
      expect(
        (await store.query<{ synchronous_commit: string }>('SHOW synchronous_commit'))[0]?.synchronous_commit,
      ).toBe('on');
    } finally {
      await store.close();
    }
  });

  it('a store statement that gets no answer within the read timeout is STORE_UNAVAILABLE, retryable', async () => {
    const url = await freshDatabase(inject('postgresUrl'));
    const store = new PgConnection(url, () => Date.now(), {
      ...connectionTuning(3_000),
      queryTimeoutMs: 200,
      checkWrite: async () => undefined,
      connected: async () => undefined,
      claim: () => ({ epoch: 1, term: 't' }),
      moved: () => new Error('moved'),
    });
    try {
      const err = await store.query('SELECT pg_sleep(5)').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LockstepError);
      expect(err).toMatchObject({ type: 'STORE_UNAVAILABLE', retryable: true });
    } finally {
      await store.close();
    }
  });

  it("a lease connection ended by the database (a new leader ending the old one's backends) is logged as such, not as no answer", async () => {
    const url = await freshDatabase(inject('postgresUrl'));
    const lease = new LeaseConnection(url, 3_000, async () => undefined);
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      const pid = await lease.use(async (c) => (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number);
      const sleeping = lease.use((c) => c.query('SELECT pg_sleep(30)')).catch((e: unknown) => e);
      await until('the lease statement runs', 10_000, async () => {
        const { rows } = await admin.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = $2', [
          pid,
          'active',
        ]);
        return rows.length > 0 ? true : undefined;
      });
      await admin.query('SELECT pg_terminate_backend($1)', [pid]);
      const err = await sleeping;
      expect(err).toMatchObject({ code: '57P01' });
      expect(leaseFailure(err, 10, 3_000)).toMatch(/ended this node's connection \(57P01.*a new leader ends/);
      expect(leaseFailure(new Error('Query read timeout'), 3_000, 3_000)).toMatch(/did not answer within the lease/);
      expect(leaseFailure(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }), 5, 3_000)).toBe(
        'lease: the database could not be reached',
      );
    } finally {
      await admin.end();
      await lease.close();
    }
  });
});
