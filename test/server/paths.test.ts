import { describe, expect, it } from 'vitest';
import { addFunctions, useServers } from '../helpers/server.ts';

// docs/protocol.md, "Paths", over the wire: every rule, on both stores (test/server runs on both).

const repo = (path: string) => ({ program: 'repo', path });

describe('path locks over the wire', () => {
  const t = useServers();

  it('refuses each malformed path with -32602 naming the field and the rule', async () => {
    const s = await t.server();
    const a = await t.agent(s, 'a');
    const cases: Array<[string, RegExp]> = [
      ['', /paths\.0: .*not empty/],
      ['/src', /paths\.0: .*must not start with "\/"/],
      ['src/', /paths\.0: .*must not end with "\/"/],
      ['src//a', /paths\.0: .*empty segment/],
      ['src/./a', /paths\.0: .*"\." or "\.\." segment/],
      ['..', /paths\.0: .*"\." or "\.\." segment/],
      ['src/\u0000', /paths\.0: .*NUL/],
      ['src/\ud800', /paths\.0: .*lone surrogate/],
      ['é'.repeat(513), /paths\.0: .*at most 1024 bytes/],
    ];
    for (const [path, rule] of cases) {
      const err = await a.fail('lock.acquire', { program: 'repo', paths: [path], mode: 'write' });
      expect(err.code, JSON.stringify(path)).toBe(-32602);
      expect(err.message).toMatch(rule);
    }
    for (const method of ['lock.release', 'lock.renew', 'lock.downgrade']) {
      const err = await a.fail(method, { program: 'repo', paths: ['a//b'] });
      expect(err.code).toBe(-32602);
      expect(err.message).toMatch(/paths\.0: .*empty segment/);
    }
    // 1024 bytes is the limit, not less: 512 two-byte characters pass.
    const ok = await a.call('lock.acquire', { program: 'repo', paths: ['é'.repeat(512)], mode: 'write' });
    expect(ok.status).toBe('granted');
  });

  it('creates the program empty on the first path lock, and names path resources everywhere', async () => {
    const s = await t.server();
    const [a, b, watcher] = [await t.agent(s, 'a'), await t.agent(s, 'b'), await t.agent(s, 'w', 'observer')];
    await watcher.call('events.subscribe', { topics: ['locks'] });
    const g = await a.call('lock.acquire', { program: 'repo', paths: ['src/a.ts'], mode: 'write' });
    expect(g.grants).toEqual([
      { resource: repo('src/a.ts'), mode: 'write', fence: expect.any(Number), expiresAt: expect.any(String) },
    ]);
    expect((await a.call('program.get', { program: 'repo' })).functions).toEqual([]);
    const q = await b.call('lock.acquire', { program: 'repo', paths: ['src'], mode: 'write', wait: true });
    expect(q.positions).toEqual([{ resource: repo('src'), position: 1 }]);
    const status = await watcher.call('lock.status', { program: 'repo' });
    expect(status.resources.map((r: { resource: unknown }) => r.resource)).toEqual([repo('src'), repo('src/a.ts')]);
    const queued = await watcher.notification('event', (e) => e.type === 'queued');
    expect(queued.data.resources).toEqual([repo('src')]);
    // With functions named, an unknown program stays unknown.
    const err = await a.fail('lock.acquire', { program: 'nope', paths: ['x'], functions: [1], mode: 'write' });
    expect(err.data?.type).toBe('NOT_FOUND');
    // Observers may not lock (nor create programs).
    const denied = await watcher.fail('lock.acquire', { program: 'other', paths: ['x'], mode: 'read' });
    expect(denied.data?.type).toBe('FORBIDDEN');
    expect((await a.call('program.list')).programs.map((p: { name: string }) => p.name)).not.toContain('other');
  });

  it('conflicts by whole segments, in both directions', async () => {
    const s = await t.server();
    const [a, b] = [await t.agent(s, 'a'), await t.agent(s, 'b')];
    await a.call('lock.acquire', { program: 'repo', paths: ['src/a'], mode: 'write' });
    expect((await b.call('lock.acquire', { program: 'repo', paths: ['src/ab'], mode: 'write' })).status).toBe(
      'granted',
    );
    const err = await b.fail('lock.acquire', { program: 'repo', paths: ['src'], mode: 'read' });
    expect(err.data?.type).toBe('LOCK_DENIED');
    expect(err.data?.blockers).toEqual([
      {
        resource: repo('src'),
        holders: [
          { sessionId: a.sessionId, name: 'a', mode: 'write', resource: repo('src/a'), expiresAt: expect.any(String) },
        ],
        queueLength: 0,
      },
    ]);
    const below = await b.fail('lock.acquire', { program: 'repo', paths: ['src/a/deep/x.ts'], mode: 'read' });
    expect(below.data?.type).toBe('LOCK_DENIED');
  });

  it('keeps FIFO across the hierarchy and pushes positions', async () => {
    const s = await t.server();
    const [a, b, c] = [await t.agent(s, 'a'), await t.agent(s, 'b'), await t.agent(s, 'c')];
    await a.call('lock.acquire', { program: 'repo', paths: ['src/a.ts'], mode: 'write' });
    const dir = await b.call('lock.acquire', { program: 'repo', paths: ['src'], mode: 'write', wait: true });
    const file = await c.call('lock.acquire', { program: 'repo', paths: ['src/b.ts'], mode: 'write', wait: true });
    expect(file.positions).toEqual([{ resource: repo('src/b.ts'), position: 2 }]);
    await a.call('lock.release', { program: 'repo', paths: ['src/a.ts'] });
    expect((await b.notification('lock.granted')).ticket).toBe(dir.ticket);
    expect(await c.notification('lock.queue')).toEqual({
      ticket: file.ticket,
      positions: [{ resource: repo('src/b.ts'), position: 1 }],
    });
    await b.close();
    expect((await c.notification('lock.granted')).ticket).toBe(file.ticket);
  });

  it('mixes paths and functions in one request, and renews, downgrades and releases paths', async () => {
    const s = await t.server();
    const a = await t.agent(s, 'a');
    const [f] = await addFunctions(a, ['f'], 'main');
    const g = await a.call('lock.acquire', { functions: [f], paths: ['docs', 'src'], mode: 'write' });
    expect(g.grants.map((x: { resource: unknown }) => x.resource)).toEqual([
      { program: 'main', function: f },
      { program: 'main', path: 'docs' },
      { program: 'main', path: 'src' },
    ]);
    const fences = g.grants.map((x: { fence: number }) => x.fence);
    const renewed = await a.call('lock.renew', { paths: ['src'], ttlMs: 60_000 });
    expect(renewed.grants[0]).toMatchObject({ resource: { program: 'main', path: 'src' }, fence: fences[2] });
    const down = await a.call('lock.downgrade', { paths: ['docs'] });
    expect(down.grants[0]).toMatchObject({ mode: 'read', fence: fences[1] });
    const notHeld = await a.fail('lock.release', { paths: ['src/x'] });
    expect(notHeld.data?.type).toBe('NOT_HELD');
    const released = await a.call('lock.release', { functions: [f], paths: ['docs', 'src'] });
    expect(released.released).toHaveLength(3);
  });

  it('upgrades a path at once when nobody holds on, above or below it, and ends a lease as for functions', async () => {
    const s = await t.server();
    const [a, b] = [await t.agent(s, 'a'), await t.agent(s, 'b')];
    const read = await a.call('lock.acquire', { program: 'repo', paths: ['src'], mode: 'read', ttlMs: 200 });
    const up = await a.call('lock.acquire', { program: 'repo', paths: ['src'], mode: 'write', ttlMs: 200 });
    expect(up.grants[0]).toMatchObject({ mode: 'write' });
    expect(up.grants[0].fence).toBeGreaterThan(read.grants[0].fence);
    const q = await b.call('lock.acquire', { program: 'repo', paths: ['src/x'], mode: 'write', wait: true });
    expect((await a.notification('lock.expired')).locks[0].resource).toEqual(repo('src'));
    expect((await b.notification('lock.granted')).ticket).toBe(q.ticket);
  });

  it('gives a path a fence above every fence the program issued before', async () => {
    const s = await t.server();
    const a = await t.agent(s, 'a');
    const [f] = await addFunctions(a, ['f'], 'main');
    const fn = await a.call('lock.acquire', { functions: [f], mode: 'write' });
    const path = await a.call('lock.acquire', { paths: ['src'], mode: 'write' });
    expect(path.grants[0].fence).toBeGreaterThan(fn.grants[0].fence);
  });

  it('refuses a wait that closes a cycle through the hierarchy, and answers a retried key once', async () => {
    const s = await t.server();
    const [a, b] = [await t.agent(s, 'a'), await t.agent(s, 'b')];
    await a.call('lock.acquire', { program: 'repo', paths: ['src/a'], mode: 'write' });
    await b.call('lock.acquire', { program: 'repo', paths: ['docs'], mode: 'write' });
    const first = await a.call('lock.acquire', {
      program: 'repo',
      paths: ['docs/x'],
      mode: 'write',
      wait: true,
      key: 'k1',
    });
    const again = await a.call('lock.acquire', {
      program: 'repo',
      paths: ['docs/x'],
      mode: 'write',
      wait: true,
      key: 'k1',
    });
    expect(again.ticket).toBe(first.ticket);
    const err = await b.fail('lock.acquire', { program: 'repo', paths: ['src'], mode: 'write', wait: true });
    expect(err.data?.type).toBe('DEADLOCK');
  });
});

