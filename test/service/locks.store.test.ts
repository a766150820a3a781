import { describe, expect, it } from 'vitest';
import type { ServiceOp } from '../../src/service/index.ts';
import { chain, edit, expectError, expectInvalid, memoryService } from '../helpers/service.ts';

const S = { resource: { program: 'main', structure: true }, mode: 'write' };
const F = (id: number) => ({ resource: { program: 'main', function: id }, mode: 'write' });

describe('requiredLocks', async () => {
  const svc = await memoryService();
  await chain(svc, 'f');
  await chain(svc, 'g');
  const locks = (ops: unknown[]) => svc.requiredLocks('main', ops as ServiceOp[]);

  it('asks for the function write lock for ops inside it', async () => {
    expect(
      locks([
        { op: 'addNode', function: 2, node: { id: 9, op: 'x' } },
        { op: 'updateNode', function: 1, node: { id: 1, op: 'y' } },
        { op: 'removeNode', function: 2, node: 1 },
        { op: 'addEdge', function: 1, edge: { id: 9, from: { node: 1, port: 0 }, to: { node: 1, port: 1 } } },
        { op: 'removeEdge', function: 1, edge: 1 },
      ]),
    ).toEqual([F(1), F(2)]);
  });

  it('asks for the structure lock for addFunction', async () => {
    expect(locks([{ op: 'addFunction', name: 'h' }])).toEqual([S]);
  });

  it('asks for the structure and the function lock for remove and rename', async () => {
    expect(locks([{ op: 'removeFunction', function: 2 }])).toEqual([S, F(2)]);
    expect(locks([{ op: 'renameFunction', function: 1, name: 'z' }])).toEqual([S, F(1)]);
  });

  it('needs only the structure lock for ops on a function the same edit adds', async () => {
    expect(
      locks([
        { op: 'addFunction', name: 'h' },
        { op: 'addNode', function: 'h', node: { id: 1, op: 'x' } },
        { op: 'renameFunction', function: 'h', name: 'i' },
        { op: 'removeFunction', function: 'i' },
      ]),
    ).toEqual([S]);
  });

  it('returns each resource once, in canonical order (structure first, then by id)', async () => {
    expect(
      locks([
        { op: 'removeEdge', function: 2, edge: 1 },
        { op: 'addFunction', name: 'h' },
        { op: 'removeEdge', function: 1, edge: 1 },
        { op: 'removeEdge', function: 2, edge: 2 },
      ]),
    ).toEqual([S, F(1), F(2)]);
  });

  it('asks no lock for an unknown function id: the ops check refuses the edit, naming the op', async () => {
    expect(locks([{ op: 'removeEdge', function: 77, edge: 1 }])).toEqual([]);
    expect(locks([{ op: 'removeFunction', function: 77 }])).toEqual([S]);
    await expectInvalid(() => edit(svc, [{ op: 'removeEdge', function: 77, edge: 1 }]), 0, /function/);
  });

  it('asks for the structure lock to bring a removed function back', async () => {
    const other = await memoryService();
    await chain(other);
    await edit(other, [{ op: 'removeFunction', function: 1 }]);
    expect(other.requiredLocks('main', await other.undoOps('main', 2))).toEqual([S]);
  });

  it('reports the locks of undo ops like those of an edit making the same change', async () => {
    const other = await memoryService();
    await chain(other, 'f');
    await chain(other, 'g');
    await edit(other, [{ op: 'removeNode', function: 2, node: 1 }]);
    await edit(other, [{ op: 'renameFunction', function: 1, name: 'ff' }]);
    expect(other.requiredLocks('main', await other.undoOps('main', 3))).toEqual([F(2)]);
    expect(other.requiredLocks('main', await other.undoOps('main', 4))).toEqual([S, F(1)]);
    // Undoing a creation removes the function.
    expect(other.requiredLocks('main', await other.undoOps('main', 2))).toEqual([S, F(2)]);
  });

  it('fails with NOT_FOUND for an unknown program', async () => {
    await expectError(() => svc.requiredLocks('zzz', [{ op: 'addFunction', name: 'x' }]), 'NOT_FOUND');
  });
});
