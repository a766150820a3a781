import { describe, expect, it } from 'vitest';
import { functionHash } from '../../src/service/hash.ts';
import { alice, chain, edit, expectError, expectInvalid, memoryService } from '../helpers/service.ts';

describe('addFunction', () => {
  it('creates a function with a server-assigned id, version 1, and a new revision', async () => {
    const svc = await memoryService();
    const result = await edit(svc, [{ op: 'addFunction', name: 'f', signature: { params: ['i64'] } }]);
    expect(result.revision).toBe(1);
    expect(result.created).toEqual([{ name: 'f', id: 1 }]);
    expect(result.removed).toEqual([]);
    const got = svc.getFunction('main', 1);
    expect(got.function).toEqual({ id: 1, name: 'f', signature: { params: ['i64'] }, nodes: [], edges: [] });
    expect(got.version).toBe(1);
    expect(got.hash).toBe(functionHash(got.function));
    expect(result.functions).toEqual([{ id: 1, name: 'f', hash: got.hash, version: 1 }]);
    expect(Math.abs(result.at - Date.now())).toBeLessThan(5000);
  });

  it('never reuses an id, not even of a removed function', async () => {
    const svc = await memoryService();
    await edit(svc, [
      { op: 'addFunction', name: 'a' },
      { op: 'addFunction', name: 'b' },
    ]);
    await edit(svc, [{ op: 'removeFunction', function: 2 }]);
    expect((await edit(svc, [{ op: 'addFunction', name: 'b' }])).created).toEqual([{ name: 'b', id: 3 }]);
  });

  it('rejects a name that exists, or that an earlier op of the same edit took', async () => {
    const svc = await memoryService();
    await edit(svc, [{ op: 'addFunction', name: 'f' }]);
    await expectInvalid(() => edit(svc, [{ op: 'addFunction', name: 'f' }]), 0, /named "f" already exists/);
    await expectInvalid(
      () =>
        edit(svc, [
          { op: 'addFunction', name: 'g' },
          { op: 'addFunction', name: 'g' },
        ]),
      1,
      /named "g"/,
    );
  });

  it('takes the whole body at once: nodes, then edges between them; the same hash as op by op', async () => {
    const svc = await memoryService();
    const nodes = [
      { id: 2, op: 'add', attrs: { k: 1 } },
      { id: 1, op: 'const' },
    ];
    const edges = [{ id: 1, from: { node: 1, port: 0 }, to: { node: 2, port: 1 } }];
    const whole = await edit(svc, [{ op: 'addFunction', name: 'f', signature: { p: 1 }, nodes, edges }]);
    const stepwise = await edit(svc, [
      { op: 'addFunction', name: 'g', signature: { p: 1 } },
      ...nodes.map((node) => ({ op: 'addNode' as const, function: 'g', node })),
      ...edges.map((edge) => ({ op: 'addEdge' as const, function: 'g', edge })),
      { op: 'renameFunction', function: 'g', name: 'f2' },
    ]);
    const f = svc.getFunction('main', 1);
    expect(f.function).toEqual({
      id: 1,
      name: 'f',
      signature: { p: 1 },
      nodes: [{ id: 1, op: 'const', attrs: {} }, nodes[0]],
      edges,
    });
    expect(whole.functions[0]?.hash).toBe(functionHash({ ...f.function, name: 'f' }));
    expect(stepwise.functions[0]?.hash).toBe(functionHash({ ...f.function, name: 'f2' }));
    expect(f.version).toBe(1);
  });

  it('refuses a body with a duplicate node or an edge to a node it does not have', async () => {
    const svc = await memoryService();
    const node = { id: 1, op: 'const' };
    await expectInvalid(
      () => edit(svc, [{ op: 'addFunction', name: 'f', nodes: [node, node] }]),
      0,
      /duplicate node 1 in function 1 \("f"\)/,
    );
    await expectInvalid(
      () =>
        edit(svc, [
          {
            op: 'addFunction',
            name: 'f',
            nodes: [node],
            edges: [{ id: 1, from: { node: 1, port: 0 }, to: { node: 9, port: 0 } }],
          },
        ]),
      0,
      /edge 1: "to" node 9 is not a node of function 1 \("f"\)/,
    );
    expect(svc.hasFunction('main', 1)).toBe(false);
  });

  it('stores a null signature as absent (they hash alike)', async () => {
    const svc = await memoryService();
    await edit(svc, [{ op: 'addFunction', name: 'f', signature: null }]);
    expect(svc.getFunction('main', 1).function).toEqual({ id: 1, name: 'f', nodes: [], edges: [] });
  });
});

