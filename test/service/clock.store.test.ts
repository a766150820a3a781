import { describe, expect, it } from 'vitest';
import { alice, chain, memoryService } from '../helpers/service.ts';

describe('the injected clock', () => {
  it('stamps revisions, checkpoints and history with its time, not the system time', async () => {
    let now = 1_000;
    const svc = await memoryService({ now: () => now });
    await chain(svc);
    now = 2_000;
    const cp = await svc.createCheckpoint('main', 'cp', alice);
    expect(cp.at).toBe(2_000);
    expect((await svc.history('main')).map((r) => r.at)).toEqual([1_000]);
    expect((await svc.listCheckpoints('main')).map((c) => c.at)).toEqual([2_000]);
    await svc.close();
  });
});
