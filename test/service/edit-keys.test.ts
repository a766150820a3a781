import { describe, expect, it } from 'vitest';
import { alice, chain, edit, memoryService } from '../fixtures/service.ts';

describe('an edit committed under an idempotency key', () => {
  it('keeps its result with the revision, for a retry to get it again', async () => {
    const svc = await memoryService();
    const id = await chain(svc);
    const result = await edit(svc, [{ op: 'removeNode', function: id, node: 3 }], { ...alice, key: 'k1' });
    expect(await svc.keyedResult('main', 'k1')).toEqual(result);
    expect(await svc.keyedResult('main', 'k2')).toBeUndefined();
    await svc.createProgram('aux');
    expect(await svc.keyedResult('aux', 'k1')).toBeUndefined();
  });
});
