import { describe, expect, it } from 'vitest';
import { METHOD_NAMES } from '../../src/protocol/methods.ts';
import { addFns, next, useSdk } from '../helpers/sdk.ts';

describe('SDK: one typed method per protocol method', () => {
  const t = useSdk();

  it('has a namespaced method for every method but session.hello', async () => {
    const s = await t.server();
    const c = await t.client(s, 'a');
    for (const m of METHOD_NAMES) {
      const [ns, op] = m.split('.') as [string, string];
      const fn = (c as unknown as Record<string, Record<string, unknown> | undefined>)[ns]?.[op];
      expect(typeof fn, m).toBe(m === 'session.hello' ? 'undefined' : 'function');
    }
  });

  it('says hello and answers the session, agent and program methods', async () => {
    const s = await t.server();
    const c = await t.client(s, 'alice');
    expect(c.hello).toMatchObject({ name: 'alice', role: 'agent', protocol: 1 });
    expect(c.sessionId).toBe(c.hello?.sessionId);
    expect(Date.parse((await c.session.ping()).time)).not.toBeNaN();
    expect((await c.call('session.ping')).time).toEqual(expect.any(String));
    expect((await c.agent.list()).agents.map((a) => a.name)).toEqual(['alice']);

    expect(await c.program.create({ name: 'aux' })).toEqual({ name: 'aux', revision: 0 });
    expect((await c.program.list()).programs.map((p) => p.name).sort()).toEqual(['aux', 'main']);
    const [f] = await addFns(c, ['f'], 'aux');
    expect((await c.program.get({ program: 'aux' })).functions).toMatchObject([
      { id: f, name: 'f', version: 1, lock: null },
    ]);
    await c.withLocks({ program: 'aux', structure: true, mode: 'write' }, () => c.program.delete({ program: 'aux' }));
    expect((await c.program.list()).programs.map((p) => p.name)).toEqual(['main']);
  });

  it('locks, renews, downgrades, releases and reports lock status', async () => {
    const s = await t.server();
    const c = await t.client(s, 'a');
    const [f, g] = await addFns(c, ['f', 'g']);
    const acquired = await c.lock.acquire({ functions: [f!, g!], mode: 'write', description: 'work' });
    expect(acquired.status).toBe('granted');
    expect(c.held().map((x) => x.resource)).toEqual([
      { program: 'main', function: f },
      { program: 'main', function: g },
    ]);
    const status = await c.lock.status({});
    expect(status.resources.map((r) => r.holders[0]?.description)).toEqual(['work', 'work']);
    const renewed = await c.lock.renew({ functions: [f!], ttlMs: 60_000 });
    expect(renewed.grants[0]?.fence).toBe(acquired.status === 'granted' ? acquired.grants[0]?.fence : -1);
    expect((await c.lock.downgrade({ functions: [f!] })).grants[0]?.mode).toBe('read');
    expect(c.held().find((x) => 'function' in x.resource && x.resource.function === f)?.mode).toBe('read');
    expect((await c.lock.release({ functions: [f!] })).released).toEqual([{ program: 'main', function: f }]);
    expect((await c.lock.releaseAll()).released).toEqual([{ program: 'main', function: g }]);
    expect(c.held()).toEqual([]);
  });

  it('queues with lock.acquire and withdraws with lock.cancel', async () => {
    const s = await t.server();
    const a = await t.client(s, 'a');
    const b = await t.client(s, 'b');
    const [f] = await addFns(a, ['f']);
    await a.lock.acquire({ functions: [f!], mode: 'write' });
    const q = await b.lock.acquire({ functions: [f!], mode: 'write', wait: true });
    if (q.status !== 'queued') throw new Error('expected a queued ticket');
    expect(q.positions).toEqual([{ resource: { program: 'main', function: f }, position: 1 }]);
    expect(await b.lock.cancel({ ticket: q.ticket })).toEqual({ ticket: q.ticket, cancelled: true });
    expect((await a.lock.status({})).resources[0]?.queue).toEqual([]);
  });

  it('reads, watches and edits functions, and pushes function.changed', async () => {
    const s = await t.server();
    const a = await t.client(s, 'a');
    const b = await t.client(s, 'b');
    const [f] = await addFns(a, ['f']);
    expect(await b.function.watch({ functions: [f!] })).toEqual({ program: 'main', watching: [f] });
    const before = await a.function.get({ function: f! });
    expect(before).toMatchObject({ function: { id: f, name: 'f', nodes: [], edges: [] }, version: 1 });
    const changed = next(b, 'function.changed');
    const r = await a.withLocks({ functions: [f!], mode: 'write' }, (lock) =>
      a.edit.apply({
        ops: [{ op: 'addNode', function: f!, node: { id: 1, op: 'const' } }],
        expectedHashes: { [f!]: before.hash },
        fences: lock.fences,
      }),
    );
    expect(r.functions[0]).toMatchObject({ id: f, version: 2 });
    const [pushed] = await changed;
    expect(pushed).toMatchObject({ program: 'main', function: f, version: 2, revision: r.revision, by: { name: 'a' } });
    expect(await b.function.unwatch({ functions: [f!] })).toEqual({ program: 'main', watching: [] });
  });

  it('lists, diffs, undoes and redoes history, and creates, lists and restores checkpoints', async () => {
    const s = await t.server();
    const c = await t.client(s, 'a');
    const [f] = await addFns(c, ['f']);
    const cp = await c.checkpoint.create({ name: 'empty' });
    expect(cp).toMatchObject({ name: 'empty', revision: 1 });
    expect((await c.checkpoint.list({})).checkpoints.map((x) => x.name)).toEqual(['empty']);
    await c.withLocks({ functions: [f!], mode: 'write' }, async () => {
      const edit = await c.edit.apply({ ops: [{ op: 'addNode', function: f!, node: { id: 1, op: 'const' } }] });
      expect((await c.history.list({})).revisions.map((r) => r.kind)).toEqual(['edit', 'edit']);
      expect((await c.history.diff({ from: 1, to: edit.revision })).functions).toMatchObject([
        { id: f, status: 'modified' },
      ]);
      const undo = await c.history.undo({ revision: edit.revision });
      const redo = await c.history.redo({ revision: undo.revision });
      expect(redo.functions[0]?.hash).toBe(edit.functions[0]?.hash);
      const restored = await c.checkpoint.restore({ name: 'empty' });
      expect(restored.revision).toBe(redo.revision + 1);
    });
    expect((await c.function.get({ function: f! })).function.nodes).toEqual([]);
  });

  it('subscribes to and unsubscribes from event topics', async () => {
    const s = await t.server();
    const c = await t.client(s, 'a');
    const joined = next(c, 'event', (e) => e.topic === 'agents' && e.type === 'joined');
    const sub = await c.events.subscribe({ topics: ['agents'] });
    expect(sub).toMatchObject({ topics: ['agents'], truncated: false });
    await t.client(s, 'b');
    const [event] = await joined;
    expect(event.data).toMatchObject({ name: 'b' });
    expect(await c.events.unsubscribe({})).toEqual({ topics: [] });
  });
});