describe('removeFunction', () => {
  it('removes the function and reports it', async () => {
    const svc = await memoryService();
    const id = await chain(svc);
    const result = await edit(svc, [{ op: 'removeFunction', function: id }]);
    expect(result).toMatchObject({ revision: 2, functions: [], created: [], removed: [id] });
    expect(svc.hasFunction('main', id)).toBe(false);
    await expectError(() => svc.getFunction('main', id), 'NOT_FOUND');
  });

  it('rejects an unknown function, and a second removal in the same edit', async () => {
    const svc = await memoryService();
    await chain(svc);
    await expectInvalid(() => edit(svc, [{ op: 'removeFunction', function: 9 }]), 0, /unknown function 9/);
    await expectInvalid(
      () =>
        edit(svc, [
          { op: 'removeFunction', function: 1 },
          { op: 'removeFunction', function: 1 },
        ]),
      1,
      /unknown function 1/,
    );
  });

  it('frees the name for a later op of the same edit', async () => {
    const svc = await memoryService();
    await chain(svc);
    const result = await edit(svc, [
      { op: 'removeFunction', function: 1 },
      { op: 'addFunction', name: 'f' },
    ]);
    expect(result.created).toEqual([{ name: 'f', id: 2 }]);
    expect(result.removed).toEqual([1]);
  });
});

describe('renameFunction', () => {
  it('renames, which changes the hash and bumps the version', async () => {
    const svc = await memoryService();
    const id = await chain(svc);
    const before = svc.getFunction('main', id);
    const result = await edit(svc, [{ op: 'renameFunction', function: id, name: 'g' }]);
    const after = svc.getFunction('main', id);
    expect(after.function.name).toBe('g');
    expect(after.hash).not.toBe(before.hash);
    expect(after.version).toBe(2);
    expect(result.functions).toEqual([{ id, name: 'g', hash: after.hash, version: 2 }]);
    // The old name is free again, the new one is taken.
    expect((await edit(svc, [{ op: 'addFunction', name: 'f' }])).created).toEqual([{ name: 'f', id: 2 }]);
    await expectInvalid(() => edit(svc, [{ op: 'addFunction', name: 'g' }]), 0, /already exists/);
  });

  it('rejects a name another function has, and an unknown function', async () => {
    const svc = await memoryService();
    await chain(svc, 'f');
    await chain(svc, 'g');
    await expectInvalid(
      () => edit(svc, [{ op: 'renameFunction', function: 1, name: 'g' }]),
      0,
      /named "g" already exists \(id 2\)/,
    );
    await expectInvalid(() => edit(svc, [{ op: 'renameFunction', function: 7, name: 'h' }]), 0, /unknown function 7/);
  });

  it('treats a rename to the same name as no change', async () => {
    const svc = await memoryService();
    await chain(svc);
    const result = await edit(svc, [{ op: 'renameFunction', function: 1, name: 'f' }]);
    expect(result.revision).toBe(2);
    expect(result.functions).toEqual([]);
    expect(svc.getFunction('main', 1).version).toBe(1);
  });

  it('can swap two names within one edit through a third name', async () => {
    const svc = await memoryService();
    await chain(svc, 'a');
    await chain(svc, 'b');
    await edit(svc, [
      { op: 'renameFunction', function: 1, name: 'tmp' },
      { op: 'renameFunction', function: 2, name: 'a' },
      { op: 'renameFunction', function: 1, name: 'b' },
    ]);
    expect(svc.getProgram('main').functions.map((f) => [f.id, f.name])).toEqual([
      [1, 'b'],
      [2, 'a'],
    ]);
  });
});

