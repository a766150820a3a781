import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LockstepError } from '../../src/protocol/errors.ts';
import type { ProgramService } from '../../src/service/index.ts';
import { alice, chain, edit, expectError, expectInvalid, memoryService, testStore } from '../helpers/service.ts';

const bob = { sessionId: '0d6f6c1e-9d55-4b7b-8b8e-3e7c2c1a6b11', name: 'bob' };

async function undo(svc: ProgramService, revision: number) {
  return svc.applyEdit('main', await svc.undoOps('main', revision), { ...bob, kind: 'undo', undoes: revision });
}

async function redo(svc: ProgramService, revision: number) {
  return svc.applyEdit('main', await svc.redoOps('main', revision), { ...bob, kind: 'redo', redoes: revision });
}

async function restore(svc: ProgramService, checkpoint: string) {
  return svc.applyEdit('main', await svc.restoreOps('main', checkpoint), { ...bob, kind: 'restore', checkpoint });
}

/** What a client sees of the program, without versions (which only ever go up). */
function snapshot(svc: ProgramService): Array<[number, string, string]> {
  return svc.getProgram('main').functions.map((f) => [f.id, f.name, f.hash]);
}

describe('undo', () => {
  it('reverts a node edit as a new revision, with a new version of the old content', async () => {
    const svc = await memoryService();
    await chain(svc);
    const before = svc.getFunction('main', 1);
    await edit(svc, [
      { op: 'removeNode', function: 1, node: 2 },
      { op: 'updateNode', function: 1, node: { id: 1, attrs: { value: 5 } } },
    ]);
    const result = await undo(svc, 2);
    expect(result.revision).toBe(3);
    const after = svc.getFunction('main', 1);
    expect(after.function).toEqual(before.function);
    expect(after.hash).toBe(before.hash);
    expect(after.version).toBe(3);
    expect((await svc.history('main')).at(-1)).toMatchObject({
      revision: 3,
      kind: 'undo',
      undoes: 2,
      by: { name: 'bob' },
      functions: [1],
    });
  });

  it('brings a removed function back under the same id', async () => {
    const svc = await memoryService();
    await chain(svc, 'f');
    await chain(svc, 'g');
    const g = svc.getFunction('main', 2);
    await edit(svc, [{ op: 'removeFunction', function: 2 }]);
    await edit(svc, [{ op: 'addFunction', name: 'h' }]);
    const ops = await svc.undoOps('main', 3);
    expect(ops).toEqual([
      { op: 'restoreFunction', function: 2, name: 'g', nodes: g.function.nodes, edges: g.function.edges },
    ]);
    const result = await undo(svc, 3);
    expect(result.functions).toEqual([{ id: 2, name: 'g', hash: g.hash, version: 2 }]);
    expect(result.created).toEqual([]);
    expect(svc.getFunction('main', 2).function).toEqual(g.function);
    // Undoing it twice cannot work: the function is back already.
    await expectInvalid(() => undo(svc, 3), 0, /function 2 exists/);
  });

  it('removes a function that the undone revision added', async () => {
    const svc = await memoryService();
    await chain(svc);
    expect((await undo(svc, 1)).removed).toEqual([1]);
    expect(svc.getProgram('main').functions).toEqual([]);
  });

  it('keeps later changes to other parts of the function (revert, not rewind)', async () => {
    const svc = await memoryService();
    await chain(svc);
    await edit(svc, [{ op: 'addNode', function: 1, node: { id: 10, op: 'a' } }]); // r2
    await edit(svc, [{ op: 'addNode', function: 1, node: { id: 11, op: 'b' } }]); // r3
    await undo(svc, 2);
    expect(svc.getFunction('main', 1).function.nodes.map((n) => n.id)).toEqual([1, 2, 3, 11]);
  });

  it('fails with INVALID_EDIT when later edits make the revert impossible', async () => {
    const svc = await memoryService();
    await chain(svc);
    await edit(svc, [{ op: 'removeEdge', function: 1, edge: 1 }]); // r2
    await edit(svc, [{ op: 'removeNode', function: 1, node: 1 }]); // r3: the edge's end is gone
    await expectInvalid(() => undo(svc, 2), 0, /"from" node 1 is not a node/);
  });

  it('undoes a name swap through temporary names', async () => {
    const svc = await memoryService();
    await chain(svc, 'a');
    await chain(svc, 'b');
    const start = snapshot(svc);
    await edit(svc, [
      { op: 'renameFunction', function: 1, name: 'tmp' },
      { op: 'renameFunction', function: 2, name: 'a' },
      { op: 'renameFunction', function: 1, name: 'b' },
    ]);
    await undo(svc, 3);
    expect(snapshot(svc)).toEqual(start);
  });

  it('fails with NOT_FOUND for an unknown revision', async () => {
    const svc = await memoryService();
    await chain(svc);
    await expectError(() => svc.undoOps('main', 0), 'NOT_FOUND');
    await expectError(() => svc.undoOps('main', 2), 'NOT_FOUND');
    await expectError(() => svc.undoOps('nope', 1), 'NOT_FOUND');
  });

  it('of a revision that changed nothing commits nothing', async () => {
    const svc = await memoryService();
    await chain(svc);
    await edit(svc, [{ op: 'updateNode', function: 1, node: { id: 2, op: 'neg' } }]);
    expect(await svc.undoOps('main', 2)).toEqual([]);
    expect(await undo(svc, 2)).toMatchObject({ revision: 2, functions: [], committed: false });
    expect((await svc.history('main')).map((r) => r.revision)).toEqual([1, 2]);
  });

  it('of a revision whose effect later edits already reverted commits nothing', async () => {
    const svc = await memoryService();
    await chain(svc);
    await edit(svc, [{ op: 'updateNode', function: 1, node: { id: 1, attrs: { value: 5 } } }]); // r2
    await edit(svc, [{ op: 'updateNode', function: 1, node: { id: 1, attrs: { value: 1 } } }]); // r3: back again
    const before = svc.getFunction('main', 1);
    expect(await svc.undoOps('main', 2)).not.toEqual([]);
    expect(await undo(svc, 2)).toEqual({
      revision: 3,
      functions: [],
      created: [],
      removed: [],
      at: expect.any(Number),
      committed: false,
    });
    expect(svc.getProgram('main').revision).toBe(3);
    expect((await svc.history('main')).map((r) => r.kind)).toEqual(['edit', 'edit', 'edit']);
    expect(svc.getFunction('main', 1)).toEqual(before);
  });

  it('of a rename that a later rename already took back commits nothing, nor does its redo', async () => {
    const svc = await memoryService();
    await chain(svc);
    await edit(svc, [{ op: 'renameFunction', function: 1, name: 'g' }]); // r2
    const u = await undo(svc, 2); // r3: back to f
    expect(u).toMatchObject({ revision: 3, committed: true });
    await edit(svc, [{ op: 'renameFunction', function: 1, name: 'g' }]); // r4: g again, by hand
    expect(await redo(svc, 3)).toMatchObject({ revision: 4, committed: false });
    expect(svc.getProgram('main').revision).toBe(4);
  });
});

