import { describe, expect, it } from 'vitest';
import { FenceCounter } from '../../src/service/fences.ts';
import type { ProgramStore } from '../../src/service/index.ts';

// Cluster mode's fencing tokens: handed out only from blocks already reserved in the store, so
// that a new leader, counting on from the recorded ceilings, never repeats one.

/** A store whose fence reservations resolve (or fail) when the test says. */
function slowStore() {
  const pending: Array<{ ceiling: number; settle: (ok: boolean) => void }> = [];
  const store = {
    saveFenceCeiling: (_program: string, ceiling: number) =>
      new Promise<void>((resolve, reject) =>
        pending.push({ ceiling, settle: (ok) => (ok ? resolve() : reject(new Error('refused'))) }),
      ),
  } as unknown as ProgramStore;
  return { store, pending };
}

describe('cluster: reserved fences', () => {
  it('prepares a block before the first grant and continues above the recorded ceiling', async () => {
    const { store, pending } = slowStore();
    let ranOut = 0;
    const fences = new FenceCounter(store, new Map([['main', 41]]), { block: 10, ranOut: () => ranOut++ });
    const ready = fences.prepare('main');
    expect(pending.map((p) => p.ceiling)).toEqual([51]);
    pending.shift()!.settle(true);
    await ready;
    expect([fences.next('main'), fences.next('main')]).toEqual([42, 43]);
    expect(ranOut).toBe(0);
  });

  it('tells that it ran out when a token is past every reservation that has landed', async () => {
    const { store, pending } = slowStore();
    let ranOut = 0;
    const fences = new FenceCounter(store, new Map(), { block: 10, ranOut: () => ranOut++ });
    // A program never prepared: its first token is not reserved yet.
    expect(fences.next('other')).toBe(1);
    expect(ranOut).toBe(1);
    const ready = fences.prepare('main');
    pending.at(-1)!.settle(true);
    await ready;
    // Up to the reserved 10, then the next block (asked at half) has not landed: ran out at 11.
    for (let i = 1; i <= 10; i++) fences.next('main');
    expect(ranOut).toBe(1);
    fences.next('main');
    expect(ranOut).toBe(2);
  });

  it('fails a preparation the store refuses', async () => {
    const { store, pending } = slowStore();
    const fences = new FenceCounter(store, new Map(), { block: 10, ranOut: () => undefined });
    const ready = fences.prepare('main');
    pending.shift()!.settle(false);
    await expect(ready).rejects.toThrow('refused');
  });
});
