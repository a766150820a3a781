import { describe, expect, it } from 'vitest';
import { LockstepClient } from '../../src/client/index.ts';
import { collect, lineMatching, lockstep, spawnLockstep } from './run.ts';

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