describe('redo', () => {
  it('re-applies what an undo reverted', async () => {
    const svc = await memoryService();
    await chain(svc);
    await edit(svc, [{ op: 'removeFunction', function: 1 }]); // r2
    const removed = snapshot(svc);
    await undo(svc, 2); // r3
    expect(await svc.redoOps('main', 3)).toEqual(await svc.undoOps('main', 3));
    await redo(svc, 3); // r4
    expect(snapshot(svc)).toEqual(removed);
    expect((await svc.history('main', { after: 2 })).map((r) => [r.revision, r.kind, r.undoes ?? r.redoes])).toEqual([
      [3, 'undo', 2],
      [4, 'redo', 3],
    ]);
  });

  it('only takes an undo revision', async () => {
    const svc = await memoryService();
    await chain(svc);
    const err = await expectError(() => svc.redoOps('main', 1), 'INVALID_EDIT');
    expect(err.details).toMatchObject({ revision: 1 });
    await expectError(() => svc.redoOps('main', 5), 'NOT_FOUND');
  });
});

describe('checkpoints', () => {
  it('label the current revision, with unique names per program', async () => {
    const svc = await memoryService();
    await chain(svc);
    const cp = await svc.createCheckpoint('main', 'before-refactor', alice);
    expect(cp).toMatchObject({ name: 'before-refactor', revision: 1 });
    expect(svc.getProgram('main').revision).toBe(1);
    await expectError(() => svc.createCheckpoint('main', 'before-refactor', bob), 'CONFLICT');
    await expectError(() => svc.createCheckpoint('main', '', bob), 'INVALID_EDIT');
    await svc.createProgram('aux');
    expect((await svc.createCheckpoint('aux', 'before-refactor', bob)).revision).toBe(0);
    await edit(svc, [{ op: 'addFunction', name: 'g' }]);
    await svc.createCheckpoint('main', 'later', bob);
    expect(await svc.listCheckpoints('main')).toEqual([
      { name: 'before-refactor', revision: 1, at: cp.at, by: { sessionId: alice.sessionId, name: 'alice' } },
      { name: 'later', revision: 2, at: expect.any(Number), by: { sessionId: bob.sessionId, name: 'bob' } },
    ]);
    await expectError(() => svc.listCheckpoints('nope'), 'NOT_FOUND');
  });

  it('restore brings back every function as it was: contents, names, removed and added ones', async () => {
    const svc = await memoryService();
    await chain(svc, 'a');
    await chain(svc, 'b');
    await chain(svc, 'c');
    await svc.createCheckpoint('main', 'cp', alice);
    const saved = snapshot(svc);
    await edit(svc, [
      { op: 'removeNode', function: 1, node: 2 },
      { op: 'addNode', function: 1, node: { id: 7, op: 'new' } },
    ]);
    await edit(svc, [
      { op: 'renameFunction', function: 2, name: 'tmp' },
      { op: 'renameFunction', function: 3, name: 'b' },
      { op: 'renameFunction', function: 2, name: 'c' },
    ]);
    await edit(svc, [
      { op: 'removeFunction', function: 3 },
      { op: 'addFunction', name: 'b' },
    ]);
    await edit(svc, [
      { op: 'addFunction', name: 'z' },
      { op: 'addEdge', function: 2, edge: { id: 9, from: { node: 1, port: 0 }, to: { node: 3, port: 0 } } },
    ]);
    const locks = svc.requiredLocks('main', await svc.restoreOps('main', 'cp'));
    expect(locks.map((l) => l.resource)).toEqual([
      { program: 'main', structure: true },
      { program: 'main', function: 1 },
      { program: 'main', function: 2 },
      { program: 'main', function: 4 },
      { program: 'main', function: 5 },
    ]);
    const result = await restore(svc, 'cp');
    expect(snapshot(svc)).toEqual(saved);
    expect(result.removed).toEqual([4, 5]);
    expect((await svc.history('main')).at(-1)).toMatchObject({ kind: 'restore', checkpoint: 'cp' });
    expect(await svc.restoreOps('main', 'cp')).toEqual([]);
  });

  it('restore of an unknown checkpoint fails with NOT_FOUND', async () => {
    const svc = await memoryService();
    await expectError(() => svc.restoreOps('main', 'nope'), 'NOT_FOUND');
  });

  it('restore to a checkpoint taken at revision 0 empties the program', async () => {
    const svc = await memoryService();
    await svc.createCheckpoint('main', 'empty', alice);
    await chain(svc, 'a');
    await chain(svc, 'b');
    await restore(svc, 'empty');
    expect(svc.getProgram('main').functions).toEqual([]);
  });
});

