import { describe, expect, inject, it } from 'vitest';
import { SLOW_STATEMENTS, useDatabaseProxies } from '../helpers/database-proxy.ts';
import { freshDatabase } from '../helpers/postgres.ts';
import { addFunctions } from '../helpers/server.ts';
import { type Node, useNodes } from './nodes.ts';

// What an agent was told of its locks is what a new leader restores (docs/cluster.md, "What is
// durable when"): the leader is killed (SIGKILL) the moment a reply or push arrives, before any
// edit could have carried the journal along, and the agents resume on the next leader. The first
// leader reaches PostgreSQL through a proxy that slows each of its statements by a round trip of
// 40 ms, so that a journal commit takes a few hundred: a reply that did not wait for it would
// arrive, and the kill land, well before it ends.

const { node, open, resumed } = useNodes();
const databaseProxy = useDatabaseProxies();

const LONG = 600_000;

/** The first leader on `db`, through a proxy; `slow()` makes its statements slow from then on. */
async function firstLeader(db: string): Promise<{ leader: Node; slow(): void }> {
  const proxy = await databaseProxy(db);
  const leader = await node(proxy.url);
  return { leader, slow: () => proxy.mode(SLOW_STATEMENTS) };
}

describe('a lock change told is durable', () => {
  it('does not give back a lock whose release was answered', async () => {
    const db = await freshDatabase(inject('postgresUrl'));
    const { leader: first, slow } = await firstLeader(db);
    const a = await open(first.url, 'a');
    const [f] = await addFunctions(a.client, ['f'] as const);
    await a.client.call('lock.acquire', { functions: [f], mode: 'write', ttlMs: LONG });
    slow();
    await a.client.call('lock.release', { functions: [f] });
    await first.kill();

    const second = await node(db);
    expect((await resumed(second.url, a)).frame.result).toMatchObject({ resumed: true, restored: [] });
  }, 60_000);

  it('gives back a lock whose grant was answered', async () => {
    const db = await freshDatabase(inject('postgresUrl'));
    const { leader: first, slow } = await firstLeader(db);
    const a = await open(first.url, 'a');
    const [f] = await addFunctions(a.client, ['f'] as const);
    slow();
    const grant = (await a.client.call('lock.acquire', { functions: [f], mode: 'write', ttlMs: LONG })).grants[0];
    await first.kill();

    const second = await node(db);
    expect((await resumed(second.url, a)).frame.result.restored).toEqual([
      expect.objectContaining({ resource: { program: 'main', function: f }, mode: 'write', fence: grant.fence }),
    ]);
  }, 60_000);

  it('gives a lock passed on back to the holder told of it, not to the one that released it', async () => {
    const db = await freshDatabase(inject('postgresUrl'));
    const { leader: first, slow } = await firstLeader(db);
    const a = await open(first.url, 'a');
    const b = await open(first.url, 'b');
    const [f] = await addFunctions(a.client, ['f'] as const);
    await a.client.call('lock.acquire', { functions: [f], mode: 'write', ttlMs: LONG });
    const queued = await b.client.call('lock.acquire', { functions: [f], mode: 'write', ttlMs: LONG, wait: true });
    slow();
    await a.client.call('lock.release', { functions: [f] });
    const granted = await b.client.notification('lock.granted', (p) => p.ticket === queued.ticket);
    await first.kill();

    const second = await node(db);
    expect((await resumed(second.url, a)).frame.result).toMatchObject({ resumed: true, restored: [] });
    expect((await resumed(second.url, b)).frame.result.restored).toEqual([
      expect.objectContaining({ resource: { program: 'main', function: f }, fence: granted.grants[0].fence }),
    ]);
  }, 60_000);
});
