import { describe, expect, it } from 'vitest';
import { LockstepClientError } from '../../src/client/errors.ts';
import { Leases } from '../../src/client/leases.ts';
import { SessionState } from '../../src/client/session-state.ts';
import type { LostLock } from '../../src/client/types.ts';
import type { Resource } from '../../src/protocol/resource.ts';

const f: Resource = { program: 'main', function: 1 };
const grant = { resource: f, mode: 'write' as const, fence: 7, expiresAt: new Date(Date.now() + 60_000).toISOString() };
const notHeld = new LockstepClientError({
  type: 'NOT_HELD',
  code: 409,
  message: 'not held',
  retryable: false,
  data: { resources: [f] },
});

/** Leases whose renewals the test answers by hand; fraction 0 renews at once. */
function leasesWithManualRenew() {
  const failed: unknown[] = [];
  const lost: LostLock[] = [];
  let reject: (err: unknown) => void = () => undefined;
  let started: () => void = () => undefined;
  const renewing = new Promise<void>((resolve) => (started = resolve));
  const leases = new Leases(
    {
      renew: () =>
        new Promise((_resolve, fail) => {
          reject = fail;
          started();
        }),
      failed: (err) => failed.push(err),
      lost: (l) => lost.push(l),
    },
    0,
  );
  leases.add([grant], 60_000, true);
  return { leases, failed, lost, renewing, fail: (err: unknown) => reject(err) };
}

describe('lease renewal', () => {
  it('does not report a renewal refused because the lock was released on purpose meanwhile', async () => {
    const s = leasesWithManualRenew();
    await s.renewing;
    s.leases.remove([f]);
    s.fail(notHeld);
    await new Promise((r) => setImmediate(r));
    expect(s.failed).toEqual([]);
    s.leases.clear();
  });

  it('a renewal refused for a lock still thought held: the lock is lost (expired), not a renewal failure', async () => {
    const s = leasesWithManualRenew();
    const known = new SessionState(s.leases, { ttlFor: () => 60_000, autoRenew: false, abandoned: () => undefined });
    await s.renewing;
    // As the client reads the refusal: before the renewal's own caller hears of it.
    known.afterError('lock.renew', notHeld);
    s.fail(notHeld);
    await new Promise((r) => setImmediate(r));
    expect(s.failed).toEqual([]);
    expect(s.lost).toEqual([{ resource: f, mode: 'write', fences: [7], reason: 'expired' }]);
    expect(s.leases.size).toBe(0);
    s.leases.clear();
  });
});