describe('history', () => {
  it('lists revisions in order, paged with after and limit', async () => {
    const svc = await memoryService();
    for (let i = 0; i < 5; i++) await edit(svc, [{ op: 'addFunction', name: `f${i}` }], { ...alice, note: `n${i}` });
    expect((await svc.history('main')).map((r) => r.revision)).toEqual([1, 2, 3, 4, 5]);
    expect((await svc.history('main', { after: 1, limit: 2 })).map((r) => r.revision)).toEqual([2, 3]);
    expect(await svc.history('main', { after: 5 })).toEqual([]);
    expect((await svc.history('main', { limit: 1 }))[0]).toEqual({
      revision: 1,
      at: expect.any(Number),
      by: { sessionId: alice.sessionId, name: 'alice' },
      kind: 'edit',
      ops: 1,
      functions: [1],
      note: 'n0',
    });
    await expectError(() => svc.history('nope'), 'NOT_FOUND');
  });
});

// Random edits on a small name and id space, so that collisions and rejections are frequent.
function randomOp(svc: ProgramService, pick: () => number): unknown {
  const fns = svc.getProgram('main').functions;
  const fn = fns.length === 0 ? undefined : fns[pick() % fns.length];
  const name = `n${pick() % 4}`;
  const node = pick() % 5;
  switch (fn === undefined ? 0 : pick() % 8) {
    case 0:
      return { op: 'addFunction', name, ...(pick() % 2 === 0 ? { signature: { k: pick() % 3 } } : {}) };
    case 1:
      return { op: 'removeFunction', function: fn?.id };
    case 2:
      return { op: 'renameFunction', function: fn?.id, name };
    case 3:
    case 4:
      return { op: 'addNode', function: fn?.id, node: { id: node, op: `op${pick() % 3}`, attrs: { v: pick() % 3 } } };
    case 5:
      return { op: 'updateNode', function: fn?.id, node: { id: node, attrs: { v: pick() % 3 } } };
    case 6:
      return { op: 'removeNode', function: fn?.id, node };
    default:
      return {
        op: 'addEdge',
        function: fn?.id,
        edge: { id: pick() % 4, from: { node, port: 0 }, to: { node: pick() % 5, port: 1 } },
      };
  }
}

