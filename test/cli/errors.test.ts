import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useSdk } from '../helpers/sdk.ts';
import { BIN, collect, lineMatching, lockstep } from '../helpers/cli.ts';

const AGENT = 'agent-token-0123456789abcdef';
const OBSERVER = 'observer-token-0123456789abcdef';

/** The status and body a WebSocket upgrade request to `path` gets. */
function upgrade(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port,
      path,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
      },
    });
    req.once('response', (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.once('upgrade', () => reject(new Error(`${path} was upgraded`)));
    req.once('error', reject);
    req.end();
  });
}

// Each test starts several CLI processes at once (each compiles through tsx): slow on a loaded machine.
describe('lockstep command line: tokens and errors that say what to do', { timeout: 60_000 }, () => {
  const t = useSdk();

  it('status and demo reach a server with tokens through --token or LOCKSTEP_TOKEN', async () => {
    const s = await t.server({ tokens: `agent:${AGENT},observer:${OBSERVER}` });
    const [byFlag, byEnv, demo, without] = await Promise.all([
      lockstep(['status', '--json', '--url', s.url, '--token', OBSERVER]),
      lockstep(['status', '--json', '--url', s.url], { LOCKSTEP_TOKEN: OBSERVER }),
      lockstep(['demo', '--url', s.url, '--seconds', '1', '--agents', '2', '--quiet'], { LOCKSTEP_TOKEN: AGENT }),
      lockstep(['status', '--json', '--url', s.url]),
    ]);
    expect(byFlag.code).toBe(0);
    expect(JSON.parse(byFlag.stdout)).toMatchObject({ server: { name: 'lockstep' } });
    expect(byEnv.code).toBe(0);
    expect(demo).toMatchObject({ code: 0, stderr: '' });
    expect(demo.stdout).toMatch(/^edits committed: \d+/m);
    expect(without.code).toBe(1);
    expect(JSON.parse(without.stdout)).toMatchObject({
      error: { type: 'UNAUTHORIZED', message: expect.stringMatching(/pass --token or set LOCKSTEP_TOKEN$/) },
    });
  });

  it('wss:// to a server that speaks ws:// says so', async () => {
    const s = await t.server();
    const ran = await lockstep(['status', '--url', `wss://127.0.0.1:${s.port}/ws`]);
    expect(ran.code).toBe(2);
    expect(ran.stderr).toMatch(
      new RegExp(
        `\\nthe server at 127\\.0\\.0\\.1:${s.port} speaks ws://: use --url ws://127\\.0\\.0\\.1:${s.port}/ws\\n$`,
      ),
    );
  });

  it('a URL without /ws: the server and the CLI both say to use /ws', async () => {
    const s = await t.server();
    expect(await upgrade(s.port, '/')).toEqual({ status: 404, body: 'no WebSocket endpoint at /: use /ws\n' });
    const ran = await lockstep(['status', '--url', `ws://127.0.0.1:${s.port}/`]);
    expect(ran.code).toBe(2);
    expect(ran.stderr).toContain(`use --url ws://127.0.0.1:${s.port}/ws`);
  });

  it('a port in use suggests --port 0 or a server already there', async () => {
    const s = await t.server();
    const ran = await lockstep(['serve', '--port', String(s.port), '--db', ':memory:', '--log-level', 'silent']);
    expect(ran.code).toBe(2);
    expect(ran.stderr).toMatch(
      /^lockstep: --port \d+: already in use on 127\.0\.0\.1; a lockstep server may already run/,
    );
    expect(ran.stderr).toContain('--port 0');
  });

  it('an unknown option names the nearest one and --help; so does an unknown command', async () => {
    const [serve, demo, status, command] = await Promise.all([
      lockstep(['serve', '--prot', '7421']),
      lockstep(['demo', '--agent', '3']),
      lockstep(['status', '--zzzzzz']),
      lockstep(['stauts']),
    ]);
    expect(serve).toMatchObject({ code: 2 });
    expect(serve.stderr).toBe(
      'lockstep: unknown option --prot (did you mean --port?); "lockstep serve --help" lists the options\n',
    );
    expect(demo.stderr).toContain('unknown option --agent (did you mean --agents?); "lockstep demo --help"');
    expect(status.stderr).toBe('lockstep: unknown option --zzzzzz; "lockstep status --help" lists the options\n');
    expect(command.stderr).toContain('unknown command "stauts" (did you mean "status"?)');
  });

  it('a missing tokens file names the option', async () => {
    const ran = await lockstep(['serve', '--port', '0', '--db', ':memory:', '--tokens-file', '/nonexistent/tokens']);
    expect(ran.code).toBe(2);
    expect(ran.stderr).toBe(
      'lockstep: --tokens-file (LOCKSTEP_TOKENS_FILE): cannot read "/nonexistent/tokens": no such file\n',
    );
  });

  it("--db refuses a file in a directory that does not exist, naming the option; the default's is created", async () => {
    const ran = await lockstep(['serve', '--port', '0', '--db', '/nonexistent/dir/x.db']);
    expect(ran.code).toBe(2);
    expect(ran.stderr).toBe(
      'lockstep: --db: the directory "/nonexistent/dir" does not exist; create it first (got "/nonexistent/dir/x.db")\n',
    );
    expect(existsSync('/nonexistent')).toBe(false);

    const cwd = mkdtempSync(join(tmpdir(), 'lockstep-default-db-'));
    try {
      const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--log-level', 'silent'], { cwd });
      const done = collect(child);
      await lineMatching(child, /^dashboard http:/);
      expect(existsSync(join(cwd, 'data', 'lockstep.db'))).toBe(true);
      child.kill('SIGTERM');
      expect((await done).code).toBe(0);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });

  it('a bad LOCKSTEP_URL is blamed on LOCKSTEP_URL, a bad --url on --url', async () => {
    const [env, flag] = await Promise.all([
      lockstep(['status'], { LOCKSTEP_URL: 'http://127.0.0.1:7420/ws' }),
      lockstep(['status', '--url', '127.0.0.1:7420'], { LOCKSTEP_URL: 'http://127.0.0.1:7420/ws' }),
    ]);
    expect(env).toMatchObject({ code: 2 });
    expect(env.stderr).toMatch(/^lockstep: LOCKSTEP_URL: expected ws:\/\/HOST:PORT\/ws/);
    expect(flag.stderr).toMatch(/^lockstep: --url: expected ws:\/\/HOST:PORT\/ws/);
  });

  it('status --json reports its failures as JSON on stdout', async () => {
    const [unreachable, badOption] = await Promise.all([
      lockstep(['status', '--json', '--url', 'ws://127.0.0.1:1/ws']),
      lockstep(['status', '--json', '--nope']),
    ]);
    expect(unreachable.code).toBe(1);
    // With what the node given said: nothing, it cannot be reached.
    expect(JSON.parse(unreachable.stdout)).toEqual({
      version: expect.any(String),
      nodes: [{ url: 'ws://127.0.0.1:1/ws', http: null, health: null, error: expect.stringContaining('ECONNREFUSED') }],
      error: { type: 'CONNECT_FAILED', message: expect.stringContaining('cannot connect to ws://127.0.0.1:1/ws') },
    });
    expect(badOption.code).toBe(2);
    expect(JSON.parse(badOption.stdout)).toMatchObject({ error: { type: 'UsageError' } });
  });
});
