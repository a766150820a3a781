import { describe, expect, it } from 'vitest';
import type { FunctionBody } from '../../src/protocol/program.ts';
import { diffFunctions } from '../../src/service/index.ts';
import { chain, edit, expectError, memoryService } from '../helpers/service.ts';

const e = (id: number, from: number, to: number, port = 0) => ({
  id,
  from: { node: from, port },
  to: { node: to, port: 0 },
});

describe('diffFunctions', () => {
  it('lists added, removed and modified nodes and edges sorted by id, and name and signature changes', async () => {
    const before: FunctionBody = {
      id: 1,
      name: 'f',
      signature: { a: 1 },
      nodes: [
        { id: 1, op: 'a' },
        { id: 2, op: 'b', attrs: { x: 1 } },
        { id: 3, op: 'c' },
      ],
      edges: [e(1, 1, 2), e(2, 2, 3)],
    };
    const after: FunctionBody = {
      id: 1,
      name: 'g',
      nodes: [
        { id: 5, op: 'e' },
        { id: 4, op: 'd' },
        { id: 2, op: 'b', attrs: { x: 2 } },
        { id: 1, op: 'a', attrs: {} },
      ],
      edges: [e(3, 4, 5), e(1, 1, 2, 1)],
    };
    expect(diffFunctions(before, after)).toEqual({
      name: { before: 'f', after: 'g' },
      signature: { before: { a: 1 }, after: null },
      nodes: {
        added: [
          { id: 4, op: 'd' },
          { id: 5, op: 'e' },
        ],
        removed: [{ id: 3, op: 'c' }],
        modified: [{ id: 2, before: { id: 2, op: 'b', attrs: { x: 1 } }, after: { id: 2, op: 'b', attrs: { x: 2 } } }],
      },
      edges: {
        added: [e(3, 4, 5)],
        removed: [e(2, 2, 3)],
        modified: [{ id: 1, before: e(1, 1, 2), after: e(1, 1, 2, 1) }],
      },
    });
  });

  it('is empty between equal contents, attrs order and absent-vs-{} aside', async () => {
    const a: FunctionBody = {
      id: 1,
      name: 'f',
      nodes: [
        { id: 1, op: 'x', attrs: { p: 1, q: 2 } },
        { id: 2, op: 'y' },
      ],
      edges: [],
    };
    const b: FunctionBody = {
      id: 1,
      name: 'f',
      signature: null,
      nodes: [
        { id: 2, op: 'y', attrs: {} },
        { id: 1, op: 'x', attrs: { q: 2, p: 1 } },
      ],
      edges: [],
    };
    expect(diffFunctions(a, b)).toEqual({
      nodes: { added: [], removed: [], modified: [] },
      edges: { added: [], removed: [], modified: [] },
    });
  });
});

describe('checkExpected', () => {
  it('reports nothing when every expected hash is current', async () => {
    const svc = await memoryService();
    await chain(svc, 'f');
    await chain(svc, 'g');
    const expected = Object.fromEntries(svc.getProgram('main').functions.map((f) => [String(f.id), f.hash]));
    expect(await svc.checkExpected('main', expected)).toEqual([]);
  });

  it('diffs from the version that had the expected hash, several revisions back, to the current state', async () => {
    const svc = await memoryService();
    await chain(svc, 'f');
    await chain(svc, 'other');
    const old = svc.getFunction('main', 1);
    await edit(svc, [{ op: 'addNode', function: 1, node: { id: 4, op: 'print' } }]);
    await edit(svc, [{ op: 'updateNode', function: 2, node: { id: 1, op: 'elsewhere' } }]);
    await edit(svc, [
      { op: 'removeEdge', function: 1, edge: 2 },
      { op: 'addEdge', function: 1, edge: e(3, 2, 4) },
    ]);
    await edit(svc, [
      { op: 'updateNode', function: 1, node: { id: 1, attrs: { value: 2 } } },
      { op: 'removeNode', function: 1, node: 3 },
    ]);
    await edit(svc, [{ op: 'renameFunction', function: 1, name: 'f2' }]);
    const current = svc.getFunction('main', 1);
    expect(current.version).toBe(5);
    const [conflict, ...rest] = await svc.checkExpected('main', {
      '1': old.hash,
      '2': svc.getFunction('main', 2).hash,
    });
    expect(rest).toEqual([]);
    expect(conflict).toEqual({
      functionId: 1,
      expectedHash: old.hash,
      currentHash: current.hash,
      diff: {
        name: { before: 'f', after: 'f2' },
        nodes: {
          added: [{ id: 4, op: 'print', attrs: {} }],
          removed: [{ id: 3, op: 'ret', attrs: {} }],
          modified: [
            {
              id: 1,
              before: { id: 1, op: 'const', attrs: { value: 1 } },
              after: { id: 1, op: 'const', attrs: { value: 2 } },
            },
          ],
        },
        edges: { added: [e(3, 2, 4)], removed: [e(2, 2, 3)], modified: [] },
      },
    });
  });

  it('finds a hash the function had again later', async () => {
    const svc = await memoryService();
    await chain(svc);
    const original = svc.getFunction('main', 1).hash;
    await edit(svc, [{ op: 'updateNode', function: 1, node: { id: 2, op: 'abs' } }]);
    await edit(svc, [{ op: 'updateNode', function: 1, node: { id: 2, op: 'neg' } }]);
    expect(svc.getFunction('main', 1)).toMatchObject({ hash: original, version: 3 });
    await edit(svc, [{ op: 'removeNode', function: 1, node: 3 }]);
    const [conflict] = await svc.checkExpected('main', { '1': original });
    expect(conflict?.diff?.nodes.removed.map((n) => n.id)).toEqual([3]);
  });

  it('gives a null diff for a hash the function never had, and a null current hash for a removed function', async () => {
    const svc = await memoryService();
    await chain(svc, 'f');
    await chain(svc, 'g');
    const gHash = svc.getFunction('main', 2).hash;
    await edit(svc, [{ op: 'removeFunction', function: 2 }]);
    expect(await svc.checkExpected('main', { '9': 'a'.repeat(64), '2': gHash, '1': 'b'.repeat(64) })).toEqual([
      { functionId: 1, expectedHash: 'b'.repeat(64), currentHash: svc.getFunction('main', 1).hash, diff: null },
      {
        functionId: 2,
        expectedHash: gHash,
        currentHash: null,
        diff: {
          nodes: {
            added: [],
            removed: [
              { id: 1, op: 'const', attrs: { value: 1 } },
              { id: 2, op: 'neg', attrs: {} },
              { id: 3, op: 'ret', attrs: {} },
            ],
            modified: [],
          },
          edges: { added: [], removed: [e(1, 1, 2), e(2, 2, 3)], modified: [] },
        },
      },
      { functionId: 9, expectedHash: 'a'.repeat(64), currentHash: null, diff: null },
    ]);
  });

  it('rejects keys that are not function ids, and unknown programs', async () => {
    const svc = await memoryService();
    await expectError(() => svc.checkExpected('main', { x: 'h' }), 'INVALID_EDIT');
    await expectError(() => svc.checkExpected('main', { '01': 'h' }), 'INVALID_EDIT');
    await expectError(() => svc.checkExpected('nope', {}), 'NOT_FOUND');
  });
});

