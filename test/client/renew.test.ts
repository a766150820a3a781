import { describe, expect, it } from 'vitest';
import type { Grant } from '../../src/client/index.ts';
import { addFns, next, useSdk } from '../helpers/sdk.ts';

describe('SDK lease renewal', () => {
  const t = useSdk();

  // Long enough that a loaded machine's event-loop stalls (easily 100-200 ms with two test workers
  // and another busy process) do not eat the half lease between renewals; counted in renewals,
  // not wall-clock time, so a slow machine only makes it take longer.
  it('keeps a 1.2 s lease alive past twice its length, with the same fence', async () => {
    const s = await t.server();
    const a = await t.client(s, 'a', { autoRenew: true });
    const [f] = (await addFns(a, ['f'])) as [number];
    let expired = false;
    a.on('lock.expired', () => {
      expired = true;
    });
    const ttlMs = 1_200;
    const lock = await a.acquire({ functions: [f], mode: 'write', ttlMs });
    const started = Date.now();
    const renewals: Grant[][] = [];
    while (renewals.length < 5) renewals.push((await next(a, 'renewed'))[0]);
    expect(Date.now() - started).toBeGreaterThan(2 * ttlMs);
    expect(renewals.every((gs) => gs[0]?.fence === lock.fences[String(f)])).toBe(true);
    expect(expired).toBe(false);
    expect(lock.held).toBe(true);
    const holders = (await a.lock.status({})).resources[0]?.holders;
    expect(holders).toMatchObject([{ sessionId: a.sessionId, fence: lock.fences[String(f)] }]);
    expect(await lock.release()).toEqual([{ program: 'main', function: f }]);
  });

  it('renews at once on lock.expiring when the timer would be too late', async () => {
    const s = await t.server();
    const a = await t.client(s, 'a', { renewFraction: 0.99 });
    const [f] = (await addFns(a, ['f'])) as [number];
    const order: string[] = [];
    a.on('lock.expiring', () => order.push('expiring'));
    a.on('renewed', () => order.push('renewed'));
    a.on('lock.expired', () => order.push('expired'));
    await a.acquire({ functions: [f], mode: 'write', ttlMs: 500, autoRenew: true });
    await next(a, 'renewed');
    expect(order).toEqual(['expiring', 'renewed']);
    await a.lock.releaseAll();
  });

  it('lets a lease run out without autoRenew, and reports the lock lost (expired)', async () => {
    const s = await t.server();
    const a = await t.client(s, 'a');
    const [f] = (await addFns(a, ['f'])) as [number];
    const lost = next(a, 'lost');
    const lock = await a.acquire({ functions: [f], mode: 'write', ttlMs: 150 });
    const [expired] = await next(a, 'lock.expired');
    expect(expired.locks.map((l) => l.resource)).toEqual([{ program: 'main', function: f }]);
    const info = {
      resource: { program: 'main', function: f },
      mode: 'write',
      fences: [lock.grants[0]?.fence],
      reason: 'expired',
    };
    expect((await lost)[0]).toEqual(info);
    expect(lock.held).toBe(false);
    expect(lock.lost).toEqual(info);
    expect(lock.signal.reason).toMatchObject({ type: 'LOCK_LOST', data: info });
    expect(a.held()).toEqual([]);
    expect(await lock.release()).toEqual([]);
  });
});
