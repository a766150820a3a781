import { describe, expect, it } from 'vitest';
import { DEMO_FUNCTIONS } from '../../src/cli/demo-program.ts';
import { useSdk } from '../helpers/sdk.ts';
import { lockstep } from '../helpers/cli.ts';

describe('lockstep demo', { timeout: 60_000 }, () => {
  const t = useSdk();

  it('runs agents for the given time, exits 0, and they have edited', async () => {
    const s = await t.server();
    const started = Date.now();
    const ran = await lockstep(['demo', '--url', s.url, '--seconds', '3', '--agents', '4', '--seed', '42']);
    expect(ran.stderr).toBe('');
    expect(ran.code).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(3_000);
    const committed = Number(ran.stdout.match(/^edits committed: (\d+)/m)?.[1]);
    expect(committed).toBeGreaterThan(0);

    const c = await t.client(s, 'checker', { role: 'observer' });
    const program = await c.program.get();
    expect(program.functions.map((f) => f.name).sort()).toEqual([...DEMO_FUNCTIONS].sort());
    const { revisions } = await c.history.list({ limit: 1000 });
    // Revision 1 created the functions; every later one is an agent's committed edit.
    expect(revisions.length).toBe(committed + 1);
    expect(new Set(revisions.slice(1).map((r) => r.by.name)).size).toBeGreaterThan(1);
    expect((await c.agent.list()).agents.map((x) => x.name)).toEqual(['checker']);
    expect((await c.lock.status({})).resources).toEqual([]);
  });

  it('shows a queue, a lease warning and an expiry within seconds: a straggler stops renewing', async () => {
    const s = await t.server();
    const ran = await lockstep(['demo', '--url', s.url, '--seconds', '8', '--agents', '3', '--seed', '1', '--quiet']);
    expect(ran).toMatchObject({ code: 0, stderr: '' });
    const types = new Set(
      s
        .inspect()
        .events.replay(0, new Set(['locks']))
        .items.map((e) => e.type),
    );
    expect([...types]).toEqual(expect.arrayContaining(['granted', 'queued', 'expiring', 'expired', 'released']));
    const total = ran.stdout.split('\n').find((l) => l.trimStart().startsWith('total'));
    const header = ran.stdout.split('\n').find((l) => l.trimStart().startsWith('AGENT'));
    const expired = header?.trim().split(/\s+/).indexOf('EXPIRED') ?? -1;
    expect(Number(total?.trim().split(/\s+/)[expired])).toBeGreaterThanOrEqual(1);
  });
});
