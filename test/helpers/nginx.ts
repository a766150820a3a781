import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe } from 'vitest';
import { until } from './until.ts';
import { freePort } from './server.ts';

export const NGINX = '/usr/sbin/nginx';

// Without nginx a local `npm test` skips the proxy tests, saying why in one line; under CI, which
// installs it (.ci/run), a missing nginx fails instead of passing silently.
const missing = !existsSync(NGINX) && process.env.CI === undefined;
if (missing) console.warn(`lockstep: skipping the nginx tests: no ${NGINX} (apt-get install nginx)`);
export const describeWithNginx = describe.skipIf(missing);

export interface Nginx {
  port: number;
  /** The docs' config as this nginx runs it. */
  config: string;
  stop(): Promise<void>;
}

/**
 * nginx in the foreground on a free port, from a temporary prefix, with `snippet` (an http-level
 * config such as docs/nginx-lockstep.conf) included as it is apart from `replace`: each pair must
 * match exactly once, so the test notices when the docs' file changes shape.
 */
export async function startNginx(snippet: string, replace: (port: number) => Array<[string, string]>): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-nginx-'));
  const port = await freePort();
  let config = readFileSync(snippet, 'utf8');
  for (const [from, to] of replace(port)) {
    if (config.split(from).length !== 2) throw new Error(`${snippet}: expected "${from}" exactly once`);
    config = config.replace(from, to);
  }
  writeFileSync(join(dir, 'lockstep.conf'), config);
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${join(dir, t)};`);
  writeFileSync(
    join(dir, 'nginx.conf'),
    [
      'worker_processes 1;',
      `pid ${join(dir, 'nginx.pid')};`,
      'error_log stderr warn;',
      'events { worker_connections 64; }',
      'http {',
      '  access_log off;',
      ...temp,
      `  include ${join(dir, 'lockstep.conf')};`,
      '}',
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(
    NGINX,
    ['-e', 'stderr', '-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await until(`nginx listens on ${port}`, 15_000, async () => {
      if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
      return (await accepts(port)) ? true : undefined;
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, config, stop };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
