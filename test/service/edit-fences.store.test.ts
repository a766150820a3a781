import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/concurrency/index.ts';
import { ProgramService } from '../../src/service/index.ts';
import { alice, chain, edit, expectError, freshLocation, memoryService } from '../helpers/service.ts';

const dir = mkdtempSync(join(tmpdir(), 'lockstep-edit-fences-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

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

  it('hands out fences above every committed one after a restart', async () => {
    const path = await freshLocation(dir, 'restart.db');
    let svc = await ProgramService.open({ path, clock: systemClock });
    const id = await chain(svc);
    await edit(svc, [{ op: 'removeNode', function: id, node: 3 }], under({ [id]: 50_000 }));
    await svc.close();
    svc = await ProgramService.open({ path, clock: systemClock });
    expect(svc.fences().next('main')).toBeGreaterThan(50_000);
    await svc.close();
  });
});
