import { describe, expect, it } from 'vitest';
import type { StatusSnapshot } from '../../src/cli/status.ts';
import { addFns, useSdk } from '../client/sdk.ts';
import { lockstep } from './run.ts';

describe('lockstep status', () => {
  const t = useSdk();

  it('--json reports the sessions, locks and queues the server knows', async () => {
    const s = await t.server();
    const [a, b] = await Promise.all([t.client(s, 'planner'), t.client(s, 'tester')]);
    const [f, g] = (await addFns(a, ['parse', 'emit'])) as [number, number];
    const lock = await a.acquire({ functions: [f], mode: 'write', description: 'refactor' });
    let queued!: () => void;
    const isQueued = new Promise<void>((resolve) => (queued = resolve));
    void b.acquire({ functions: [f], mode: 'read', onQueue: () => queued() }).catch(() => undefined);
    await isQueued;

    const ran = await lockstep(['status', '--url', s.url, '--json']);
    expect(ran.code).toBe(0);
    const snap = JSON.parse(ran.stdout) as StatusSnapshot;
    expect(snap.server.name).toBe('lockstep');
    expect(snap.programs).toEqual([{ name: 'main', revision: 1, functions: 2 }]);
    expect(snap.agents.map((x) => [x.name, x.locks.length, x.waiting.length]).sort()).toEqual([
      ['planner', 1, 0],
      ['tester', 0, 1],
    ]);
    expect(snap.locks).toMatchObject([
      {
        resource: { program: 'main', function: f },
        name: 'parse',
        holders: [{ name: 'planner', mode: 'write', fence: lock.fences[String(f)], description: 'refactor' }],
        queue: [{ name: 'tester', mode: 'read', position: 1 }],
      },
    ]);
    expect(snap.locks.some((l) => 'function' in l.resource && l.resource.function === g)).toBe(false);
  });

  it('prints tables, filters by --program, and fails clearly without a server', async () => {
    const s = await t.server();
    const a = await t.client(s, 'planner');
    await a.program.create({ name: 'aux' });
    const [f] = (await addFns(a, ['parse'])) as [number];
    await a.acquire({ functions: [f], mode: 'write' });
    const [table, aux, missing] = await Promise.all([
      lockstep(['status', '--url', s.url]),
      lockstep(['status', '--json', '--program', 'aux'], { LOCKSTEP_URL: s.url }),
      lockstep(['status', '--url', 'ws://127.0.0.1:1/ws']),
    ]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/SESSIONS \(1\)[\s\S]*planner\s+agent\s+connected\s+1\s+0/);
    expect(table.stdout).toMatch(/LOCKS \(1\)[\s\S]*main\/f\d+ parse\s+planner write #\d+\s+\d+m\d+s\s+-/);
    expect(JSON.parse(aux.stdout)).toMatchObject({ programs: [{ name: 'aux' }], locks: [] });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^lockstep: cannot connect to ws:\/\/127\.0\.0\.1:1\/ws/);
  });

  it('takes several URLs, comma-separated or as repeated --url, and reports the one it reached', async () => {
    const s = await t.server();
    const down = 'ws://127.0.0.1:1/ws';
    const [listed, repeated, bad] = await Promise.all([
      lockstep(['status', '--url', `${down},${s.url}`, '--json']),
      lockstep(['status', '--json', '--url', down, '--url', s.url]),
      lockstep(['status', '--url', `${s.url},http://x/ws`]),
    ]);
    expect(listed.code).toBe(0);
    expect((JSON.parse(listed.stdout) as StatusSnapshot).url).toBe(s.url);
    expect(repeated.code).toBe(0);
    expect((JSON.parse(repeated.stdout) as StatusSnapshot).url).toBe(s.url);
    expect(bad).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--url: expected ws://HOST:PORT/ws (got "http://x/ws")'),
    });
  });
});
