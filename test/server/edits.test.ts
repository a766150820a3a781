import { describe, expect, it } from 'vitest';
import { addFunctions, useServers } from '../helpers/server.ts';

const node = (f: number | string, id: number, op = 'const', attrs?: Record<string, unknown>) => ({
  op: 'addNode',
  function: f,
  node: { id, op, ...(attrs === undefined ? {} : { attrs }) },
});

describe('edits over the wire', () => {
  const t = useServers();

  it('applies an edit under a write lock, with fences and hashes, and tells watchers after the reply', async () => {
    const s = await t.server();
    const [a, w] = [await t.agent(s, 'a'), await t.agent(s, 'w', 'observer')];
    const [f] = await addFunctions(a, ['f']);
    await w.call('function.watch', { functions: [f] });
    const before = await a.call('function.get', { function: f });
    expect(before).toMatchObject({ function: { id: f, name: 'f', nodes: [], edges: [] }, version: 1 });

    const g = await a.call('lock.acquire', { functions: [f], mode: 'write' });
    const r = await a.call('edit.apply', {
      ops: [
        node(f, 1),
        node(f, 2, 'add'),
        { op: 'addEdge', function: f, edge: { id: 1, from: { node: 1, port: 0 }, to: { node: 2, port: 0 } } },
      ],
      expectedHashes: { [f]: before.hash },
      fences: { [f]: g.grants[0].fence },
    });
    expect(r.revision).toBe(2);
    expect(r.functions).toEqual([{ id: f, name: 'f', hash: expect.stringMatching(/^[0-9a-f]{64}$/), version: 2 }]);
    const changed = await w.notification('function.changed');
    expect(changed).toEqual({
      program: 'main',
      function: f,
      hash: r.functions[0].hash,
      version: 2,
      revision: 2,
      by: { sessionId: a.sessionId, name: 'a' },
    });
    const after = await a.call('function.get', { function: f });
    expect(after.hash).toBe(r.functions[0].hash);
    expect(after.function.nodes.map((n: any) => n.id)).toEqual([1, 2]);
  });

  it('checks locks, then fences, then hashes, then the ops', async () => {
    const s = await t.server();
    const [a, b] = [await t.agent(s, 'a'), await t.agent(s, 'b')];
    const [f] = await addFunctions(a, ['f']);
    const base = await a.call('function.get', { function: f });

    const noLock = await a.fail('edit.apply', { ops: [node(f, 1)] });
    expect(noLock).toMatchObject({
      code: 428,
      data: { type: 'LOCK_REQUIRED', missing: [{ program: 'main', function: f }] },
    });

    const g = await a.call('lock.acquire', { functions: [f], mode: 'write' });
    const stale = await a.fail('edit.apply', { ops: [node(f, 1)], fences: { [f]: g.grants[0].fence - 1 } });
    expect(stale).toMatchObject({ code: 409, data: { type: 'STALE_FENCE' } });

    await a.call('edit.apply', { ops: [node(f, 1, 'const', { value: 1 })] });
    await a.call('edit.apply', { ops: [node(f, 2)] });
    await a.call('edit.apply', { ops: [{ op: 'updateNode', function: f, node: { id: 1, attrs: { value: 2 } } }] });
    const conflict = await a.fail('edit.apply', { ops: [node(f, 3)], expectedHashes: { [f]: base.hash } });
    expect(conflict.code).toBe(409);
    expect(conflict.data!.type).toBe('CONFLICT');
    const [detail] = conflict.data!.conflicts as any[];
    expect(detail.functionId).toBe(f);
    expect(detail.expectedHash).toBe(base.hash);
    expect(detail.diff.nodes.added.map((n: any) => n.id)).toEqual([1, 2]);
    expect(detail.diff.nodes.added[0].attrs).toEqual({ value: 2 });

    const invalid = await a.fail('edit.apply', { ops: [node(f, 9), node(f, 9)] });
    expect(invalid).toMatchObject({ code: 422, data: { type: 'INVALID_EDIT', opIndex: 1 } });
    expect((await a.call('function.get', { function: f })).function.nodes.map((n: any) => n.id)).toEqual([1, 2]);

    // A read lock does not allow an edit.
    await b.call('lock.acquire', { functions: [f], mode: 'read', wait: true });
    const forbidden = await (await t.agent(s, 'o', 'observer')).fail('edit.apply', { ops: [node(f, 4)] });
    expect(forbidden.data!.type).toBe('FORBIDDEN');
  });

  it('needs the structure lock to add, and structure plus function to remove; removal cancels waiters', async () => {
    const s = await t.server();
    const [a, b, w] = [await t.agent(s, 'a'), await t.agent(s, 'b'), await t.agent(s, 'w')];
    const [f] = await addFunctions(a, ['f']);
    expect((await a.fail('edit.apply', { ops: [{ op: 'addFunction', name: 'g' }] })).data!.missing).toEqual([
      { program: 'main', structure: true },
    ]);

    await a.call('lock.acquire', { structure: true, mode: 'write' });
    const miss = await a.fail('edit.apply', { ops: [{ op: 'removeFunction', function: f }] });
    expect(miss.data!.missing).toEqual([{ program: 'main', function: f }]);

    await a.call('lock.acquire', { functions: [f], mode: 'write' });
    const q = await b.call('lock.acquire', { functions: [f], mode: 'read', wait: true });
    await w.call('function.watch', { functions: [f] });
    const r = await a.call('edit.apply', {
      ops: [
        { op: 'removeFunction', function: f },
        { op: 'addFunction', name: 'h' },
      ],
    });
    expect(r.removed).toEqual([f]);
    expect(r.created).toEqual([{ name: 'h', id: expect.any(Number) }]);
    expect(r.created[0].id).toBeGreaterThan(f);
    expect(await b.notification('lock.cancelled')).toEqual({ ticket: q.ticket, reason: 'removed' });
    expect(await w.notification('function.changed')).toMatchObject({ function: f, hash: null, removed: true });
    expect((await a.fail('function.get', { function: f })).data!.type).toBe('NOT_FOUND');
  });

  it('refuses ops on a function that does not exist as INVALID_EDIT naming the op, not LOCK_REQUIRED', async () => {
    const s = await t.server();
    const a = await t.agent(s, 'a');
    const [f] = await addFunctions(a, ['f']);
    await a.call('lock.acquire', { functions: [f], mode: 'write' });
    const err = await a.fail('edit.apply', { ops: [node(f, 1), node(999, 1)] });
    expect(err).toMatchObject({ code: 422, data: { type: 'INVALID_EDIT', opIndex: 1 } });
  });

  it('shows in program.get a function nobody holds but a batch awaits', async () => {
    const s = await t.server();
    const [a, b] = [await t.agent(s, 'a'), await t.agent(s, 'b')];
    const [f, g] = await addFunctions(a, ['f', 'g']);
    await a.call('lock.acquire', { functions: [g], mode: 'write' });
    await b.call('lock.acquire', { functions: [f, g], mode: 'write', wait: true });
    const { functions } = await a.call('program.get', {});
    expect(functions.find((x: any) => x.id === f).lock).toEqual({ mode: null, holders: [], queued: 1 });
    expect(functions.find((x: any) => x.id === g).lock).toEqual({
      mode: 'write',
      holders: [{ sessionId: a.sessionId, name: 'a' }],
      queued: 1,
    });
  });

  it('commits nothing for an undo or restore that changes nothing', async () => {
    const s = await t.server();
    const a = await t.agent(s, 'a');
    await addFunctions(a, ['f']);
    await a.call('checkpoint.create', { name: 'now' });
    const before = (await a.call('program.get', {})).revision;
    expect(await a.call('checkpoint.restore', { name: 'now' })).toEqual({
      revision: before,
      functions: [],
      created: [],
      removed: [],
    });
    expect((await a.call('history.list', {})).revisions).toHaveLength(before);
  });

  it('commits nothing for an undo whose effect later edits already reverted', async () => {
    const s = await t.server();
    const [a, o] = [await t.agent(s, 'a'), await t.agent(s, 'o', 'observer')];
    const [f] = await addFunctions(a, ['f']);
    await a.call('lock.acquire', { functions: [f], mode: 'write' });
    await a.call('edit.apply', { ops: [node(f, 1, 'const', { value: 1 })] });
    const changed = await a.call('edit.apply', {
      ops: [{ op: 'updateNode', function: f, node: { id: 1, attrs: { value: 2 } } }],
    });
    const back = await a.call('edit.apply', {
      ops: [{ op: 'updateNode', function: f, node: { id: 1, attrs: { value: 1 } } }],
    });
    await o.call('events.subscribe', { topics: ['edits'] });
    expect(await a.call('history.undo', { revision: changed.revision })).toEqual({
      revision: back.revision,
      functions: [],
      created: [],
      removed: [],
    });
    const { revisions } = await a.call('history.list', {});
    expect(revisions.map((r: any) => r.kind)).toEqual(['edit', 'edit', 'edit', 'edit']);
    // Nothing was committed, so nothing is announced: the next event is the next real edit.
    const next = await a.call('edit.apply', { ops: [node(f, 2)] });
    expect((await o.notification('event')).data).toMatchObject({ revision: next.revision, kind: 'edit' });
  });

  it('refuses a taken function name as INVALID_EDIT naming the op; a taken program or checkpoint name is CONFLICT', async () => {
    const s = await t.server();
    const a = await t.agent(s, 'a');
    const [f] = await addFunctions(a, ['f', 'g']);
    await a.call('lock.acquire', { structure: true, functions: [f], mode: 'write' });
    const added = await a.fail('edit.apply', {
      ops: [
        { op: 'addFunction', name: 'h' },
        { op: 'addFunction', name: 'g' },
      ],
    });
    expect(added).toMatchObject({ code: 422, data: { type: 'INVALID_EDIT', opIndex: 1, retryable: false } });
    expect(added.data!.reason).toMatch(/named "g" already exists/);
    const renamed = await a.fail('edit.apply', { ops: [{ op: 'renameFunction', function: f, name: 'g' }] });
    expect(renamed).toMatchObject({ code: 422, data: { type: 'INVALID_EDIT', opIndex: 0 } });
    expect(renamed.data!.reason).toMatch(/named "g" already exists/);

    expect(await a.fail('program.create', { name: 'main' })).toMatchObject({
      code: 409,
      data: { type: 'CONFLICT', program: 'main', retryable: false },
    });
    await a.call('checkpoint.create', { name: 'cp' });
    expect(await a.fail('checkpoint.create', { name: 'cp' })).toMatchObject({
      code: 409,
      data: { type: 'CONFLICT', program: 'main', checkpoint: 'cp' },
    });

    // INVALID_EDIT outside an op names no opIndex.
    const redo = await a.fail('history.redo', { revision: 1 });
    expect(redo).toMatchObject({ code: 422, data: { type: 'INVALID_EDIT', program: 'main', revision: 1 } });
    expect(redo.data).not.toHaveProperty('opIndex');
    const bigKey = await a.fail('edit.apply', {
      ops: [node(f, 1)],
      expectedHashes: { '9007199254740993': '0'.repeat(64) },
    });
    expect(bigKey).toMatchObject({ code: 422, data: { type: 'INVALID_EDIT' } });
    expect(bigKey.data).not.toHaveProperty('opIndex');
  });

  it('adds nodes to a function created in the same edit by its name', async () => {
    const s = await t.server();
    const a = await t.agent(s, 'a');
    await a.call('lock.acquire', { structure: true, mode: 'write' });
    const r = await a.call('edit.apply', {
      ops: [{ op: 'addFunction', name: 'fresh', signature: { params: ['x'] } }, node('fresh', 1)],
    });
    const got = await a.call('function.get', { function: r.created[0].id });
    expect(got.function).toEqual({
      id: r.created[0].id,
      name: 'fresh',
      signature: { params: ['x'] },
      nodes: [{ id: 1, op: 'const', attrs: {} }],
      edges: [],
    });
  });

  it('undoes, redoes, checkpoints and restores through the same checks', async () => {
    const s = await t.server();
    const a = await t.agent(s, 'a');
    const [f] = await addFunctions(a, ['f']);
    await a.call('checkpoint.create', { name: 'empty' });
    await a.call('lock.acquire', { functions: [f], mode: 'write' });
    const e1 = await a.call('edit.apply', { ops: [node(f, 1)] });
    const e2 = await a.call('edit.apply', { ops: [node(f, 2)] });
    const u = await a.call('history.undo', { revision: e2.revision });
    expect(u.revision).toBe(e2.revision + 1);
    expect((await a.call('function.get', { function: f })).function.nodes.map((n: any) => n.id)).toEqual([1]);
    await a.call('history.redo', { revision: u.revision });
    expect((await a.call('function.get', { function: f })).function.nodes.map((n: any) => n.id)).toEqual([1, 2]);
    await a.call('lock.release', { functions: [f] });
    expect((await a.fail('checkpoint.restore', { name: 'empty' })).data).toMatchObject({
      type: 'LOCK_REQUIRED',
      missing: [{ program: 'main', function: f }],
    });
    expect((await a.fail('history.undo', { revision: e1.revision })).data!.type).toBe('LOCK_REQUIRED');
    await a.call('lock.acquire', { functions: [f], mode: 'write' });
    await a.call('checkpoint.restore', { name: 'empty' });
    expect((await a.call('function.get', { function: f })).function.nodes).toEqual([]);

    const { revisions } = await a.call('history.list', {});
    expect(revisions.map((r: any) => r.kind)).toEqual(['edit', 'edit', 'edit', 'undo', 'redo', 'restore']);
    const diff = await a.call('history.diff', { from: e1.revision - 1, to: e2.revision });
    expect(diff.functions[0]).toMatchObject({ id: f, status: 'modified' });
    expect(diff.functions[0].diff.nodes.added.map((n: any) => n.id)).toEqual([1, 2]);
    const { checkpoints } = await a.call('checkpoint.list', {});
    expect(checkpoints.map((c: any) => c.name)).toEqual(['empty']);
    expect((await a.fail('history.undo', { revision: 999 })).data!.type).toBe('NOT_FOUND');
  });

  it('creates, lists, shows and deletes programs', async () => {
    const s = await t.server();
    const [a, b] = [await t.agent(s, 'a'), await t.agent(s, 'b')];
    expect(await a.call('program.create', { name: 'aux' })).toEqual({ name: 'aux', revision: 0 });
    const [f] = await addFunctions(a, ['f'], 'aux');
    const { programs } = await a.call('program.list');
    expect(programs.map((p: any) => p.name).sort()).toEqual(['aux', 'main']);

    await b.call('lock.acquire', { program: 'aux', functions: [f], mode: 'read' });
    const overview = await a.call('program.get', { program: 'aux' });
    expect(overview.functions).toEqual([
      {
        id: f,
        name: 'f',
        hash: expect.any(String),
        version: 1,
        lock: { mode: 'read', holders: [{ sessionId: b.sessionId, name: 'b' }], queued: 0 },
      },
    ]);

    expect((await a.fail('program.delete', { program: 'aux' })).data!.type).toBe('LOCK_REQUIRED');
    await a.call('lock.acquire', { program: 'aux', structure: true, mode: 'write' });
    const denied = await a.fail('program.delete', { program: 'aux' });
    expect(denied.data).toMatchObject({
      type: 'LOCK_DENIED',
      retryAfterMs: expect.any(Number),
      blockers: [
        {
          resource: { program: 'aux', function: f },
          holders: [{ sessionId: b.sessionId, name: 'b', mode: 'read', expiresAt: expect.any(String) }],
          queueLength: 0,
        },
      ],
    });
    await b.call('lock.releaseAll');
    await b.call('function.watch', { program: 'aux', functions: [f] });
    expect(await a.call('program.delete', { program: 'aux' })).toEqual({ deleted: 'aux' });
    expect(await b.notification('function.changed')).toMatchObject({
      program: 'aux',
      function: f,
      hash: null,
      version: 1,
      removed: true,
    });
    expect((await b.call('function.unwatch', { program: 'aux', functions: [f] })).watching).toEqual([]);
    expect((await a.fail('program.get', { program: 'aux' })).data!.type).toBe('NOT_FOUND');
    expect((await a.call('lock.status', {})).resources).toEqual([]);
  });
});
