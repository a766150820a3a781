import { describe, expect, inject, it, vi } from 'vitest';
import type { TestClient } from '../helpers/client.ts';
import { freshDatabase } from '../helpers/postgres.ts';
import { addFunctions, useServers } from '../helpers/server.ts';
import { useDatabaseProxies } from '../helpers/database-proxy.ts';
import { until } from '../helpers/until.ts';

// Check and commit are one step (docs/protocol.md, edit.apply): while an edit commits, a release
// or downgrade of its locks by the same session waits for the commit to end. One socket runs its
// calls one at a time, so the case is a resume on a second socket while the first one's edit
// commits. The commit is held at its COMMIT by a proxy in front of PostgreSQL. (A SQLite commit
// runs in one turn of the event loop: no call of another socket can come in between.)

const t = useServers();
const databaseProxy = useDatabaseProxies();

const cases = [
  { method: 'lock.release', params: (f: number) => ({ functions: [f] }), waiter: 'write' },
  { method: 'lock.releaseAll', params: () => ({}), waiter: 'write' },
  { method: 'lock.downgrade', params: (f: number) => ({ functions: [f] }), waiter: 'read' },
] as const;

async function hello(c: TestClient, params: object): Promise<any> {
  const r = await c.call('session.hello', { protocol: 1, ...params });
  c.sessionId = r.sessionId;
  return r;
}

describe('a release or downgrade while an edit of the session commits', () => {
  for (const { method, params, waiter } of cases) {
    it(`${method} from another socket of the session takes effect once the commit has ended`, async () => {
      const proxy = await databaseProxy(await freshDatabase(inject('postgresUrl')));
      const s = await t.server({ db: proxy.url });
      const first = await t.raw(s);
      const a = await hello(first, { name: 'a' });
      const [f] = await addFunctions(first, ['f'] as const);
      const grant = (await first.call('lock.acquire', { functions: [f], mode: 'write' })).grants[0];
      const w = await t.agent(s, 'w');
      const queued = await w.call('lock.acquire', { functions: [f], mode: waiter, wait: true });
      expect(queued.status).toBe('queued');

      const hold = proxy.holdCommitOf('INSERT INTO revisions');
      void first.request('edit.apply', {
        ops: [{ op: 'addNode', function: f, node: { id: 1, op: 'const' } }],
        fences: { [f]: grant.fence },
      });
      await hold.arrived;
      // The session resumes on a second socket (the first is closed; its edit goes on committing).
      const second = await t.raw(s);
      await hello(second, { resume: { sessionId: a.sessionId, secret: a.resumeSecret } });
      const c = s.inspect();
      const touched = vi.spyOn(c.sessions, 'touch');
      const reply = second.request(method, params(f));
      // The call has run as far as it can: the session was touched right before its handler.
      await until('the call reached its handler', 10_000, async () =>
        touched.mock.calls.some(([id]) => id === a.sessionId) ? true : undefined,
      );
      const resource = { program: 'main', function: f };
      expect(c.locks.grantOf(a.sessionId, resource)).toMatchObject({ mode: 'write', fence: grant.fence });
      expect(c.locks.tickets(w.sessionId)).toHaveLength(1);

      hold.release();
      expect((await reply).error).toBeUndefined();
      const granted = await w.notification('lock.granted', (p) => p.ticket === queued.ticket);
      expect(granted.grants[0].fence).toBeGreaterThan(grant.fence);
      const body = (await w.call('function.get', { function: f })).function;
      expect(body.nodes.map((n: { id: number }) => n.id)).toEqual([1]);
    });
  }
});
