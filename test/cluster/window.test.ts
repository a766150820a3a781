import { describe, expect, inject, it } from 'vitest';
import { freshDatabase } from '../helpers/postgres.ts';
import { type Agent, useNodes } from './nodes.ts';

// The grace window seen from outside (docs/cluster.md, failover rules 6 and 7), and the event stream across a
// takeover: each case kills a node on PostgreSQL with SIGKILL and starts another on its database.

const { node, open, resumed } = useNodes();

async function oneFunction(a: Agent): Promise<number> {
  await a.client.call('lock.acquire', { structure: true, mode: 'write' });
  const r = await a.client.call('edit.apply', { ops: [{ op: 'addFunction', name: 'f' }] });
  await a.client.call('lock.release', { structure: true });
  return r.created[0].id;
}

describe('the grace window', () => {
  it('hands a restored lock to the first waiter when it ends without the owner', async () => {
    const db = await freshDatabase(inject('postgresUrl'));
    const first = await node(db);
    const owner = await open(first.url, 'owner');
    const f = await oneFunction(owner);
    const held = (await owner.client.call('lock.acquire', { functions: [f], mode: 'write', ttlMs: 600_000 })).grants[0];
    // Make sure the grant is journaled: the hello of a new session waits for everything before it.
    await open(first.url, 'witness');
    await first.kill();

    const second = await node(db, ['--session-grace-ms', '1500']);
    const t = await open(second.url, 't');
    const u = await open(second.url, 'u');
    const tq = await t.client.call('lock.acquire', { functions: [f], mode: 'write', wait: true });
    const uq = await u.client.call('lock.acquire', { functions: [f], mode: 'write', wait: true });
    expect([tq.status, uq.status]).toEqual(['queued', 'queued']);
    const granted = await t.client.notification('lock.granted', (p) => p.ticket === tq.ticket);
    expect(granted.grants[0].fence).toBeGreaterThan(held.fence);
    expect(u.client.pending('lock.granted')).toEqual([]);
    // The window is over: the owner's session is gone with it.
    const late = await resumed(second.url, owner);
    expect(late.frame.error.data.type).toBe('NOT_FOUND');
  }, 60_000);

  it('survives a second failover within the window: the owner still gets its lock back', async () => {
    const db = await freshDatabase(inject('postgresUrl'));
    const first = await node(db);
    const owner = await open(first.url, 'owner');
    const f = await oneFunction(owner);
    const held = (await owner.client.call('lock.acquire', { functions: [f], mode: 'write', ttlMs: 600_000 })).grants[0];
    await open(first.url, 'witness');
    await first.kill();

    // The second leader holds f for the owner, hands a waiter nothing, and dies in its window.
    const second = await node(db);
    const t = await open(second.url, 't');
    expect((await t.client.call('lock.acquire', { functions: [f], mode: 'write', wait: true })).status).toBe('queued');
    await second.kill();

    const third = await node(db);
    const back = await resumed(third.url, owner);
    expect(back.frame.result.restored).toEqual([
      expect.objectContaining({ resource: { program: 'main', function: f }, mode: 'write', fence: held.fence }),
    ]);
  }, 60_000);

  it('starts a new run of the event stream: a subscriber resuming from the old one is told to resync', async () => {
    const db = await freshDatabase(inject('postgresUrl'));
    const first = await node(db);
    const watcher = await open(first.url, 'watcher', 'observer');
    const before = await watcher.client.call('events.subscribe', { topics: ['locks', 'agents'] });
    await first.kill();

    const second = await node(db);
    const back = await resumed(second.url, watcher);
    expect(back.frame.result).toMatchObject({ resumed: true, restored: [] });
    const after = await back.client.call('events.subscribe', {
      topics: ['locks', 'agents'],
      since: before.seq,
      runId: before.runId,
    });
    expect(after.truncated).toBe(true);
    expect(after.runId).not.toBe(before.runId);
  }, 60_000);
});
