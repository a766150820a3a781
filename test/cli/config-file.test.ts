import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LockstepClient } from '../../src/client/index.ts';
import { readConfigFile } from '../../src/cli/config-file.ts';
import { resolveWithSources } from '../../src/config.ts';
import { collect, lineMatching, lockstep, spawnLockstep } from '../helpers/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'lockstep-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function configFile(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

/** --print-config's rows: option -> [value, source]. */
function rows(stdout: string): Map<string, [string, string]> {
  const out = new Map<string, [string, string]>();
  for (const line of stdout.trim().split('\n').slice(1)) {
    const [option, value, ...source] = line.split(/\s{2,}/);
    out.set(option as string, [value as string, source.join('  ')]);
  }
  return out;
}

// Several CLI processes at once (each compiles through tsx): slow on a loaded machine.
describe('lockstep serve --config', { timeout: 120_000 }, () => {
  it('flags over the environment over the file over the defaults; --print-config says which, secrets hidden', async () => {
    const file = configFile('lockstep.json', {
      port: 7000,
      maxSessions: 500,
      heartbeatMs: 2000,
      insecure: true,
      tokens: 'agent:a-secret-token-of-20-chars',
    });
    const ran = await lockstep(['serve', '--config', file, '--heartbeat-ms', '4000', '--print-config'], {
      LOCKSTEP_PORT: '7001',
      LOCKSTEP_HEARTBEAT_MS: '3000',
    });
    expect(ran).toMatchObject({ code: 0, stderr: '' });
    const r = rows(ran.stdout);
    expect(r.get('--heartbeat-ms')).toEqual(['4000', '--heartbeat-ms']);
    expect(r.get('--port')).toEqual(['7001', 'LOCKSTEP_PORT']);
    expect(r.get('--max-sessions')).toEqual(['500', `${file} (maxSessions)`]);
    expect(r.get('--insecure')).toEqual(['true', `${file} (insecure)`]);
    expect(r.get('--tokens')).toEqual(['(hidden)', `${file} (tokens)`]);
    expect(r.get('--host')).toEqual(['127.0.0.1', 'default']);
    expect(ran.stdout).not.toContain('a-secret-token');
    expect(r.size).toBeGreaterThan(30);
  });

  it('refuses an unknown key naming the nearest option, and checks values as flags are checked', async () => {
    const [typo, badValue, relation, byEnv] = await Promise.all([
      lockstep(['serve', '--config', configFile('typo.json', { maxSesions: 5 })]),
      lockstep(['serve', '--config', configFile('port.json', { port: 'http' })]),
      lockstep(['serve', '--config', configFile('ttl.json', { minTtlMs: 5000, maxTtlMs: 1000 })]),
      lockstep(['serve', '--print-config'], { LOCKSTEP_CONFIG: configFile('env.json', { maxBatch: 9 }) }),
    ]);
    const file = (name: string) => join(dir, name);
    expect(typo).toMatchObject({ code: 2, stdout: '' });
    expect(typo.stderr).toBe(
      `lockstep: ${file('typo.json')}: unknown option "maxSesions" (did you mean "maxSessions"?); the keys are the options of "lockstep serve --help" in camelCase (--max-sessions is maxSessions)\n`,
    );
    expect(badValue.stderr).toBe(`lockstep: ${file('port.json')} (port): expected a number (got "http")\n`);
    expect(relation.stderr).toMatch(
      /^lockstep: .*ttl\.json \(minTtlMs\) \(5000\) is above .*ttl\.json \(maxTtlMs\) \(1000\)\n$/,
    );
    expect(rows(byEnv.stdout).get('--max-batch')).toEqual(['9', `${file('env.json')} (maxBatch)`]);

    // What the file reader refuses before any value is looked at.
    const read = (name: string, content?: unknown) => () =>
      readConfigFile(content === undefined ? file(name) : configFile(name, content), '--config');
    expect(read('kebab.json', { 'max-sessions': 5 })).toThrow(
      'unknown option "max-sessions" (did you mean "maxSessions"?)',
    );
    expect(read('broken.json', '{"port": ')).toThrow(`--config: ${file('broken.json')} is not JSON`);
    expect(read('list.json', [1])).toThrow(`--config: ${file('list.json')} must hold one JSON object of options`);
    expect(read('nope.json')).toThrow(`--config: cannot read ${JSON.stringify(file('nope.json'))}: no such file`);
  });

  it('a server started with --config runs with it', async () => {
    const file = configFile('run.json', { port: 0, db: ':memory:', maxBatch: 7, logLevel: 'silent' });
    const child = spawnLockstep(['serve', '--config', file]);
    const done = collect(child);
    const [, url] = await lineMatching(child, /^lockstep listening on (ws:\/\/\S+)$/);
    const c = await LockstepClient.connect({ url: url as string, name: 'probe', reconnect: false });
    expect(c.hello?.limits.maxBatch).toBe(7);
    await c.close();
    child.kill('SIGTERM');
    expect((await done).code).toBe(0);
  });

  it('resolves in one place: the sources say each layer', () => {
    const { config, sources } = resolveWithSources(
      { port: '1' },
      { LOCKSTEP_PORT: '2', LOCKSTEP_HOST: 'localhost' },
      { path: 'f.json', values: { port: 3, host: '::1', maxBatch: 4 } },
    );
    expect([config.port, config.host, config.maxBatch, config.maxPending]).toEqual([1, 'localhost', 4, 1000]);
    expect([sources.port, sources.host, sources.maxBatch, sources.maxPending]).toEqual([
      '--port',
      'LOCKSTEP_HOST',
      'f.json (maxBatch)',
      'default',
    ]);
  });
});