describe('diffRevisions and diffFunction', () => {
  it('diffs any two revisions, either way, leaving out functions that ended where they began', async () => {
    const svc = await memoryService();
    await chain(svc, 'f'); // r1
    await chain(svc, 'g'); // r2
    await edit(svc, [{ op: 'addNode', function: 1, node: { id: 9, op: 'x' } }]); // r3
    await edit(svc, [
      { op: 'removeFunction', function: 2 },
      { op: 'addFunction', name: 'h' },
    ]); // r4
    await edit(svc, [{ op: 'addNode', function: 3, node: { id: 0, op: 'y' } }]); // r5
    await edit(svc, [{ op: 'removeNode', function: 3, node: 0 }]); // r6: h back to its r4 content

    const forward = await svc.diffRevisions('main', 2, 6);
    expect(forward.from).toBe(2);
    expect(forward.to).toBe(6);
    expect(forward.functions.map((f) => [f.id, f.name, f.status])).toEqual([
      [1, 'f', 'modified'],
      [2, 'g', 'removed'],
      [3, 'h', 'added'],
    ]);
    expect(forward.functions[0]?.diff.nodes.added).toEqual([{ id: 9, op: 'x', attrs: {} }]);
    expect(forward.functions[1]?.diff.nodes.removed).toHaveLength(3);

    const backward = await svc.diffRevisions('main', 6, 2);
    expect(backward.functions.map((f) => [f.id, f.status])).toEqual([
      [1, 'modified'],
      [2, 'added'],
      [3, 'removed'],
    ]);
    expect((await svc.diffRevisions('main', 4, 6)).functions).toEqual([]);
    expect((await svc.diffRevisions('main', 0, 1)).functions.map((f) => f.status)).toEqual(['added']);
    await expectError(() => svc.diffRevisions('main', 0, 7), 'NOT_FOUND');
    await expectError(() => svc.diffRevisions('main', -1, 2), 'NOT_FOUND');
  });

  it('diffs two versions of one function', async () => {
    const svc = await memoryService();
    await chain(svc);
    await edit(svc, [{ op: 'removeEdge', function: 1, edge: 1 }]);
    await edit(svc, [{ op: 'renameFunction', function: 1, name: 'g' }]);
    const d = await svc.diffFunction('main', 1, 1, 3);
    expect(d.name).toEqual({ before: 'f', after: 'g' });
    expect(d.edges.removed).toEqual([e(1, 1, 2)]);
    expect((await svc.diffFunction('main', 1, 3, 1)).edges.added).toEqual([e(1, 1, 2)]);
    await expectError(() => svc.diffFunction('main', 1, 1, 4), 'NOT_FOUND');
    await expectError(() => svc.diffFunction('main', 2, 1, 1), 'NOT_FOUND');
  });
});
