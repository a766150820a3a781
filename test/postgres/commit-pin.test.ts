import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { freshDatabase } from '../helpers/postgres.ts';
import { addFunctions, useServers } from '../helpers/server.ts';

const cluster = inject('postgresUrl');

interface Item {
  seq: number;
  type: string;
  data: Record<string, any>;
}

describe('check and commit are one step (docs/cluster.md, rule 5)', () => {
  const { server, agent } = useServers();

  /** A server whose database takes a second per revision, a holder, a waiter and the event stream. */
  async function slowed() {
    const url = await freshDatabase(cluster);
    const s = await server({ db: url });
    const a = await agent(s, 'a');
    const b = await agent(s, 'b');
    const watcher = await agent(s, 'watcher', 'observer');
    const seen: Item[] = [];
    watcher.ws.on('message', (data) => {
      const f = JSON.parse(data.toString());
      if (f.method === 'event') seen.push(f.params);
    });
    await watcher.call('events.subscribe', { topics: ['locks', 'edits'] });
    const [f] = await addFunctions(a, ['f']);

    // Every revision now takes two seconds to commit; the lease below lasts one (its grant's reply
    // waits for the lock journal, so the lease must leave room for the calls before the edit).
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    await admin.query(`CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_sleep(2); RETURN NEW; END $$;
      CREATE TRIGGER slow BEFORE INSERT ON revisions FOR EACH ROW EXECUTE FUNCTION slow();`);
    await admin.end();
    const at = (match: (i: Item) => boolean) => seen.findIndex(match);
    return { a, b, watcher, f, at };
  }

  it('a lease that runs out while its edit commits on a slowed database ends only after the commit', async () => {
    const { a, b, watcher, f, at } = await slowed();
    const held = await a.call('lock.acquire', { functions: [f], mode: 'write', ttlMs: 1_000 });
    expect(held.status).toBe('granted');
    expect((await b.call('lock.acquire', { functions: [f], mode: 'write', wait: true })).status).toBe('queued');
    const edited = await a.call('edit.apply', { ops: [{ op: 'addNode', function: f, node: { id: 1, op: 'x' } }] });
    expect(edited.revision).toBe(2);
    await b.notification('lock.granted');
    await watcher.notification('event', (e: Item) => e.type === 'granted' && e.data.name === 'b');

    const committed = at((i) => i.type === 'committed' && i.data.revision === 2);
    const expired = at((i) => i.type === 'expired' && i.data.name === 'a');
    const grantedB = at((i) => i.type === 'granted' && i.data.name === 'b');
    expect(committed).toBeGreaterThanOrEqual(0);
    expect(expired).toBeGreaterThan(committed);
    expect(grantedB).toBeGreaterThan(expired);
  });

  it('a holder that disconnects while its edit commits keeps its lock until the commit', async () => {
    const { a, b, watcher, f, at } = await slowed();
    await a.call('lock.acquire', { functions: [f], mode: 'write' });
    expect((await b.call('lock.acquire', { functions: [f], mode: 'write', wait: true })).status).toBe('queued');
    a.send(
      JSON.stringify({
        jsonrpc: '2.0',
        id: 99,
        method: 'edit.apply',
        params: { ops: [{ op: 'addNode', function: f, node: { id: 1, op: 'x' } }] },
      }),
    );
    a.ws.terminate();
    await b.notification('lock.granted');
    await watcher.notification('event', (e: Item) => e.type === 'granted' && e.data.name === 'b');
    const committed = at((i) => i.type === 'committed' && i.data.revision === 2);
    const grantedB = at((i) => i.type === 'granted' && i.data.name === 'b');
    expect(committed).toBeGreaterThanOrEqual(0);
    expect(grantedB).toBeGreaterThan(committed);
  });
});