describe('addNode', () => {
  it('adds a node, attrs defaulting to {}', async () => {
    const svc = await memoryService();
    await chain(svc);
    await edit(svc, [{ op: 'addNode', function: 1, node: { id: 0, op: 'nop' } }]);
    expect(svc.getFunction('main', 1).function.nodes[0]).toEqual({ id: 0, op: 'nop', attrs: {} });
    expect(svc.getFunction('main', 1).version).toBe(2);
  });

  it('rejects a duplicate node id and an unknown function', async () => {
    const svc = await memoryService();
    await chain(svc);
    await expectInvalid(
      () => edit(svc, [{ op: 'addNode', function: 1, node: { id: 2, op: 'x' } }]),
      0,
      /node 2 already exists in function 1/,
    );
    await expectInvalid(
      () => edit(svc, [{ op: 'addNode', function: 5, node: { id: 2, op: 'x' } }]),
      0,
      /unknown function 5/,
    );
    await expectInvalid(
      () =>
        edit(svc, [
          { op: 'addNode', function: 1, node: { id: 9, op: 'x' } },
          { op: 'addNode', function: 1, node: { id: 9, op: 'y' } },
        ]),
      1,
      /node 9 already exists/,
    );
  });
});

describe('updateNode', () => {
  it('replaces the op, or all attrs, keeping what is not given', async () => {
    const svc = await memoryService();
    await chain(svc);
    await edit(svc, [{ op: 'updateNode', function: 1, node: { id: 1, op: 'literal' } }]);
    expect(svc.getFunction('main', 1).function.nodes[0]).toEqual({ id: 1, op: 'literal', attrs: { value: 1 } });
    await edit(svc, [{ op: 'updateNode', function: 1, node: { id: 1, attrs: { other: true } } }]);
    expect(svc.getFunction('main', 1).function.nodes[0]).toEqual({ id: 1, op: 'literal', attrs: { other: true } });
    expect(svc.getFunction('main', 1).version).toBe(3);
  });

  it('commits a revision but no new version when nothing changes', async () => {
    const svc = await memoryService();
    await chain(svc);
    const before = svc.getFunction('main', 1);
    const result = await edit(svc, [
      { op: 'updateNode', function: 1, node: { id: 1, op: 'const', attrs: { value: 1 } } },
    ]);
    expect(result.revision).toBe(2);
    expect(result.functions).toEqual([]);
    expect(svc.getFunction('main', 1)).toEqual(before);
    expect((await svc.history('main')).map((r) => [r.revision, r.functions])).toEqual([
      [1, [1]],
      [2, []],
    ]);
  });

  it('rejects an unknown node and an update naming nothing to change', async () => {
    const svc = await memoryService();
    await chain(svc);
    await expectInvalid(
      () => edit(svc, [{ op: 'updateNode', function: 1, node: { id: 42, op: 'x' } }]),
      0,
      /unknown node 42/,
    );
    await expectInvalid(() => edit(svc, [{ op: 'updateNode', function: 1, node: { id: 1 } }]), 0, /needs op or attrs/);
  });
});

describe('removeNode', () => {
  it('removes the node with every edge into or out of it', async () => {
    const svc = await memoryService();
    await chain(svc);
    await edit(svc, [
      { op: 'addEdge', function: 1, edge: { id: 3, from: { node: 1, port: 1 }, to: { node: 3, port: 1 } } },
    ]);
    await edit(svc, [{ op: 'removeNode', function: 1, node: 2 }]);
    const fn = svc.getFunction('main', 1).function;
    expect(fn.nodes.map((n) => n.id)).toEqual([1, 3]);
    expect(fn.edges.map((e) => e.id)).toEqual([3]);
  });

  it('rejects an unknown node, including one removed earlier in the edit', async () => {
    const svc = await memoryService();
    await chain(svc);
    await expectInvalid(() => edit(svc, [{ op: 'removeNode', function: 1, node: 8 }]), 0, /unknown node 8/);
    await expectInvalid(
      () =>
        edit(svc, [
          { op: 'removeNode', function: 1, node: 1 },
          { op: 'removeNode', function: 1, node: 1 },
        ]),
      1,
      /unknown node 1/,
    );
  });
});

