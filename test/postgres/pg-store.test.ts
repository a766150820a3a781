import pg from 'pg';
import { pino } from 'pino';
import { describe, expect, inject, it } from 'vitest';
import { systemClock } from '../../src/concurrency/index.ts';
import { ProgramService, StoreError } from '../../src/service/index.ts';
import { PG_MIGRATIONS, PG_SCHEMA_VERSION } from '../../src/service/pg-schema.ts';
import { alice, chain, edit, expectCurrentSchema, expectError } from '../helpers/service.ts';
import { RpcCallError } from '../helpers/client.ts';
import { freshDatabase } from '../helpers/postgres.ts';
import { addFunctions, roundTrip, useServers } from '../helpers/server.ts';

const cluster = inject('postgresUrl');

async function sql(url: string, text: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

async function openError(url: string): Promise<StoreError> {
  try {
    await (await ProgramService.open({ path: url, clock: systemClock })).close();
  } catch (err) {
    expect(err).toBeInstanceOf(StoreError);
    return err as StoreError;
  }
  throw new Error('opening succeeded');
}

describe('the PostgreSQL store', () => {
  it('finds everything again after a reopen, fences above all handed out before', async () => {
    const url = await freshDatabase(cluster);
    let svc = await ProgramService.open({ path: url, clock: systemClock });
    await chain(svc, 'f');
    await edit(svc, [{ op: 'removeNode', function: 1, node: 2 }]);
    await svc.createCheckpoint('main', 'cp', alice);
    const fences = [svc.fences().next('main'), svc.fences().next('main')];
    const before = { program: svc.getProgram('main'), history: await svc.history('main') };
    // The fence block is reserved asynchronously: let it land as a running server would.
    await svc.history('main');
    await svc.close();
    svc = await ProgramService.open({ path: url, clock: systemClock });
    expect(svc.getProgram('main')).toEqual(before.program);
    expect(await svc.history('main')).toEqual(before.history);
    expect((await svc.listCheckpoints('main')).map((c) => c.name)).toEqual(['cp']);
    expect(svc.fences().next('main')).toBeGreaterThan(Math.max(...fences));
    await svc.close();
  });

  it('refuses a schema newer than this server, and tables that are not Lockstep’s', async () => {
    const newer = await freshDatabase(cluster);
    await (await ProgramService.open({ path: newer, clock: systemClock })).close();
    await sql(newer, "UPDATE lockstep_meta SET value = '99' WHERE key = 'schema_version'");
    expect((await openError(newer)).message).toContain(
      `schema version 99 is newer than this server supports (${PG_SCHEMA_VERSION})`,
    );
    const foreign = await freshDatabase(cluster);
    await sql(foreign, 'CREATE TABLE customers (id int)');
    expect((await openError(foreign)).message).toMatch(/not a Lockstep store/);
  });

  it('migrates a database of schema version 1, keeping its content', async () => {
    const url = await freshDatabase(cluster);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query('BEGIN');
    await client.query('CREATE TABLE lockstep_meta (key text PRIMARY KEY, value text NOT NULL)');
    await PG_MIGRATIONS[0]?.up(client as unknown as pg.PoolClient, 1);
    await client.query("INSERT INTO lockstep_meta VALUES ('schema_version', '1')");
    await client.query('COMMIT');
    await client.end();
    await expectCurrentSchema(url);
  });

  it('never shows the password of the URL', async () => {
    const url = new URL(cluster);
    url.password = 's3cret-pw';
    url.port = '1';
    const err = await openError(url.toString());
    expect(err.message).not.toContain('s3cret-pw');
    expect(err.message).toContain('***');
  });

  it('changes nothing in memory when the database refuses the commit', async () => {
    const url = await freshDatabase(cluster);
    const svc = await ProgramService.open({ path: url, clock: systemClock });
    const id = await chain(svc);
    const before = svc.getProgram('main');
    await sql(
      url,
      `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$;
       CREATE TRIGGER refuse BEFORE INSERT ON revisions FOR EACH ROW EXECUTE FUNCTION refuse();`,
    );
    const change = [{ op: 'updateNode', function: id, node: { id: 1, attrs: { value: 9 } } }];
    await expect(edit(svc, change)).rejects.toThrow(/refused/);
    expect(svc.getProgram('main')).toEqual(before);
    await sql(url, 'DROP TRIGGER refuse ON revisions');
    expect((await edit(svc, change)).revision).toBe(before.revision + 1);
    await svc.close();
  });

  it('fails calls with STORE_UNAVAILABLE while the database is gone, and recovers after the backoff', async () => {
    const url = await freshDatabase(cluster);
    let now = 1_000_000;
    const svc = await ProgramService.open({ path: url, clock: { now: () => now } });
    await chain(svc);
    const name = new URL(url).pathname.slice(1);
    await sql(cluster, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${name}'`);
    const err = await expectError(() => svc.history('main'), 'STORE_UNAVAILABLE');
    expect(err.retryable).toBe(true);
    expect(err.retryAfterMs).toBeGreaterThan(0);
    // Inside the backoff the store is not even tried.
    await expectError(() => svc.history('main'), 'STORE_UNAVAILABLE');
    now += 10_000;
    expect(await svc.history('main')).toHaveLength(1);
    await svc.close();
  });
});

describe('a server on PostgreSQL', () => {
  const { server, agent } = useServers();

  it('logs its database URL without the password', async () => {
    const url = new URL(await freshDatabase(cluster));
    url.password = 'hunter2-pw';
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
    await server({ db: url.toString(), logger });
    const log = lines.join('');
    expect(log).toContain('lockstep listening');
    expect(log).toContain('***');
    expect(log).not.toContain('hunter2-pw');
  });

  it('keeps serving locks while the database is unreachable; edits fail retryably, then work again', async () => {
    const url = await freshDatabase(cluster);
    const name = new URL(url).pathname.slice(1);
    // Without resume grace nothing is journaled: locks live in memory only and never wait for the
    // database (with it, a lock change waits for its record: test/cluster/journal-stuck.test.ts).
    const s = await server({ db: url, sessionGraceMs: 0 });
    const a = await agent(s, 'a');
    const [f] = await addFunctions(a, ['f']);
    await sql(cluster, `ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
    await sql(cluster, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${name}'`);
    await roundTrip(a, f);
    await a.call('lock.acquire', { functions: [f], mode: 'write' });
    const op = { op: 'updateNode', function: f, node: { id: 1, op: 'x' } };
    const add = { op: 'addNode', function: f, node: { id: 1, op: 'x' } };
    const failed = await a.call('edit.apply', { ops: [add] }).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(RpcCallError);
    expect((failed as RpcCallError).error.data).toMatchObject({ type: 'STORE_UNAVAILABLE', retryable: true });
    await sql(cluster, `ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
    let result: { revision: number } | undefined;
    for (let attempt = 0; result === undefined && attempt < 20; attempt++) {
      result = await a.call('edit.apply', { ops: [add] }).catch(async (e: RpcCallError) => {
        if (e.type !== 'STORE_UNAVAILABLE') throw e;
        // The server says when to come back: that wait is the behaviour under test.
        await new Promise((resolve) => setTimeout(resolve, e.error.data?.retryAfterMs ?? 100));
        return undefined;
      });
    }
    expect(result?.revision).toBe(2);
    expect((await a.call('edit.apply', { ops: [op] })).revision).toBe(3);
  });
});
