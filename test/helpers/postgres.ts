import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from '../../bench/proc.ts';

/** Debian's postgresql-15 server binaries, which CI installs (.ci/run). */
export const PG_BIN = '/usr/lib/postgresql/15/bin';

export function postgresInstalled(): boolean {
  return existsSync(join(PG_BIN, 'postgres')) && existsSync(join(PG_BIN, 'initdb'));
}

export interface PostgresCluster {
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  readonly url: string;
  /** Stops the server and starts it again on the same data and port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** As root, the server must run as the postgres user (it refuses root); otherwise as we are. */
function asPostgres(): { prefix: string[]; uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return { prefix: [] };
  const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
  const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
  return { prefix: ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--'], uid, gid };
}

/** The program and arguments that run a PostgreSQL binary as that user. */
function command(user: { prefix: string[] }, binary: string, args: string[]): [string, string[]] {
  const full = [...user.prefix, join(PG_BIN, binary), ...args];
  return [full[0] as string, full.slice(1)];
}

/**
 * A throwaway PostgreSQL 15: initdb into a temporary directory, listening on 127.0.0.1 only (and
 * a socket in that directory), on a free port, stopped by its pid. Never a database someone else
 * started. fsync is off unless `durable` (benchmarks): the tests kill Lockstep, never the
 * database's machine.
 */
export async function startPostgres(opts: { durable?: boolean } = {}): Promise<PostgresCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-pg-'));
  const data = join(dir, 'data');
  const user = asPostgres();
  if (user.uid !== undefined && user.gid !== undefined) chownSync(dir, user.uid, user.gid);
  const init = spawnSync(...command(user, 'initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync']), {
    encoding: 'utf8',
  });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr || init.error?.message}`);
  const port = await freePort();
  const args = ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1'];
  args.push(
    '-c',
    `fsync=${opts.durable === true ? 'on' : 'off'}`,
    '-c',
    'max_connections=300',
    '-c',
    'shared_buffers=32MB',
  );
  let child = spawn(...command(user, 'postgres', args), { stdio: ['ignore', 'ignore', 'pipe'] });
  const stopAtExit = () => child.kill('SIGKILL');
  process.once('exit', stopAtExit);
  await ready(child);
  /** A fast shutdown (SIGINT): every connection is ended, as when an operator restarts the server. */
  const shutdown = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    process.kill(child.pid as number, 'SIGINT');
    await exited;
  };
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async restart() {
      await shutdown();
      child = spawn(...command(user, 'postgres', args), { stdio: ['ignore', 'ignore', 'pipe'] });
      await ready(child);
    },
    async stop() {
      process.off('exit', stopAtExit);
      await shutdown();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves when the server says it accepts connections; rejects if it exits first. */
function ready(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let log = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      if (log.length < 20_000) log += chunk;
      if (log.includes('database system is ready to accept connections')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`postgres exited (${code}) before it was ready:\n${log}`)));
  });
}

/** A new, empty database in the cluster; its URL. */
export async function freshDatabase(clusterUrl: string): Promise<string> {
  const name = `t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: clusterUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} STRATEGY = FILE_COPY`);
  } finally {
    await admin.end();
  }
  const url = new URL(clusterUrl);
  url.pathname = `/${name}`;
  return url.toString();
}
