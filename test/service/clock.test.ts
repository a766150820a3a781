import { describe, expect, it } from 'vitest';
import { ProgramService } from '../../src/service/index.ts';
import { alice, chain } from '../fixtures/service.ts';

describe('the injected clock', () => {
  it('stamps revisions, checkpoints and history with its time, not the system time', () => {
    let now = 1_000;
    const svc = ProgramService.open({ path: ':memory:', clock: { now: () => now } });
    chain(svc);
    now = 2_000;
    const cp = svc.createCheckpoint('main', 'cp', alice);
    expect(cp.at).toBe(2_000);
    expect(svc.history('main').map((r) => r.at)).toEqual([1_000]);
    expect(svc.listCheckpoints('main').map((c) => c.at)).toEqual([2_000]);
    svc.close();
  });
});