describe('addEdge', () => {
  it('adds an edge, self-loops included', async () => {
    const svc = await memoryService();
    await chain(svc);
    await edit(svc, [
      { op: 'addEdge', function: 1, edge: { id: 7, from: { node: 2, port: 3 }, to: { node: 2, port: 4 } } },
    ]);
    expect(svc.getFunction('main', 1).function.edges.at(-1)).toEqual({
      id: 7,
      from: { node: 2, port: 3 },
      to: { node: 2, port: 4 },
    });
  });

  it('rejects a duplicate edge id and ends that are not nodes of the function', async () => {
    const svc = await memoryService();
    await chain(svc, 'f');
    await edit(svc, [
      { op: 'addFunction', name: 'g' },
      { op: 'addNode', function: 'g', node: { id: 50, op: 'x' } },
    ]);
    const e = (id: number, from: number, to: number) => ({
      id,
      from: { node: from, port: 0 },
      to: { node: to, port: 0 },
    });
    await expectInvalid(
      () => edit(svc, [{ op: 'addEdge', function: 1, edge: e(1, 1, 3) }]),
      0,
      /edge 1 already exists/,
    );
    await expectInvalid(
      () => edit(svc, [{ op: 'addEdge', function: 1, edge: e(5, 9, 3) }]),
      0,
      /"from" node 9 is not a node of function 1/,
    );
    await expectInvalid(
      () => edit(svc, [{ op: 'addEdge', function: 1, edge: e(5, 1, 9) }]),
      0,
      /"to" node 9 is not a node of function 1/,
    );
    // Node 50 exists, but in another function.
    await expectInvalid(
      () => edit(svc, [{ op: 'addEdge', function: 1, edge: e(5, 1, 50) }]),
      0,
      /"to" node 50 is not a node of function 1/,
    );
    // A node removed earlier in the same edit is gone for later ops.
    await expectInvalid(
      () =>
        edit(svc, [
          { op: 'removeNode', function: 1, node: 3 },
          { op: 'addEdge', function: 1, edge: e(5, 1, 3) },
        ]),
      1,
      /node 3/,
    );
  });
});

describe('removeEdge', () => {
  it('removes an edge and rejects an unknown one', async () => {
    const svc = await memoryService();
    await chain(svc);
    await edit(svc, [{ op: 'removeEdge', function: 1, edge: 1 }]);
    expect(svc.getFunction('main', 1).function.edges.map((e) => e.id)).toEqual([2]);
    await expectInvalid(() => edit(svc, [{ op: 'removeEdge', function: 1, edge: 1 }]), 0, /unknown edge 1/);
  });
});

