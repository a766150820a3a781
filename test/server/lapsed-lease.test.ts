import { describe, expect, it, vi } from 'vitest';
import { addFunctions, useServers } from '../helpers/server.ts';

describe('a lease past its end on a busy server', () => {
  const t = useServers();

  it('refuses an edit checked after expiresAt with LOCK_REQUIRED, though the expiry timer has not run', async () => {
    const s = await t.server();
    const [a, b] = [await t.agent(s, 'a'), await t.agent(s, 'b')];
    const [f] = await addFunctions(a, ['f']);
    const g = await a.call('lock.acquire', { functions: [f], mode: 'write', ttlMs: 500 });
    const queued = await b.call('lock.acquire', { functions: [f], mode: 'write', wait: true });
    const expiresAt = Date.parse(g.grants[0].expiresAt);

    // The server runs in this process: block its event loop inside the edit until the lease has
    // ended, so that the edit is checked before the expiry timer can run.
    const programs = s.inspect().programs;
    const requiredLocks = programs.requiredLocks.bind(programs);
    vi.spyOn(programs, 'requiredLocks').mockImplementationOnce((...args) => {
      while (Date.now() <= expiresAt) {
        // busy, as a loaded event loop is
      }
      return requiredLocks(...args);
    });
    const refused = await a.fail('edit.apply', {
      ops: [{ op: 'addNode', function: f, node: { id: 1, op: 'const' } }],
      fences: { [f]: g.grants[0].fence },
    });

    expect(refused).toMatchObject({ code: 428, data: { type: 'LOCK_REQUIRED', missing: [{ function: f }] } });
    expect((await a.notification('lock.expired')).locks).toEqual([g.grants[0]]);
    expect((await b.notification('lock.granted')).ticket).toBe(queued.ticket);
    expect((await a.call('function.get', { function: f })).version).toBe(1);
  });
});
