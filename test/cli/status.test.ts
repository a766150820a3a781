import { describe, expect, it } from 'vitest';
import type { StatusSnapshot } from '../../src/cli/status.ts';
import { VERSION } from '../../src/version.ts';
import { addFns, useSdk } from '../helpers/sdk.ts';
import { collect, lockstep, spawnLockstep, UP_COLUMN } from '../helpers/cli.ts';

// Each test starts several CLI processes at once (each compiles through tsx): slow on a loaded machine.
describe('lockstep status', { timeout: 120_000 }, () => {
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
    // The --program aux look runs beside this one: while it is connected, it is a session the table
    // lists (an observer), as any other dashboard would be; this look leaves out only itself.
    const rows = table.stdout.match(/^SESSIONS \((\d+)\)\n.*\n((?: {2}.*\n)*)/m);
    const sessions = rows?.[2]?.trimEnd().split('\n') ?? [];
    expect(sessions).toHaveLength(Number(rows?.[1]));
    expect(sessions.filter((r) => /^ {2}planner\s+agent\s+connected\s+1\s+0\s/.test(r))).toHaveLength(1);
    expect(sessions.filter((r) => !/^ {2}(planner|lockstep-status\s+observer)\s/.test(r))).toEqual([]);
    expect(table.stdout).toMatch(/LOCKS \(1\)[\s\S]*main\/f\d+ parse\s+planner write #\d+\s+\d+m\d+s\s+-/);
    expect(JSON.parse(aux.stdout)).toMatchObject({ programs: [{ name: 'aux' }], locks: [] });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^lockstep: cannot connect to ws:\/\/127\.0\.0\.1:1\/ws/);
    // A failure starts with the versions too: this command's, and no server's (none answered).
    expect(missing.stdout).toMatch(
      new RegExp(
        `^version: lockstep ${VERSION} \\(this command\\), server unknown \\(no node answered\\)\\n\\nNODES \\(1\\)\\n.*\\n {2}ws://127\\.0\\.0\\.1:1/ws\\s+-\\s+-\\s+-\\s+unreachable: .*ECONNREFUSED`,
      ),
    );
  });

  it('says which version it is and the server is, and shows each node given as its /healthz answers', async () => {
    const s = await t.server();
    const down = 'ws://127.0.0.1:1/ws';
    const [text, json, failed] = await Promise.all([
      lockstep(['status', '--url', `${s.url},${down}`]),
      lockstep(['status', '--json', '--url', `${down},${s.url}`]),
      lockstep(['status', '--json', '--url', down]),
    ]);
    expect(text.code).toBe(0);
    const lines = text.stdout.split('\n');
    expect(lines[0]).toBe(`version: lockstep ${VERSION} (this command), server ${VERSION}`);
    expect(lines.slice(2, 6)).toEqual([
      'NODES (2)',
      expect.stringMatching(/^ {2}URL\s+ROLE\s+EPOCH\s+LEADER\s+HEALTH\s+SESSIONS\s+UP\s+VERSION$/),
      expect.stringMatching(
        new RegExp(`^  ${s.url}\\s+single\\s+-\\s+-\\s+ok \\(200\\)\\s+\\d+\\s+${UP_COLUMN}\\s+${VERSION}$`),
      ),
      expect.stringMatching(/^ {2}ws:\/\/127\.0\.0\.1:1\/ws\s+-\s+-\s+-\s+unreachable: .*ECONNREFUSED/),
    ]);
    // One server has no leader (docs/cluster.md): the heading names the server.
    expect(text.stdout).toContain(`\nThe server, ${s.url}:\n`);
    expect(text.stdout).not.toContain('The leader');
    const snap = JSON.parse(json.stdout) as StatusSnapshot;
    expect(snap.version).toBe(VERSION);
    expect(snap.nodes).toEqual([
      { url: down, http: null, health: null, error: expect.stringContaining('ECONNREFUSED') },
      {
        url: s.url,
        http: 200,
        health: {
          status: 'ok',
          uptimeMs: expect.any(Number),
          sessions: expect.any(Number),
          store: true,
          version: VERSION,
        },
      },
    ]);
    expect(failed.code).toBe(1);
    expect(JSON.parse(failed.stdout)).toEqual({
      version: VERSION,
      nodes: [{ url: down, http: null, health: null, error: expect.stringContaining('ECONNREFUSED') }],
      error: { type: 'CONNECT_FAILED', message: expect.stringContaining(down) },
    });
  });

  it('--version and -v print the version', async () => {
    const [long, short] = await Promise.all([lockstep(['--version']), lockstep(['-v'])]);
    expect(long).toMatchObject({ code: 0, stdout: `lockstep ${VERSION}\n`, stderr: '' });
    expect(short).toMatchObject({ code: 0, stdout: `lockstep ${VERSION}\n` });
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

  it('shows path locks as a tree with holders and queues, in text and in --json', async () => {
    const s = await t.server();
    const [a, b, c] = await Promise.all([t.client(s, 'alice'), t.client(s, 'bob'), t.client(s, 'carol')]);
    await a.acquire({ paths: ['src'], mode: 'write' });
    await c.acquire({ paths: ['docs/guide/intro.md'], mode: 'read' });
    let queued!: () => void;
    const isQueued = new Promise<void>((resolve) => (queued = resolve));
    void b.acquire({ paths: ['src/app/main.ts'], mode: 'write', onQueue: () => queued() }).catch(() => undefined);
    await isQueued;

    const [text, json] = await Promise.all([
      lockstep(['status', '--url', s.url]),
      lockstep(['status', '--url', s.url, '--json']),
    ]);
    expect(text.code).toBe(0);
    const section = text.stdout.slice(text.stdout.indexOf('PATH LOCKS'));
    expect(section.split('\n')).toEqual([
      'PATH LOCKS (3)',
      '  main:',
      expect.stringMatching(/^ {4}docs\/guide\/intro\.md {2}carol read #\d+ \(\d+m\d+s\)$/),
      expect.stringMatching(/^ {4}src\/ {2}alice write #\d+ \(\d+m\d+s\)$/),
      '      app/main.ts  free here; held above; queue: 1. bob write',
      '',
    ]);
    expect(text.stdout).toMatch(/LOCKS \(0\)\n {2}none/);
    const snap = JSON.parse(json.stdout) as StatusSnapshot;
    expect(snap.pathTrees).toMatchObject([
      {
        program: 'main',
        tree: [
          { name: 'docs', path: 'docs', children: [{ name: 'guide', children: [{ path: 'docs/guide/intro.md' }] }] },
          {
            name: 'src',
            lock: { holders: [{ name: 'alice', mode: 'write' }] },
            children: [
              { name: 'app', children: [{ name: 'main.ts', lock: { queue: [{ name: 'bob', position: 1 }] } }] },
            ],
          },
        ],
      },
    ]);
  });

  it('--watch shows it again until interrupted, then exits 0; with --json or an interval out of range it is refused', async () => {
    const s = await t.server();
    const child = spawnLockstep(['status', '--url', s.url, '--watch=0.2']);
    const ran = collect(child);
    let out = '';
    await new Promise<void>((resolve) => {
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        if ((out.match(/^The server, /gm) ?? []).length >= 2) resolve();
      });
    });
    child.kill('SIGINT');
    const done = await ran;
    expect(done).toMatchObject({ code: 0, stderr: '' });
    expect(done.stdout).toMatch(/^every 0\.2 s until interrupted \(Ctrl-C\); \d{4}-/);
    expect(done.stdout.match(/^version: lockstep /gm)?.length).toBeGreaterThanOrEqual(2);

    const [json, bad, help] = await Promise.all([
      lockstep(['status', '--url', s.url, '--watch', '--json']),
      lockstep(['status', '--url', s.url, '--watch=0']),
      lockstep(['status', '--help']),
    ]);
    // With --json, the refusal is JSON on stdout as every failure of status --json is.
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout)).toMatchObject({
      error: { message: expect.stringContaining('--watch repeats the tables') },
    });
    expect(bad).toMatchObject({ code: 2, stderr: expect.stringContaining('--watch: expected a number of seconds') });
    expect(help.stdout).toContain('--watch[=SECONDS]  show it again every SECONDS (default 2) until interrupted');
  });
});
