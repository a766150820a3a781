import { describe, expect, inject, it } from 'vitest';
import { freshDatabase } from '../helpers/postgres.ts';
import { useServers } from '../helpers/server.ts';
import { useDatabaseProxies } from '../helpers/database-proxy.ts';
import { blockJournal } from './nodes.ts';

// The hello timeout is for a connection that says nothing. In cluster mode a new session's hello is
// answered once the journal has it: a slow database must not turn a hello sent in time into 1008
// (under load, an agent's hello was closed this way and its reply waited for until the test's timeout).

/** A long lease: the slowed database must not make the only node step down (another fault). */
const TIMING = { leaseTtlMs: 30_000, leaseRenewMs: 1_000, leaseDriftMs: 500 };

const t = useServers();
const databaseProxy = useDatabaseProxies();

describe('hello timeout, cluster mode', () => {
  it('answers a hello whose session takes longer than helloTimeoutMs to record', async () => {
    const proxy = await databaseProxy(await freshDatabase(inject('postgresUrl')));
    const s = await t.server({ db: proxy.url, helloTimeoutMs: 100, ...TIMING });
    // Each answer from the database 300 ms late: recording the session alone outlasts the timeout.
    proxy.mode({ kind: 'latency', upMs: 0, downMs: 300 });
    const c = await t.raw(s);
    const closed = c.closed.then(({ code, reason }) => {
      throw new Error(`closed with ${code} (${reason}) before the hello was answered`);
    });
    const hello = await Promise.race([c.call('session.hello', { protocol: 1, name: 'slow' }), closed]);
    expect(hello.name).toBe('slow');
    proxy.mode({ kind: 'pass' });
    expect((await c.call('session.ping')).time).toEqual(expect.any(String));
  });

  it('closes with 1008 a connection whose session could not be recorded and that says no other hello', async () => {
    const db = await freshDatabase(inject('postgresUrl'));
    // A short lease: a hello waits for its record at most that long (docs/cluster.md).
    const s = await t.server({ db, helloTimeoutMs: 100, leaseTtlMs: 1_500, leaseRenewMs: 250, leaseDriftMs: 250 });
    // The journal blocked: the session's record is not written in time, the session never was.
    const unblock = await blockJournal(db);
    try {
      const c = await t.raw(s);
      expect((await c.fail('session.hello', { protocol: 1, name: 'unrecorded' })).data?.type).toBe('STORE_UNAVAILABLE');
      expect(await c.closed).toEqual({ code: 1008, reason: 'no session.hello in time' });
    } finally {
      await unblock();
    }
  });
});
