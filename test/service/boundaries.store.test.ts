import { describe, expect, it } from 'vitest';
import { FunctionBody, FunctionDiff } from '../../src/protocol/program.ts';
import { chain, edit, memoryService } from '../helpers/service.ts';

describe('src/service', () => {
  it('returns functions and diffs that match the wire schemas', async () => {
    const svc = await memoryService();
    await chain(svc, 'f');
    await edit(svc, [
      { op: 'renameFunction', function: 1, name: 'g' },
      { op: 'updateNode', function: 1, node: { id: 2, attrs: { k: [1] } } },
    ]);
    await edit(svc, [
      { op: 'removeEdge', function: 1, edge: 1 },
      { op: 'addEdge', function: 1, edge: { id: 1, from: { node: 3, port: 0 }, to: { node: 1, port: 0 } } },
    ]);
    expect(() => FunctionBody.parse(svc.getFunction('main', 1).function)).not.toThrow();
    for (const f of (await svc.diffRevisions('main', 0, 3)).functions.concat(
      (await svc.diffRevisions('main', 1, 3)).functions,
    )) {
      expect(() => FunctionDiff.parse(f.diff)).not.toThrow();
    }
    const diff = await svc.diffFunction('main', 1, 1, 3);
    expect(() => FunctionDiff.parse(diff)).not.toThrow();
  });
});
