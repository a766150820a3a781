import { describe, expect, it } from 'vitest';
import { alice, chain, edit, expectError, memoryService } from '../fixtures/service.ts';

const under = (fences: Record<string, number>) => ({
  ...alice,
  fences: Object.entries(fences).map(([resource, fence]) => ({ resource, fence })),
});

describe('the fence of the last committed edit, checked by the store', () => {
  it('refuses an edit under an older grant than the last one committed, and changes nothing', async () => {
    const svc = await memoryService();
    const id = await chain(svc);
    const set = (value: number) => [{ op: 'updateNode', function: id, node: { id: 1, attrs: { value } } }];
    await edit(svc, set(2), under({ [id]: 5, structure: 4 }));
    const before = svc.getProgram('main');
    const err = await expectError(() => edit(svc, set(3), under({ [id]: 3 })), 'STALE_FENCE');
    expect(err.details.stale).toEqual([{ resource: { program: 'main', function: id }, fence: 3, current: 5 }]);
    expect(svc.getProgram('main')).toEqual(before);
    expect(await svc.history('main')).toHaveLength(2);
    // The same grant edits again, a newer one after it; other resources keep their own fences.
    expect((await edit(svc, set(4), under({ [id]: 5 }))).revision).toBe(3);
    expect((await edit(svc, set(5), under({ [id]: 9, structure: 4 }))).revision).toBe(4);
    await expectError(() => edit(svc, set(6), under({ [id]: 9, structure: 1 })), 'STALE_FENCE');
  });
});
