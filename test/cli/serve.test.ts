import { spawn } from 'node:child_process';
import { stripVTControlCharacters } from 'node:util';
import { describe, expect, it } from 'vitest';
import { LockstepClient } from '../../src/client/index.ts';
import { BIN, collect, lineMatching, lockstep, type Ran, ROOT, spawnLockstep } from '../helpers/cli.ts';

/** `lockstep serve` on a free port until it listens, then SIGTERM: all it printed. */
async function serveOnce(args: readonly string[]): Promise<Ran> {
  const child = spawnLockstep(['serve', '--port', '0', '--db', ':memory:', ...args]);
  const done = collect(child);
  await lineMatching(child, /^dashboard http:/);
  child.kill('SIGTERM');
  return done;
}

/** Each line a JSON object (pino's format); throws on one that is not. */
function jsonLines(text: string): Array<Record<string, unknown>> {
  return text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

// The --help test starts six CLI processes at once (each compiles through tsx): slow on a loaded machine.
describe('lockstep serve', { timeout: 60_000 }, () => {
  it('with --port 0 prints its port, serves, and exits 0 on SIGTERM', async () => {
    const child = spawnLockstep(['serve', '--port', '0', '--db', ':memory:', '--log-level', 'silent']);
    const done = collect(child);
    const [, url, port] = await lineMatching(child, /^lockstep listening on (ws:\/\/127\.0\.0\.1:(\d+)\/ws)$/);
    expect(Number(port)).toBeGreaterThan(0);
    const c = await LockstepClient.connect({ url: url as string, name: 'probe', reconnect: false });
    expect((await c.program.list()).programs.map((p) => p.name)).toEqual(['main']);
    await c.close();
    child.kill('SIGTERM');
    const ran = await done;
    expect(ran.code).toBe(0);
    expect(ran.stdout).toContain(`dashboard http://127.0.0.1:${port}/`);
  });

  it('logs JSON lines or lines for people on stderr as --log says (auto: JSON without a terminal), never on stdout', async () => {
    const [json, pretty, auto] = await Promise.all([
      serveOnce(['--log', 'json']),
      serveOnce(['--log', 'pretty']),
      serveOnce([]),
    ]);
    for (const ran of [json, pretty, auto]) {
      expect(ran.code).toBe(0);
      expect(ran.stdout).toMatch(/^lockstep listening on ws:\/\/\S+\ndashboard http:\/\/\S+\n$/);
    }
    for (const ran of [json, auto]) {
      expect(jsonLines(ran.stderr).map((l) => [l.level, l.msg])).toEqual([
        [30, 'lockstep listening'],
        [30, 'lockstep stopped'],
      ]);
    }
    expect(pretty.stderr).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(\d+\): lockstep listening\n {4}url: "ws:/);
    expect(pretty.stderr).toMatch(/INFO \(\d+\): lockstep stopped\n {4}reason: "SIGTERM"/);
    expect(pretty.stderr).not.toContain('{');
  });

  it('logs lines for people by default on a terminal', async () => {
    // script(1) runs the server on a pseudo-terminal: stderr is a TTY there.
    const command = [process.execPath, BIN, 'serve', '--port', '0', '--db', ':memory:'].join(' ');
    const child = spawn('script', ['-qfec', command, '/dev/null'], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    const done = collect(child);
    // The log line comes first: it is written synchronously before the address is printed.
    await lineMatching(child, /lockstep listening on ws:/);
    child.kill('SIGTERM');
    // Colours on a terminal: without them, the line the pretty test reads.
    const text = stripVTControlCharacters((await done).stdout);
    expect(text).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(\d+\): lockstep listening\r?\n {4}url: "ws:/);
    expect(text).not.toContain('"level"');
  });

  it('prints usage for --help of every command, and refuses unknown commands and options', async () => {
    const [top, serve, status, demo, unknown, badOption] = await Promise.all([
      lockstep(['--help']),
      lockstep(['serve', '--help']),
      lockstep(['status', '--help']),
      lockstep(['demo', '--help']),
      lockstep(['frobnicate']),
      lockstep(['demo', '--agents', 'many']),
    ]);
    expect(top).toMatchObject({ code: 0, stdout: expect.stringContaining('status') });
    expect(serve).toMatchObject({ code: 0, stdout: expect.stringContaining('--session-grace-ms') });
    expect(status).toMatchObject({ code: 0, stdout: expect.stringContaining('--json') });
    expect(demo).toMatchObject({ code: 0, stdout: expect.stringContaining('--seconds') });
    for (const help of [status.stdout, demo.stdout]) expect(help).toContain('comma-separated or --url repeated');
    expect(unknown).toMatchObject({ code: 2, stderr: expect.stringContaining('unknown command "frobnicate"') });
    expect(badOption).toMatchObject({ code: 2, stderr: expect.stringContaining('--agents') });
  });
});