describe('history under random edits', () => {
  it('undo right after an edit, redo, and restore always reproduce the recorded states', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.nat(), { minLength: 40, maxLength: 200 }), fc.nat(), async (seed, cpAt) => {
        const svc = await memoryService();
        let i = 0;
        const pick = () => seed[i++ % seed.length] as number;
        const states: Array<ReturnType<typeof snapshot>> = [snapshot(svc)];
        let atCheckpoint: ReturnType<typeof snapshot> | undefined;
        const steps = 15;
        for (let step = 0; step < steps; step++) {
          if (step === cpAt % steps) {
            await svc.createCheckpoint('main', 'cp', alice);
            atCheckpoint = snapshot(svc);
          }
          const ops = pick() % 2 === 0 ? [randomOp(svc, pick)] : [randomOp(svc, pick), randomOp(svc, pick)];
          try {
            await edit(svc, ops);
          } catch (err) {
            if (!(err instanceof LockstepError) || err.type !== 'INVALID_EDIT') throw err;
            continue;
          }
          const revision = svc.getProgram('main').revision;
          const after = snapshot(svc);
          const undone = await undo(svc, revision);
          expect(snapshot(svc)).toEqual(states.at(-1));
          // An edit that changed no content leaves its undo nothing to do: no revision to redo.
          expect(undone.committed).toBe(JSON.stringify(after) !== JSON.stringify(states.at(-1)));
          if (undone.committed) await redo(svc, undone.revision);
          expect(snapshot(svc)).toEqual(after);
          states.push(after);
        }
        await restore(svc, 'cp');
        expect(snapshot(svc)).toEqual(atCheckpoint);
      }),
      // Each run is a new database on PostgreSQL: fewer runs there keep the suite's time bounded.
      { numRuns: testStore === 'postgres' ? 8 : 40 },
    );
  }, 60_000);
});