describe('the holder hears of its waiters', () => {
  const t = useServers();

  it('is told how many wait behind its locks and for how long, for paths and functions alike', async () => {
    const s = await t.server();
    const [a, b, c] = [await t.agent(s, 'a'), await t.agent(s, 'b'), await t.agent(s, 'c')];
    const [f] = await addFunctions(a, ['f'], 'main');
    await a.call('lock.acquire', { paths: ['src/a.ts'], functions: [f], mode: 'write' });
    await b.call('lock.acquire', { paths: ['src'], mode: 'read', wait: true });
    const first = await a.notification('lock.waiters');
    expect(first).toEqual({
      locks: [
        {
          resource: { program: 'main', path: 'src/a.ts' },
          mode: 'write',
          waiting: 1,
          oldestWaitMs: expect.any(Number),
        },
      ],
    });
    // The next change is coalesced into one push with the state then: both locks, one waiter each.
    await c.call('lock.acquire', { functions: [f], mode: 'read', wait: true });
    const next = await a.notification('lock.waiters');
    expect(next.locks.map((l: { resource: unknown; waiting: number }) => [l.resource, l.waiting])).toEqual([
      [{ program: 'main', function: f }, 1],
      [{ program: 'main', path: 'src/a.ts' }, 1],
    ]);
    expect(b.pending('lock.waiters')).toEqual([]);
  });
});
