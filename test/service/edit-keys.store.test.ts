import { describe, expect, it } from 'vitest';
import { alice, bob, chain, edit, memoryService } from '../helpers/service.ts';

describe('an edit committed under an idempotency key', () => {
  it('keeps its result with the revision, for a retry by its session to get it again', async () => {
    const svc = await memoryService();
    const id = await chain(svc);
    const result = await edit(svc, [{ op: 'removeNode', function: id, node: 3 }], { ...alice, key: 'k1' });
    expect(await svc.keyedResult('main', alice.sessionId, 'k1')).toEqual(result);
    expect(await svc.keyedResult('main', alice.sessionId, 'k2')).toBeUndefined();
    await svc.createProgram('aux');
    expect(await svc.keyedResult('aux', alice.sessionId, 'k1')).toBeUndefined();
  });

  it('belongs to its session: another session with the same key commits an edit of its own', async () => {
    const svc = await memoryService();
    const id = await chain(svc);
    const hers = await edit(svc, [{ op: 'removeNode', function: id, node: 3 }], { ...alice, key: 'k' });
    expect(await svc.keyedResult('main', bob.sessionId, 'k')).toBeUndefined();
    const his = await edit(svc, [{ op: 'removeNode', function: id, node: 2 }], { ...bob, key: 'k' });
    expect(his.revision).toBe(hers.revision + 1);
    expect(await svc.keyedResult('main', alice.sessionId, 'k')).toEqual(hers);
    expect(await svc.keyedResult('main', bob.sessionId, 'k')).toEqual(his);
  });
});
