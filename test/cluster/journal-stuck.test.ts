import { describe, expect, inject, it } from 'vitest';
import { freshDatabase } from '../helpers/postgres.ts';
import { addFunctions, useServers } from '../helpers/server.ts';
import { TIMING } from './leader-nodes.ts';
import { until } from '../helpers/until.ts';
import { blockJournal, sql, useNodes } from './nodes.ts';

// A leader whose journal cannot be written (docs/cluster.md, "What is durable when"): lock
// changes wait for it within the lease, then are refused with STORE_UNAVAILABLE, leaving what
// docs/protocol.md says; pushes wait and arrive once it is written; edits never wait for it. And
// a record PostgreSQL refuses for its data does not stop the journal.

const t = useServers();
const cluster = useNodes();

const holders = async (
  c: { call(m: string, p?: unknown): Promise<any> },
  fn: number,
): Promise<Array<{ sessionId: string; fence: number }>> =>
  ((await c.call('lock.status', {})).resources.find((r: any) => r.resource.function === fn)?.holders ?? []).map(
    (h: any) => ({ sessionId: h.sessionId, fence: h.fence }),
  );

describe('the lock journal when it cannot be written', () => {
  it('refuses lock changes past the lease, undoes a grant, holds pushes until written, and never holds up an edit', async () => {
    const db = await freshDatabase(inject('postgresUrl'));
    const s = await t.server({ db, ...TIMING });
    const [a, b, c, d] = await Promise.all(['a', 'b', 'c', 'd'].map((name) => t.agent(s, name)));
    const [f, g, h] = await addFunctions(a!, ['f', 'g', 'h'] as const);
    await a!.call('lock.acquire', { functions: [f], mode: 'write' });
    const queued = await b!.call('lock.acquire', { functions: [f], mode: 'write', wait: true });
    const dh = (await d!.call('lock.acquire', { functions: [h], mode: 'write' })).grants[0];
    const sessions = s.inspect().sessions.size;

    const unblock = await blockJournal(db);
    let blocked = true;
    try {
      const newcomer = await t.raw(s);
      const [released, acquired, hello, edit] = await Promise.all([
        a!.fail('lock.release', { functions: [f] }),
        c!.fail('lock.acquire', { functions: [g], mode: 'write', key: 'k' }),
        newcomer.fail('session.hello', { protocol: 1, name: 'newcomer' }),
        d!.call('edit.apply', {
          ops: [{ op: 'addNode', function: h, node: { id: 1, op: 'const' } }],
          fences: { [h]: dh.fence },
        }),
      ]);
      for (const refused of [released, acquired, hello])
        expect(refused.data).toMatchObject({ type: 'STORE_UNAVAILABLE', retryable: true, retryAfterMs: 1000 });
      // An edit does not write the journal: it committed while the journal could not.
      expect(edit.revision).toBeGreaterThan(0);
      // The release stays done (f passed on in memory); the grant of g was undone; the
      // newcomer's session is gone; b has not been told of f.
      expect((await holders(d!, f)).map((x) => x.sessionId)).toEqual([b!.sessionId]);
      expect(await holders(d!, g)).toEqual([]);
      expect(s.inspect().sessions.size).toBe(sessions);
      expect(b!.pending('lock.granted')).toEqual([]);
      expect((await fetch(`http://127.0.0.1:${s.port}/healthz`)).status).toBe(200);

      await unblock();
      blocked = false;
      const granted = await b!.notification('lock.granted', (p) => p.ticket === queued.ticket);
      // The key's undone outcome was forgotten: the retry is granted afresh, and holds.
      const again = await c!.call('lock.acquire', { functions: [g], mode: 'write', key: 'k' });
      expect(await holders(d!, g)).toEqual([{ sessionId: c!.sessionId, fence: again.grants[0].fence }]);
      // The retry's reply waited for every record before it.
      const rows = await sql(db, 'SELECT session_id, resource, fence::int FROM cluster_locks ORDER BY resource');
      expect(rows).toEqual([
        { session_id: b!.sessionId, resource: String(f), fence: granted.grants[0].fence },
        { session_id: c!.sessionId, resource: String(g), fence: again.grants[0].fence },
        { session_id: d!.sessionId, resource: String(h), fence: dh.fence },
      ]);
    } finally {
      if (blocked) await unblock();
    }
  });

  it('leaves out a lock PostgreSQL refuses to record, and goes on recording', async () => {
    const db = await freshDatabase(inject('postgresUrl'));
    const s = await t.server({ db });
    const a = await t.agent(s, 'a');
    const [f, g] = await addFunctions(a, ['f', 'g'] as const);
    // A constraint stands for any data PostgreSQL refuses (SQLSTATE class 23).
    await sql(db, "ALTER TABLE cluster_locks ADD CONSTRAINT refused CHECK (description IS DISTINCT FROM 'refused')");
    const bad = await a.call('lock.acquire', { functions: [f], mode: 'write', description: 'refused' });
    expect(bad.status).toBe('granted');
    await a.call('lock.acquire', { functions: [g], mode: 'write' });
    // Not recorded, so never restored; everything after it is.
    expect(await sql(db, 'SELECT resource FROM cluster_locks ORDER BY resource')).toEqual([{ resource: String(g) }]);
    const b = await t.agent(s, 'b');
    expect(await sql(db, 'SELECT 1 FROM cluster_sessions WHERE session_id = $1', [b.sessionId])).toHaveLength(1);
    await a.call('lock.release', { functions: [f, g] });
    expect(await sql(db, 'SELECT 1 FROM cluster_locks')).toEqual([]);
  });

  it('tells a first resume refused for the journal what it got back at its next resume', async () => {
    const db = await freshDatabase(inject('postgresUrl'));
    const first = await cluster.node(db);
    const a = await cluster.open(first.url, 'a');
    const [f, g] = await addFunctions(a.client, ['f', 'g'] as const);
    const grant = (await a.client.call('lock.acquire', { functions: [f], mode: 'write', ttlMs: 600_000 })).grants[0];
    await first.kill();

    const second = await cluster.node(db);
    const y = await cluster.open(second.url, 'y');
    const viewer = await cluster.open(second.url, 'viewer', 'observer');
    const unblock = await blockJournal(db);
    let blocked = true;
    try {
      // A change the journal cannot commit, then the resume, which must wait for it.
      const pending = y.client.request('lock.acquire', { functions: [g], mode: 'write' });
      await until('g granted in memory', 10_000, async () =>
        (await holders(viewer.client, g)).length > 0 ? true : undefined,
      );
      const { client, frame } = await cluster.resumed(second.url, a);
      expect(frame.error?.data).toMatchObject({ type: 'STORE_UNAVAILABLE', retryable: true });
      expect((await pending).error?.data?.type).toBe('STORE_UNAVAILABLE');
      await unblock();
      blocked = false;
      const again = await client.call('session.hello', {
        protocol: 1,
        resume: { sessionId: a.sessionId, secret: a.secret },
      });
      expect(again.restored).toEqual([
        expect.objectContaining({ resource: { program: 'main', function: f }, fence: grant.fence }),
      ]);
    } finally {
      if (blocked) await unblock();
    }
  }, 60_000);
});
