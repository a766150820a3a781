import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import { next, useSdk } from '../helpers/sdk.ts';
import { until } from '../helpers/until.ts';
import { useBridges } from '../helpers/mcp-bridges.ts';

/** A git repository with one commit of src/a.ts. */
function repository(): string {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-mcp-paths-'));
  const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, stdio: 'ignore' });
  git('init', '-q', '-b', 'main');
  git('config', 'user.email', 'agent@example.com');
  git('config', 'user.name', 'agent');
  mkdirSync(join(dir, 'src'));
  writeFileSync(join(dir, 'src/a.ts'), 'a\n');
  git('add', '.');
  git('commit', '-q', '-m', 'start');
  return dir;
}

// Each bridge is a fresh node process on the sources (tsx): a few seconds to start on a loaded machine.
describe('lockstep mcp path tools', { timeout: 90_000 }, () => {
  const t = useSdk();
  const bridge = useBridges();
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('two agents contend for src/: the second sees its position as progress, the first its waiter, and a kill -9 of the first frees src at once', async () => {
    const dir = repository();
    dirs.push(dir);
    const s = await t.server();
    const observer = await t.client(s, 'observer');
    const [a, b] = await Promise.all([bridge(s.url, 'a', ['--repo', dir]), bridge(s.url, 'b', ['--repo', dir])]);

    const granted = await a.call('path_lock', { paths: ['src/'], mode: 'write', description: 'refactor' });
    expect(granted.isError).toBe(false);
    expect(granted.text).toMatch(/^granted: write lock on src in main, fence \d+, lease until /);
    // Each agent's session is where the guard finds it, named by its bridge's pid.
    const sessions = readdirSync(join(dir, '.git/lockstep/sessions')).map(
      (f) => JSON.parse(readFileSync(join(dir, '.git/lockstep/sessions', f), 'utf8')) as { name: string; pid: number },
    );
    expect(sessions.map((r) => [r.name, r.pid]).sort()).toEqual(
      [
        ['a', a.pid],
        ['b', b.pid],
      ].sort(),
    );

    const progress: string[] = [];
    let queued!: () => void;
    const isQueued = new Promise<void>((resolve) => (queued = resolve));
    const second = b.call(
      'path_lock',
      { paths: ['src/**/*.ts'], mode: 'write' },
      {
        onProgress: (message) => {
          progress.push(message);
          queued();
        },
      },
    );
    await isQueued;
    expect(progress).toEqual(['queued: position 1 for src in main']);

    // The holder hears of its waiter (a coalesced push): at the top of a result, once it has come.
    const status = await until('a is told of its waiter', 30_000, async () => {
      const r = await a.call('path_status', {});
      return r.text.includes('waiting behind your') ? r : undefined;
    });
    expect(status.text).toMatch(/^Since your last call:\n- 1 agent\(s\) waiting behind your write lock on src in main/);
    expect(status.text).toContain('  src  held by you write #');
    expect(status.text).toContain('; queue: 1. b write');
    expect(status.text).toMatch(/yours \(1\):\n- write lock on src, fence \d+: held; 1 waiting behind it/);

    await observer.events.subscribe({ topics: ['locks'] });
    const released = next(observer, 'event', (e) => e.type === 'released');
    process.kill(a.pid, 'SIGKILL');
    await released;
    const got = await second;
    expect(got.isError).toBe(false);
    expect(got.text).toMatch(/^src\/\*\*\/\*\.ts is locked as src\ngranted: write lock on src in main, fence \d+/);
    expect(got.text).toContain('(after waiting in the queue)');
  });

  it('refuses a path held above it naming path_lock and the lock held, shows a path free here but held below, and answers path_status on a new program', async () => {
    const s = await t.server();
    const holder = await t.client(s, 'holder');
    const waiter = await t.client(s, 'waiter');
    const a = await bridge(s.url, 'a');

    const fresh = await a.call('path_status', { program: 'webapp' });
    expect(fresh.isError).toBe(false);
    expect(fresh.text).toBe('no path locks in webapp yet');

    await holder.acquire({ program: 'webapp', paths: ['src/app'], mode: 'write', description: 'refactor' });
    const refused = await a.call('path_lock', {
      program: 'webapp',
      paths: ['src/app/x.ts'],
      mode: 'write',
      wait: false,
    });
    expect(refused.isError).toBe(true);
    expect(refused.text).toMatch(
      /\n- src\/app\/x\.ts in webapp: held by holder \(write lock on src\/app, "refactor", until [^)]+\); 0 waiting\nCall path_lock with wait: true to queue for it\.$/,
    );

    const queued = new Promise<void>((resolve) => {
      // Still waiting when the test ends and its client closes.
      waiter
        .acquire({ program: 'webapp', paths: ['src'], mode: 'write', onQueue: () => resolve() })
        .catch(() => undefined);
    });
    await queued;
    const status = await a.call('path_status', { program: 'webapp' });
    expect(status.text).toMatch(
      /\n {2}src\/ {2}free here; held below; queue: 1\. waiter write\n {4}app {2}held by holder write #\d+\n/,
    );
  });

  it('shows only the latest count of waiters behind a lock, and none once nobody waits any more', async () => {
    const s = await t.server();
    const a = await bridge(s.url, 'a');
    const logs: string[] = [];
    const heard: Array<{ pattern: RegExp; resolve: () => void }> = [];
    a.client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
      logs.push(String(n.params.data));
      for (const h of heard) if (h.pattern.test(String(n.params.data))) h.resolve();
    });
    const hear = (pattern: RegExp) =>
      logs.some((l) => pattern.test(l))
        ? Promise.resolve()
        : new Promise<void>((resolve) => heard.push({ pattern, resolve }));
    expect((await a.call('path_lock', { paths: ['src'], mode: 'write' })).isError).toBe(false);

    const stop = new AbortController();
    const wait = async (name: string) => {
      const c = await t.client(s, name);
      c.acquire({ paths: ['src'], mode: 'write', signal: stop.signal }).catch(() => undefined);
    };
    await wait('w1');
    await hear(/^1 agent\(s\) waiting behind your write lock on src in main/);
    await wait('w2');
    await hear(/^2 agent\(s\) waiting behind your write lock on src in main/);
    const status = await a.call('path_status', {});
    expect(status.data.notices).toEqual([expect.stringMatching(/^2 agent\(s\) waiting behind your write lock on src/)]);

    await wait('w3');
    await hear(/^3 agent\(s\) waiting/);
    stop.abort();
    await hear(/^nobody waits behind your write lock on src in main any more$/);
    const after = await a.call('path_status', {});
    expect(after.text).toMatch(/^path locks of program main \(1\):/);
  });

  it('refuses a glob that would cover the whole repository, and records what was committed under a released write lock', async () => {
    const dir = repository();
    dirs.push(dir);
    const s = await t.server();
    const observer = await t.client(s, 'observer');
    const a = await bridge(s.url, 'a', ['--repo', dir]);
    const unbounded = await a.call('path_lock', { paths: ['**/*.md'], mode: 'write' });
    expect(unbounded.isError).toBe(true);
    expect(unbounded.text).toContain('"**/*.md" would cover the whole repository');

    await a.call('path_lock', { paths: ['src'], mode: 'write' });
    writeFileSync(join(dir, 'src/a.ts'), 'a2\n');
    execFileSync('git', ['commit', '-q', '--no-verify', '-am', 'change a'], { cwd: dir });
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: dir, encoding: 'utf8' }).trim();
    writeFileSync(join(dir, 'src/b.ts'), 'not committed\n');
    const released = await a.call('path_release', { paths: ['src/'] });
    expect(released.text).toBe(
      [
        'released: src in main',
        `recorded 1 changed file(s) as of commit ${head}`,
        'warning: uncommitted changes under what you released, not recorded and no longer covered by your lock: src/b.ts',
      ].join('\n'),
    );
    const { changes } = await observer.call('paths.check', {
      program: 'main',
      session: observer.sessionId as string,
      changes: [{ path: 'src/a.ts', base: null }],
    });
    expect(changes[0]?.recorded).toMatchObject({ commit: head, name: 'a' });
  });

  it('records a file deleted under a released write lock as deleted', async () => {
    const dir = repository();
    dirs.push(dir);
    const s = await t.server();
    const observer = await t.client(s, 'observer');
    const a = await bridge(s.url, 'a', ['--repo', dir]);
    await a.call('path_lock', { paths: ['src'], mode: 'write' });
    execFileSync('git', ['rm', '-q', 'src/a.ts'], { cwd: dir });
    execFileSync('git', ['commit', '-q', '--no-verify', '-m', 'delete a'], { cwd: dir });
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: dir, encoding: 'utf8' }).trim();
    const released = await a.call('path_release', {});
    expect(released.text).toBe(
      ['released: src in main', `recorded 1 changed file(s), 1 of them deleted, as of commit ${head}`].join('\n'),
    );
    const { changes } = await observer.call('paths.check', {
      program: 'main',
      session: observer.sessionId as string,
      changes: [{ path: 'src/a.ts', base: 'a'.repeat(40) }],
    });
    expect(changes[0]?.recorded).toMatchObject({ blob: null, commit: head, name: 'a' });
  });
});
