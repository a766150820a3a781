import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/concurrency/fake-clock.ts';
import { addFns, next, useSdk } from '../helpers/sdk.ts';
import { until } from '../helpers/until.ts';
import { useServerProxies } from '../helpers/server-proxy.ts';
import { useBridges } from '../helpers/mcp-bridges.ts';

// The server runs on a fake clock: leases warn and end when the test moves time on.
describe('lockstep mcp leases', { timeout: 60_000 }, () => {
  const t = useSdk();
  const bridge = useBridges();
  const proxy = useServerProxies();

  it("renews an active agent's lease when the server warns it ends soon", async () => {
    const clock = new FakeClock();
    const s = await t.server({ clock });
    const observer = await t.client(s, 'observer');
    const [f] = (await addFns(observer, ['f'])) as [number];
    const a = await bridge(s.url, 'a');
    await a.call('lock_acquire', { functions: [f], mode: 'write', ttlMs: 60_000 });
    await observer.events.subscribe({ topics: ['locks'] });
    const renewed = next(observer, 'event', (e) => e.type === 'renewed');
    const expired = next(observer, 'event', (e) => e.type === 'expired');
    clock.advance(50_000); // past the warning (48 s), before the end
    await renewed;
    clock.advance(30_000); // past the first lease's end, within the renewed one
    const [status] = (await observer.lock.status({})).resources;
    expect(status?.holders.map((h) => h.name)).toEqual(['a']);
    const overview = await a.call('program_overview', {});
    expect(overview.text).toMatch(/^program main/);
    clock.advance(60_000);
    await expired;
  });

  it("lets an idle agent's lease run out and says so at the top of its next result", async () => {
    const clock = new FakeClock();
    const s = await t.server({ clock });
    const observer = await t.client(s, 'observer');
    const [f] = (await addFns(observer, ['f'])) as [number];
    const a = await bridge(s.url, 'a', ['--idle-release-ms', '0']);
    await a.call('lock_acquire', { functions: [f], mode: 'write', ttlMs: 60_000 });
    await observer.events.subscribe({ topics: ['locks'] });
    const expired = next(observer, 'event', (e) => e.type === 'expired');
    clock.advance(60_000);
    await expired;
    const overview = await a.call('program_overview', {});
    expect(overview.text).toMatch(
      /^Since your last call:\n- lease ending soon, not renewed since you have been idle: write lock on function 1\n- lock lost \(its lease ran out\): write lock on function 1; what you read under it may be stale: lock it and read it again before editing\n\nprogram main/,
    );
    expect(overview.data.notices).toHaveLength(2);
  });

  it('says in its next result that its locks were in doubt while the connection was down, and held again once resumed', async () => {
    const s = await t.server({ sessionGraceMs: 60_000 });
    const p = await proxy(s);
    const observer = await t.client(s, 'observer');
    const [f] = (await addFns(observer, ['f'])) as [number];
    const a = await bridge(p.url, 'a');
    await a.call('lock_acquire', { functions: [f], mode: 'write' });
    p.dropAll();
    await until('the bridge resumed', 30_000, async () => (a.stderr().includes('reconnected') ? true : undefined));
    const overview = await a.call('program_overview', {});
    expect(overview.data.notices).toEqual([
      expect.stringMatching(
        /^connection to the server lost; until the session resumes these are in doubt: write lock on f/,
      ),
      expect.stringMatching(/^session resumed; still held: write lock on f/),
    ]);
  });

  it('path locks alike: renewed while the agent is active, left to run out when it is idle, in doubt while the connection is down', async () => {
    const clock = new FakeClock();
    const s = await t.server({ clock, sessionGraceMs: 600_000 });
    const p = await proxy(s);
    const observer = await t.client(s, 'observer');
    const [active, idle] = await Promise.all([
      bridge(p.url, 'active'),
      bridge(s.url, 'idle', ['--idle-release-ms', '0']),
    ]);
    await active.call('path_lock', { paths: ['src/'], mode: 'write', ttlMs: 60_000 });
    await idle.call('path_lock', { paths: ['docs'], mode: 'write', ttlMs: 60_000 });
    await observer.events.subscribe({ topics: ['locks'] });
    const renewed = next(observer, 'event', (e) => e.type === 'renewed');
    const expired = next(observer, 'event', (e) => e.type === 'expired');
    clock.advance(50_000); // past the warning (48 s), before the end
    await renewed;
    clock.advance(30_000); // past the first leases' end, within the renewed one
    await expired;
    const [status] = (await observer.lock.status({})).resources;
    expect(status).toMatchObject({ resource: { path: 'src' }, holders: [{ name: 'active' }] });
    const told = await idle.call('path_status', {});
    expect(told.text).toMatch(
      /^Since your last call:\n- lease ending soon, not renewed since you have been idle: write lock on docs in main\n- lock lost \(its lease ran out\): write lock on docs in main;/,
    );

    p.dropAll();
    await until('the bridge resumed', 30_000, async () => (active.stderr().includes('reconnected') ? true : undefined));
    const after = await active.call('path_status', {});
    expect(after.data.notices).toEqual([
      expect.stringMatching(
        /^connection to the server lost; until the session resumes these are in doubt: write lock on src in main/,
      ),
      expect.stringMatching(/^session resumed; still held: write lock on src in main/),
    ]);
    expect(after.text).toMatch(/- write lock on src, fence \d+: held/);
  });
});