describe('references to functions added by the same edit', () => {
  it('resolve by name, follow a rename, and are listed in created', async () => {
    const svc = await memoryService();
    const result = await edit(svc, [
      { op: 'addFunction', name: 'a' },
      { op: 'addFunction', name: 'b' },
      { op: 'addNode', function: 'a', node: { id: 1, op: 'x' } },
      { op: 'renameFunction', function: 'b', name: 'c' },
      { op: 'addNode', function: 'c', node: { id: 1, op: 'y' } },
    ]);
    expect(result.created).toEqual([
      { name: 'a', id: 1 },
      { name: 'c', id: 2 },
    ]);
    expect(result.functions.map((f) => [f.id, f.name, f.version])).toEqual([
      [1, 'a', 1],
      [2, 'c', 1],
    ]);
    expect(svc.getFunction('main', 2).function.nodes).toEqual([{ id: 1, op: 'y', attrs: {} }]);
  });

  it('reject a name not added earlier in the edit, even of an existing function', async () => {
    const svc = await memoryService();
    await chain(svc, 'f');
    await expectInvalid(
      () => edit(svc, [{ op: 'addNode', function: 'f', node: { id: 9, op: 'x' } }]),
      0,
      /"f" does not name a function added earlier/,
    );
    await expectInvalid(
      () =>
        edit(svc, [
          { op: 'addNode', function: 'g', node: { id: 1, op: 'x' } },
          { op: 'addFunction', name: 'g' },
        ]),
      0,
      /"g" does not name a function added earlier/,
    );
    await expectInvalid(
      () =>
        edit(svc, [
          { op: 'addFunction', name: 'g' },
          { op: 'renameFunction', function: 'g', name: 'h' },
          { op: 'removeFunction', function: 'g' },
        ]),
      2,
      /"g"/,
    );
  });

  it('leave no function behind when added and removed in one edit, but the id stays used', async () => {
    const svc = await memoryService();
    const result = await edit(svc, [
      { op: 'addFunction', name: 'tmp' },
      { op: 'removeFunction', function: 'tmp' },
    ]);
    expect(result).toMatchObject({ revision: 1, functions: [], created: [], removed: [] });
    expect((await edit(svc, [{ op: 'addFunction', name: 'tmp' }])).created).toEqual([{ name: 'tmp', id: 2 }]);
  });
});

describe('atomicity and validation', () => {
  it('leaves no trace of a rejected edit', async () => {
    const svc = await memoryService();
    await chain(svc);
    const before = svc.getProgram('main');
    const body = svc.getFunction('main', 1);
    await expectInvalid(
      () =>
        edit(svc, [
          { op: 'addFunction', name: 'new' },
          { op: 'removeNode', function: 1, node: 1 },
          { op: 'renameFunction', function: 1, name: 'renamed' },
          { op: 'removeEdge', function: 1, edge: 99 },
        ]),
      3,
      /unknown edge 99/,
    );
    expect(svc.getProgram('main')).toEqual(before);
    expect(svc.getFunction('main', 1)).toEqual(body);
    expect(await svc.history('main')).toHaveLength(1);
    expect((await edit(svc, [{ op: 'addFunction', name: 'new' }])).created).toEqual([{ name: 'new', id: 2 }]);
    expect((await edit(svc, [{ op: 'addFunction', name: 'renamed' }])).revision).toBe(3);
  });

  it('rejects malformed ops with the op index and the schema issue', async () => {
    const svc = await memoryService();
    await chain(svc);
    const ok = { op: 'addNode', function: 1, node: { id: 10, op: 'x' } };
    await expectInvalid(() => edit(svc, [ok, { op: 'frobnicate', function: 1 }]), 1, /.+/);
    await expectInvalid(
      () => edit(svc, [ok, { op: 'addNode', function: 1, node: { id: -1, op: 'x' } }]),
      1,
      /node\.id/,
    );
    await expectInvalid(
      () => edit(svc, [{ op: 'addNode', function: 1, node: { id: 11, op: 'x' }, extra: 1 }]),
      0,
      /extra|unrecognized/i,
    );
    await expectInvalid(
      () => edit(svc, [{ op: 'addNode', function: 1, node: { id: 11, op: 'x', attrs: [1] } }]),
      0,
      /attrs/,
    );
    await expectInvalid(
      () => edit(svc, [{ op: 'addNode', function: 1, node: { id: 11, op: 'x', attrs: { s: '\ud800' } } }]),
      0,
      /lone surrogate/,
    );
    await expectInvalid(() => edit(svc, [{ op: 'addFunction', name: '' }]), 0, /name/);
    await expectInvalid(() => edit(svc, [{ op: 'addNode', function: 0, node: { id: 11, op: 'x' } }]), 0, /function/);
    expect(svc.getProgram('main').revision).toBe(1);
  });

  it('restoreFunction (internal) only brings back a removed function, under a free name', async () => {
    const svc = await memoryService();
    await chain(svc);
    const body = svc.getFunction('main', 1);
    const restore = {
      op: 'restoreFunction',
      function: 1,
      name: 'f',
      nodes: body.function.nodes,
      edges: body.function.edges,
    };
    await expectInvalid(() => edit(svc, [restore]), 0, /function 1 exists/);
    await expectInvalid(() => edit(svc, [{ ...restore, function: 5 }]), 0, /function 5 never existed/);
    await edit(svc, [
      { op: 'removeFunction', function: 1 },
      { op: 'addFunction', name: 'f' },
    ]);
    await expectInvalid(() => edit(svc, [restore]), 0, /named "f" already exists/);
    await expectInvalid(
      () =>
        edit(svc, [
          {
            ...restore,
            name: 'f2',
            nodes: [
              { id: 1, op: 'a' },
              { id: 1, op: 'b' },
            ],
            edges: [],
          },
        ]),
      0,
      /duplicate node 1/,
    );
    await expectInvalid(() => edit(svc, [{ ...restore, name: 'f2', nodes: [] }]), 0, /not a node of function 1/);
    const result = await edit(svc, [{ ...restore, name: 'f2' }]);
    expect(result.created).toEqual([]);
    expect(result.functions).toEqual([{ id: 1, name: 'f2', hash: expect.any(String), version: 2 }]);
  });

  it('fails with NOT_FOUND for an unknown program', async () => {
    const svc = await memoryService();
    const err = await expectError(() => edit(svc, [{ op: 'addFunction', name: 'f' }], alice, 'nope'), 'NOT_FOUND');
    expect(err.details).toEqual({ program: 'nope' });
  });

  it('hands out frozen bodies that callers cannot corrupt', async () => {
    const svc = await memoryService();
    await chain(svc);
    const fn = svc.getFunction('main', 1).function;
    expect(() => {
      (fn.nodes as unknown[]).push({ id: 9, op: 'x' });
    }).toThrow(TypeError);
    expect(() => {
      (fn.nodes[0]?.attrs as Record<string, unknown>).value = 2;
    }).toThrow(TypeError);
  });
});

