import { describe, expect, it } from 'vitest';
import { until } from '../helpers/until.ts';
import { addFns, droppableSockets, next, useSdk } from '../helpers/sdk.ts';

describe('SDK path locks', () => {
  const t = useSdk();

  it('a handle of paths and functions: paths, fences of each, renew, downgrade, release', async () => {
    const s = await t.server();
    const a = await t.client(s, 'a');
    const [f] = (await addFns(a, ['f'])) as [number];
    const lock = await a.acquire({ functions: [f], paths: ['src/app', 'docs'], mode: 'write' });
    expect(lock.paths.sort()).toEqual(['docs', 'src/app']);
    expect(lock.functions).toEqual([f]);
    expect(Object.keys(lock.fences)).toEqual([String(f)]);
    expect(Object.keys(lock.pathFences).sort()).toEqual(['docs', 'src/app']);
    // A path's fence is greater than every fence the program issued before it.
    for (const fence of Object.values(lock.pathFences)) expect(fence).toBeGreaterThan(lock.fences[String(f)] as number);
    expect(lock.state).toBe('held');

    const renewed = await lock.renew(60_000);
    expect(renewed.map((g) => g.resource).filter((r) => 'path' in r)).toHaveLength(2);
    const down = await lock.downgrade();
    expect(down.every((g) => g.mode === 'read')).toBe(true);
    expect(lock.pathFences).toEqual(
      Object.fromEntries(lock.grants.flatMap((g) => ('path' in g.resource ? [[g.resource.path, g.fence]] : []))),
    );

    const released = await lock.release();
    expect(released).toHaveLength(3);
    expect(lock.state).toBe('released');
    expect(a.held()).toEqual([]);
  });

  it('waits behind a lock on a directory above, is told its position, and the holder hears of its waiters', async () => {
    const s = await t.server();
    const [a, b] = await Promise.all([t.client(s, 'a'), t.client(s, 'b')]);
    const dir = await a.acquire({ paths: ['src'], mode: 'write' });
    const told = next(a, 'lock.waiters');
    const positions: number[] = [];
    const waiting = b.acquire({
      paths: ['src/app/main.ts'],
      mode: 'write',
      onQueue: (q) => positions.push(...q.positions.map((p) => p.position)),
    });
    const [waiters] = await told;
    expect(waiters.locks).toMatchObject([{ resource: { program: 'main', path: 'src' }, waiting: 1 }]);
    await until('queued', 10_000, async () => (positions.length > 0 ? true : undefined));
    expect(positions[0]).toBe(1);
    await dir.release();
    const file = await waiting;
    expect(file.paths).toEqual(['src/app/main.ts']);
    expect(file.held).toBe(true);
  });

  it('a path handle is suspended while the socket is down, held again once resumed, and lost when its lease ran out', async () => {
    const s = await t.server({ sessionGraceMs: 60_000 });
    const sockets = droppableSockets();
    const a = await t.client(s, 'a', {
      WebSocket: sockets.WebSocket,
      reconnect: { initialDelayMs: 10, maxDelayMs: 50, jitter: 0 },
    });
    const lock = await a.acquire({ paths: ['src'], mode: 'write' });
    const states: string[] = [];
    a.on('suspended', () => states.push(lock.state));
    const resumed = next(a, 'connected');
    sockets.drop();
    await resumed;
    states.push(lock.state);
    expect(states).toEqual(['suspended', 'held']);

    const short = await a.acquire({ paths: ['lib'], mode: 'write', ttlMs: 300 });
    const lost = next(a, 'lost');
    expect((await lost)[0]).toMatchObject({ resource: { program: 'main', path: 'lib' }, reason: 'expired' });
    expect(short.state).toBe('lost');
    expect(short.signal.aborted).toBe(true);
    expect(lock.state).toBe('held');
  });
});
