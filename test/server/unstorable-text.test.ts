import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { addFunctions, useServers } from '../helpers/server.ts';

// Rule 7 of docs/cluster.md: text a store cannot hold (U+0000, a lone surrogate) is refused at
// the protocol with -32602 naming the field, on both stores alike (this suite runs on SQLite and,
// in the "postgres" project, on PostgreSQL), so it never reaches a journal or a table.

const UNSTORABLE = ['a\u0000b', 'x\uD800', '\uDC00'];

type Field = { method: string; params: (bad: string) => Record<string, unknown>; path: Array<string | number> };

/** Every text field a method takes, with the params that carry `bad` there and its issue path. */
function fields(f: number): Field[] {
  const lock = { functions: [f], mode: 'write' };
  const attrs = (value: unknown) => ({ ops: [{ op: 'addNode', function: f, node: { id: 1, op: 'x', attrs: value } }] });
  return [
    { method: 'lock.acquire', params: (bad) => ({ ...lock, description: bad }), path: ['description'] },
    { method: 'lock.acquire', params: (bad) => ({ ...lock, key: bad }), path: ['key'] },
    { method: 'lock.cancel', params: (bad) => ({ ticket: bad }), path: ['ticket'] },
    { method: 'events.subscribe', params: (bad) => ({ topics: ['locks'], runId: bad }), path: ['runId'] },
    { method: 'checkpoint.create', params: (bad) => ({ name: bad }), path: ['name'] },
    { method: 'checkpoint.restore', params: (bad) => ({ name: bad }), path: ['name'] },
    { method: 'checkpoint.restore', params: (bad) => ({ name: 'cp', key: bad }), path: ['key'] },
    { method: 'history.undo', params: (bad) => ({ revision: 1, key: bad }), path: ['key'] },
    { method: 'history.redo', params: (bad) => ({ revision: 1, key: bad }), path: ['key'] },
    { method: 'edit.apply', params: (bad) => ({ ops: [{ op: 'addFunction', name: 'g' }], key: bad }), path: ['key'] },
    { method: 'edit.apply', params: (bad) => ({ ops: [{ op: 'addFunction', name: bad }] }), path: ['ops', 0, 'name'] },
    {
      method: 'edit.apply',
      params: (bad) => ({ ops: [{ op: 'addFunction', name: 'g', signature: { params: [bad] } }] }),
      path: ['ops', 0, 'signature', 'params', 0],
    },
    {
      method: 'edit.apply',
      params: (bad) => ({ ops: [{ op: 'addFunction', name: 'g', nodes: [{ id: 1, op: 'x', attrs: { [bad]: 1 } }] }] }),
      path: ['ops', 0, 'nodes', 0, 'attrs', 'BAD'],
    },
    {
      method: 'edit.apply',
      params: (bad) => ({ ops: [{ op: 'renameFunction', function: f, name: bad }] }),
      path: ['ops', 0, 'name'],
    },
    {
      method: 'edit.apply',
      params: (bad) => ({ ops: [{ op: 'removeFunction', function: bad }] }),
      path: ['ops', 0, 'function'],
    },
    {
      method: 'edit.apply',
      params: (bad) => ({ ops: [{ op: 'addNode', function: f, node: { id: 1, op: bad } }] }),
      path: ['ops', 0, 'node', 'op'],
    },
    {
      method: 'edit.apply',
      params: (bad) => ({ ops: [{ op: 'updateNode', function: f, node: { id: 1, op: bad } }] }),
      path: ['ops', 0, 'node', 'op'],
    },
    {
      method: 'edit.apply',
      params: (bad) => attrs({ k: [{ deep: bad }] }),
      path: ['ops', 0, 'node', 'attrs', 'k', 0, 'deep'],
    },
    { method: 'edit.apply', params: (bad) => attrs({ ok: 1, [bad]: 1 }), path: ['ops', 0, 'node', 'attrs', 'BAD'] },
  ];
}

describe('text no store can hold', () => {
  const t = useServers();

  it('is refused with -32602 naming the field, in every method that takes text', async () => {
    const s = await t.server();
    const agent = await t.agent(s, 'agent');
    const [f] = await addFunctions(agent, ['f']);
    for (const bad of UNSTORABLE) {
      for (const field of fields(f)) {
        const path = field.path.map((p) => (p === 'BAD' ? bad : p));
        const error = await agent.fail(field.method, field.params(bad));
        expect({
          method: field.method,
          code: error.code,
          path: (error.data?.issues as Array<{ path: unknown }> | undefined)?.[0]?.path,
        }).toEqual({ method: field.method, code: -32602, path });
      }
    }

    // session.hello, before any session: the display name and the resume secret.
    for (const bad of UNSTORABLE) {
      const raw = await t.raw(s);
      const named = await raw.fail('session.hello', { protocol: 1, name: bad });
      expect({ code: named.code, issues: named.data?.issues }).toMatchObject({
        code: -32602,
        issues: [{ path: ['name'] }],
      });
      const resumed = await raw.fail('session.hello', {
        protocol: 1,
        resume: { sessionId: randomUUID(), secret: bad },
      });
      expect({ code: resumed.code, issues: resumed.data?.issues }).toMatchObject({
        code: -32602,
        issues: [{ path: ['resume', 'secret'] }],
      });
      // A token is a credential, never stored: a malformed one is refused as one (and the socket closed).
      expect((await raw.fail('session.hello', { protocol: 1, token: bad })).data?.type).toBe('UNAUTHORIZED');
    }
  });

  it('leaves the cluster working: after a refused description, another session edits and a new one says hello', async () => {
    const s = await t.server();
    const holder = await t.agent(s, 'holder');
    const [f, g] = await addFunctions(holder, ['f', 'g']);
    const refused = await holder.fail('lock.acquire', { functions: [f], mode: 'write', description: 'mine\u0000' });
    expect(refused).toMatchObject({ code: -32602, data: { issues: [{ path: ['description'] }] } });
    // The same holder locks with a plain description; the refused one never reached the journal.
    expect((await holder.call('lock.acquire', { functions: [f], mode: 'write', description: 'mine' })).status).toBe(
      'granted',
    );

    const other = await t.agent(s, 'other');
    await other.call('lock.acquire', { functions: [g], mode: 'write' });
    const edit = await other.call('edit.apply', {
      ops: [{ op: 'addNode', function: g, node: { id: 1, op: 'const', attrs: { v: 'plain' } } }],
    });
    expect(edit.revision).toBe(2);
    const late = await t.agent(s, 'late');
    expect(late.sessionId).not.toBe('');
  });
});
