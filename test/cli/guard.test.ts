import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { changedContents, headCommit, publishSession } from '../../src/client/index.ts';
import { BIN, collect, type Ran } from '../helpers/cli.ts';
import { GUARD_HELP } from '../../src/cli/guard.ts';
import { useSdk } from '../helpers/sdk.ts';

const run = promisify(execFile);

/** A git repository in a temporary directory, with one commit of three files (src, docs and lib). */
async function repository(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-guard-'));
  const git = (...args: string[]) => run('git', args, { cwd: dir });
  await git('init', '-q', '-b', 'main');
  await git('config', 'user.email', 'agent@example.com');
  await git('config', 'user.name', 'agent');
  for (const [path, text] of [
    ['src/a.ts', 'a\n'],
    ['docs/x.md', 'x\n'],
    ['lib/y.ts', 'y\n'],
  ] as const) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  await git('add', '.');
  await git('commit', '-q', '-m', 'start');
  return dir;
}

/** `lockstep <args>` run in `cwd` (the hook's own way: git runs it at the top of the work tree). */
function lockstepIn(cwd: string, args: string[], env: Record<string, string> = {}): Promise<Ran> {
  return collect(
    spawn(process.execPath, [BIN, ...args], {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
}

/** Changes `path` and commits it: git runs the installed hook, a child of this process. */
async function commit(dir: string, path: string, text: string, env: Record<string, string> = {}): Promise<Ran> {
  writeFileSync(join(dir, path), text);
  await run('git', ['add', '-A'], { cwd: dir });
  return collect(
    spawn('git', ['commit', '-q', '-m', `change ${path}`], {
      cwd: dir,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
}

// Each commit runs the hook, a fresh node process on the sources (tsx): seconds on a loaded machine.
describe('lockstep guard', { timeout: 120_000 }, () => {
  const t = useSdk();
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  async function setUp() {
    const dir = await repository();
    dirs.push(dir);
    const s = await t.server();
    const installed = await lockstepIn(dir, ['guard', '--install', '--url', s.url]);
    expect(installed.code).toBe(0);
    const hook = readFileSync(join(dir, '.git/hooks/pre-commit'), 'utf8');
    expect(hook).toContain('# lockstep guard');
    const alice = await t.client(s, 'alice');
    const published = publishSession(alice, { cwd: dir });
    expect(published.file).toBe(join(dir, '.git/lockstep/sessions', `${process.pid}.json`));
    return { dir, s, alice, published };
  }

  it("--help gives --url's default as the guard uses it: the session's URLs, else the default address", () => {
    expect(GUARD_HELP.replace(/\s+/g, ' ')).toContain(
      "--url <url> server address (env LOCKSTEP_URL; default the URLs the agent's session was opened on, else ws://127.0.0.1:7420/ws)",
    );
    expect(GUARD_HELP).not.toContain('(default ws://127.0.0.1:7420/ws;');
  });

  it('lets a commit of a held path through, refuses one of a path held by another session (same name too), naming it and how to queue', async () => {
    const { dir, s, alice, published } = await setUp();
    const bob = await t.client(s, 'bob');
    const otherAlice = await t.client(s, 'alice');
    await alice.acquire({ paths: ['src'], mode: 'write' });
    await bob.acquire({ paths: ['docs/x.md'], mode: 'write', description: 'rewrite the intro' });
    await otherAlice.acquire({ paths: ['lib'], mode: 'write' });

    const held = await commit(dir, 'src/a.ts', 'a2\n');
    expect(held.stderr).toBe('');
    expect(held.code).toBe(0);

    const unheld = await commit(dir, 'docs/x.md', 'x2\n');
    expect(unheld.code).not.toBe(0);
    expect(unheld.stderr).toContain(`guard: commit refused for alice (session ${alice.sessionId}) in program main:`);
    expect(unheld.stderr).toContain(
      `docs/x.md: your session holds no write lock covering it; held by bob (session ${bob.sessionId}), write lock on docs/x.md ("rewrite the intro"); nobody waiting`,
    );
    expect(unheld.stderr).toContain(
      'path_lock {"program": "main", "paths": ["docs/x.md"], "mode": "write"} or the SDK\'s client.acquire',
    );
    await run('git', ['reset', '-q', '--hard'], { cwd: dir });

    // Same name, another session: not the committer's lock.
    const sameName = await commit(dir, 'lib/y.ts', 'y2\n');
    expect(sameName.code).not.toBe(0);
    expect(sameName.stderr).toContain(
      `lib/y.ts: your session holds no write lock covering it; held by alice (session ${otherAlice.sessionId}), write lock on lib`,
    );
    await run('git', ['reset', '-q', '--hard'], { cwd: dir });

    // A rename changes both sides: the destination too must be held.
    await run('git', ['mv', 'src/a.ts', 'docs/a.ts'], { cwd: dir });
    const renamed = await collect(
      spawn('git', ['commit', '-q', '-m', 'move'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    expect(renamed.code).not.toBe(0);
    expect(renamed.stderr).toContain('docs/a.ts: your session holds no write lock covering it; nobody holds it');
    expect(renamed.stderr).not.toContain('src/a.ts:');
    await run('git', ['reset', '-q', '--hard'], { cwd: dir });

    await alice.close();
    expect(existsSync(published.file ?? join(dir, '.git/lockstep/sessions', `${process.pid}.json`))).toBe(false);
  });

  it('refuses a commit based on an older copy than the one last released, naming the commit to bring in', async () => {
    const { dir, s, alice } = await setUp();
    const bob = await t.client(s, 'bob');
    const start = headCommit(dir);
    // Bob, on his branch, changes lib/y.ts under his lock and releases it with what he committed.
    const bobLock = await bob.acquire({ paths: ['lib'], mode: 'write' });
    await run('git', ['checkout', '-q', '-b', 'bob'], { cwd: dir });
    const bobs = await commit(dir, 'lib/y.ts', 'y from bob\n', { LOCKSTEP_SESSION: bob.sessionId as string });
    expect(bobs.code).toBe(0);
    const contents = changedContents(dir, start, ['lib']);
    const bobCommit = headCommit(dir) as string;
    expect(contents).toEqual([{ path: 'lib/y.ts', blob: expect.stringMatching(/^[0-9a-f]{40}$/), commit: bobCommit }]);
    await bobLock.release({ contents });
    await run('git', ['checkout', '-q', 'main'], { cwd: dir });

    await alice.acquire({ paths: ['lib'], mode: 'write' });
    const stale = await commit(dir, 'lib/y.ts', 'y from alice\n');
    expect(stale.code).not.toBe(0);
    expect(stale.stderr).toContain(`lib/y.ts: your change is based on blob `);
    expect(stale.stderr).toContain(`bring in ${bobCommit} first`);
    await run('git', ['reset', '-q', '--hard'], { cwd: dir });

    await run('git', ['merge', '-q', '--ff-only', 'bob'], { cwd: dir });
    const current = await commit(dir, 'lib/y.ts', 'y from alice, on bob\n');
    expect(current.stderr).toBe('');
    expect(current.code).toBe(0);
  });

  it('refuses a change made on a copy that still has a file the last holder deleted, not a new file of that name', async () => {
    const { dir, s, alice } = await setUp();
    const bob = await t.client(s, 'bob');
    const start = headCommit(dir);
    // Bob, on his branch, deletes lib/y.ts under his lock and releases it with what he committed.
    const bobLock = await bob.acquire({ paths: ['lib'], mode: 'write' });
    await run('git', ['checkout', '-q', '-b', 'bob'], { cwd: dir });
    await run('git', ['rm', '-q', 'lib/y.ts'], { cwd: dir });
    const bobs = await collect(
      spawn('git', ['commit', '-q', '-m', 'delete lib/y.ts'], {
        cwd: dir,
        env: { ...process.env, LOCKSTEP_SESSION: bob.sessionId as string },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    expect(bobs.stderr).toBe('');
    expect(bobs.code).toBe(0);
    const contents = changedContents(dir, start, ['lib']);
    const bobCommit = headCommit(dir) as string;
    expect(contents).toEqual([{ path: 'lib/y.ts', blob: null, commit: bobCommit }]);
    await bobLock.release({ contents });
    await run('git', ['checkout', '-q', 'main'], { cwd: dir });

    await alice.acquire({ paths: ['lib'], mode: 'write' });
    const stale = await commit(dir, 'lib/y.ts', 'y from alice\n');
    expect(stale.code).not.toBe(0);
    expect(stale.stderr).toContain(`lib/y.ts: your change is based on blob `);
    expect(stale.stderr).toContain(`but bob (session ${bob.sessionId}) released it at `);
    expect(stale.stderr).toContain(
      ` as deleted (commit ${bobCommit}). You edited an older copy: bring in ${bobCommit} first`,
    );
    await run('git', ['reset', '-q', '--hard'], { cwd: dir });

    // On bob's commit the file is gone: writing it again is a new file, absent on both sides.
    await run('git', ['merge', '-q', '--ff-only', 'bob'], { cwd: dir });
    mkdirSync(join(dir, 'lib'), { recursive: true });
    const created = await commit(dir, 'lib/y.ts', 'a new y from alice\n');
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
  });

  it("a merge's commit is checked for what the committer changed, not for what comes in from the merged commits", async () => {
    const { dir, s, alice } = await setUp();
    const bob = await t.client(s, 'bob');
    await bob.acquire({ paths: ['lib'], mode: 'write' });
    await alice.acquire({ paths: ['src'], mode: 'write' });
    await run('git', ['checkout', '-q', '-b', 'bob'], { cwd: dir });
    expect((await commit(dir, 'lib/y.ts', 'y from bob\n', { LOCKSTEP_SESSION: bob.sessionId as string })).code).toBe(0);
    await run('git', ['checkout', '-q', 'main'], { cwd: dir });
    expect((await commit(dir, 'src/a.ts', 'a from alice\n')).code).toBe(0);

    await run('git', ['merge', '-q', '--no-ff', '--no-commit', 'bob'], { cwd: dir });
    const merged = await collect(
      spawn('git', ['commit', '-q', '--no-edit'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    expect(merged.stderr).toBe('');
    expect(merged.code).toBe(0);

    // A change of lib made while merging is the committer's own: refused, as alice does not hold lib.
    await run('git', ['reset', '-q', '--hard', 'HEAD~1'], { cwd: dir });
    await run('git', ['merge', '-q', '--no-ff', '--no-commit', 'bob'], { cwd: dir });
    writeFileSync(join(dir, 'lib/y.ts'), 'y from bob, changed by alice\n');
    await run('git', ['add', '-A'], { cwd: dir });
    const edited = await collect(
      spawn('git', ['commit', '-q', '--no-edit'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    expect(edited.code).not.toBe(0);
    expect(edited.stderr).toContain(
      `lib/y.ts: your session holds no write lock covering it; held by bob (session ${bob.sessionId})`,
    );
  });

  it('refuses when no server answers, unless told to let commits through unchecked', async () => {
    const dir = await repository();
    dirs.push(dir);
    writeFileSync(join(dir, 'src/a.ts'), 'changed\n');
    await run('git', ['add', '-A'], { cwd: dir });
    const env = { LOCKSTEP_SESSION: 'some-session' };
    const down = await lockstepIn(dir, ['guard', '--url', 'ws://127.0.0.1:1/ws'], env);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(
      /^lockstep: guard: commit refused: cannot ask the Lockstep server at ws:\/\/127\.0\.0\.1:1\/ws/,
    );
    expect(down.stderr).toContain('LOCKSTEP_GUARD_OFFLINE=allow');
    const allowed = await lockstepIn(dir, ['guard', '--url', 'ws://127.0.0.1:1/ws'], {
      ...env,
      LOCKSTEP_GUARD_OFFLINE: 'allow',
    });
    expect(allowed.code).toBe(0);
    expect(allowed.stderr).toContain('not checked');

    const nobody = await lockstepIn(dir, ['guard', '--url', 'ws://127.0.0.1:1/ws']);
    expect(nobody.code).toBe(1);
    expect(nobody.stderr).toContain('no Lockstep session for this commit');
  });
});