describe('programs', () => {
  it('start with main, and can be created, listed, read and deleted', async () => {
    const svc = await memoryService();
    expect(svc.listPrograms()).toEqual([{ name: 'main', revision: 0, functions: 0 }]);
    expect(await svc.createProgram('aux')).toEqual({ name: 'aux', revision: 0 });
    await expectError(() => svc.createProgram('aux'), 'CONFLICT');
    await expectError(() => svc.createProgram('bad name'), 'INVALID_EDIT');
    await chain(svc, 'f', 'aux');
    await chain(svc, 'g', 'aux');
    expect(svc.listPrograms()).toEqual([
      { name: 'aux', revision: 2, functions: 2 },
      { name: 'main', revision: 0, functions: 0 },
    ]);
    const aux = svc.getProgram('aux');
    expect(aux.functions.map((f) => [f.id, f.name, f.version])).toEqual([
      [1, 'f', 1],
      [2, 'g', 1],
    ]);
    expect(aux.functions[0]?.hash).toBe(svc.getFunction('aux', 1).hash);
    await svc.deleteProgram('main');
    expect(svc.hasProgram('main')).toBe(false);
    await expectError(() => svc.deleteProgram('main'), 'NOT_FOUND');
    await expectError(() => svc.getProgram('main'), 'NOT_FOUND');
    expect(await svc.ping()).toBe(true);
  });

  it('keep function ids per program', async () => {
    const svc = await memoryService();
    await svc.createProgram('aux');
    expect((await edit(svc, [{ op: 'addFunction', name: 'f' }], alice, 'aux')).created).toEqual([{ name: 'f', id: 1 }]);
    expect((await edit(svc, [{ op: 'addFunction', name: 'f' }])).created).toEqual([{ name: 'f', id: 1 }]);
  });
});
