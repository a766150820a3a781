import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/concurrency/fake-clock.ts';
import { LockManager } from '../../src/concurrency/lock-manager.ts';

const f1 = { program: 'main', function: 1 };

describe('a pinned lock (an edit made under it is committing)', () => {
  it('outlives its lease until the pin is lifted, then ends and passes to the next in line', () => {
    const clock = new FakeClock(0);
    const locks = new LockManager({ clock, sessionName: (id) => id });
    const events: string[] = [];
    locks.on('expired', (e) => events.push(`expired ${e.sessionId}`));
    locks.on('granted', (e) => events.push(`granted ${e.sessionId}`));
    locks.acquire('a', { resources: [f1], mode: 'write', ttlMs: 1_000 });
    expect(locks.acquire('b', { resources: [f1], mode: 'write', wait: true }).status).toBe('queued');
    events.length = 0;
    const unpin = locks.pin('a', [f1]);
    clock.advance(5_000);
    expect(events).toEqual([]);
    expect(locks.grantOf('a', f1)).toBeDefined();
    unpin();
    unpin();
    expect(events).toEqual(['expired a', 'granted b']);
    expect(locks.grantOf('b', f1)).toBeDefined();
    locks.close();
  });

  it('changes nothing for a lease that has not run out when the pin is lifted', () => {
    const clock = new FakeClock(0);
    const locks = new LockManager({ clock, sessionName: (id) => id });
    locks.acquire('a', { resources: [f1], mode: 'write', ttlMs: 1_000 });
    locks.pin('a', [f1])();
    clock.advance(999);
    expect(locks.grantOf('a', f1)).toBeDefined();
    clock.advance(1);
    expect(locks.grantOf('a', f1)).toBeUndefined();
    locks.close();
  });
});
