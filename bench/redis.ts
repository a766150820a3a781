import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { freePort, waitFor } from './proc.ts';
import type { LockAgent, LockSystem, Mode } from './systems.ts';

/** redis-semaphore's default retryInterval. */
export const POLL_MS = 10;
const TTL_MS = 30 * 60_000;
/** A pub/sub waiter also retries this often, as such recipes do for a wake-up lost to expiry. */
const WAKE_FALLBACK_MS = 1_000;

/**
 * No persistence at all, so that, like Lockstep's lock path, nothing touches the disk: no RDB
 * snapshots, no append-only file (hence no fsync).
 */
export const REDIS_ARGS = ['--save', '', '--appendonly', 'no'];

// The usual recipe: SET key token NX PX ttl to take, compare-and-delete in Lua to give back. The
// pub/sub variant also publishes on the key's channel, in the same script.
const RELEASE = `
for i = 1, #KEYS do
  if redis.call('get', KEYS[i]) == ARGV[1] then
    redis.call('del', KEYS[i])
    if ARGV[2] == '1' then redis.call('publish', 'rel:' .. KEYS[i], '') end
  end
end
return 1`;
// Several keys all or nothing, as Lockstep's batches are.
const ACQUIRE_MANY = `
for i = 1, #KEYS do if redis.call('exists', KEYS[i]) == 1 then return 0 end end
for i = 1, #KEYS do redis.call('set', KEYS[i], ARGV[1], 'PX', ARGV[2]) end
return 1`;
// Shared/exclusive (for the read-mostly mix), the hash layout Redisson's read-write lock uses:
// field "mode" plus one field per holder.
const ACQUIRE_RW = `
for i = 1, #KEYS do
  local m = redis.call('hget', KEYS[i], 'mode')
  if m and (m == 'write' or ARGV[1] == 'write') then return 0 end
end
for i = 1, #KEYS do
  redis.call('hset', KEYS[i], 'mode', ARGV[1], ARGV[2], 1)
  redis.call('pexpire', KEYS[i], ARGV[3])
end
return 1`;
const RELEASE_RW = `
for i = 1, #KEYS do
  if redis.call('hdel', KEYS[i], ARGV[1]) == 1 and redis.call('hlen', KEYS[i]) == 1 then
    redis.call('del', KEYS[i])
    if ARGV[2] == '1' then redis.call('publish', 'rel:' .. KEYS[i], '') end
  end
end
return 1`;

export type Waiting = 'poll' | 'pubsub';

interface Scripts {
  release: string;
  acquireMany: string;
  acquireRw: string;
  releaseRw: string;
}

class Agent implements LockAgent {
  private readonly token = randomBytes(12).toString('hex');
  private wakeups = 0;
  private wake: (() => void) | undefined;
  private readonly subscribed = new Set<string>();

  constructor(
    private readonly cmd: Redis,
    private readonly sub: Redis | undefined,
    private readonly sha: Scripts,
    private readonly rw: boolean,
  ) {
    sub?.on('message', () => {
      this.wakeups++;
      this.wake?.();
    });
  }

  async acquire(rs: readonly number[], mode: Mode): Promise<number> {
    const keys = this.keys(rs);
    if (this.sub !== undefined) {
      const fresh = keys.map((k) => `rel:${k}`).filter((c) => !this.subscribed.has(c));
      if (fresh.length > 0) {
        await this.sub.subscribe(...fresh);
        for (const c of fresh) this.subscribed.add(c);
      }
    }
    for (;;) {
      const seen = this.wakeups;
      if (await this.try(keys, mode)) return performance.now();
      if (this.sub === undefined) await sleep(POLL_MS);
      else if (this.wakeups === seen) await this.nextWake();
    }
  }

  async release(rs: readonly number[], sent?: (at: number) => void): Promise<void> {
    const keys = this.keys(rs);
    const publish = this.sub === undefined ? '0' : '1';
    const done = this.cmd.evalsha(
      this.rw ? this.sha.releaseRw : this.sha.release,
      keys.length,
      ...keys,
      this.token,
      publish,
    );
    sent?.(performance.now());
    await done;
  }

  private async try(keys: string[], mode: Mode): Promise<boolean> {
    if (this.rw)
      return (await this.cmd.evalsha(this.sha.acquireRw, keys.length, ...keys, mode, this.token, TTL_MS)) === 1;
    if (keys.length === 1) return (await this.cmd.set(keys[0] ?? '', this.token, 'PX', TTL_MS, 'NX')) === 'OK';
    return (await this.cmd.evalsha(this.sha.acquireMany, keys.length, ...keys, this.token, TTL_MS)) === 1;
  }

  private nextWake(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, WAKE_FALLBACK_MS);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }

  private keys(rs: readonly number[]): string[] {
    return rs.map((r) => (this.rw ? `rw:${r}` : `lock:${r}`));
  }
}

export class RedisSystem implements LockSystem {
  readonly locks = true;
  private conns: Redis[] = [];
  waiting: Waiting = 'poll';

  private constructor(
    private readonly proc: ChildProcess,
    private readonly port: number,
    private readonly sha: Scripts,
  ) {}

  get name(): string {
    return this.waiting === 'poll' ? `Redis (poll ${POLL_MS} ms)` : 'Redis (pub/sub)';
  }

  static available(): boolean {
    return spawnSync('redis-server', ['--version']).status === 0;
  }

  static version(): string {
    return String(spawnSync('redis-server', ['--version']).stdout).trim();
  }

  static async start(): Promise<RedisSystem> {
    const port = await freePort();
    const proc = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', ...REDIS_ARGS, '--loglevel', 'warning'],
      { stdio: 'ignore' },
    );
    const admin = new Redis({
      host: '127.0.0.1',
      port,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    // Refused connections are expected until the server listens; waitFor retries them.
    admin.on('error', () => undefined);
    await waitFor('redis-server', 10_000, async () => {
      await admin.connect().catch(() => undefined);
      return (await admin.ping()) === 'PONG';
    });
    const load = (lua: string) => admin.script('LOAD', lua) as Promise<string>;
    const sha = {
      release: await load(RELEASE),
      acquireMany: await load(ACQUIRE_MANY),
      acquireRw: await load(ACQUIRE_RW),
      releaseRw: await load(RELEASE_RW),
    };
    admin.disconnect();
    return new RedisSystem(proc, port, sha);
  }

  async connect(count: number, _resources: number, readers = false): Promise<LockAgent[]> {
    const open = async () => {
      const r = new Redis({ host: '127.0.0.1', port: this.port, lazyConnect: true });
      await r.connect();
      this.conns.push(r);
      return r;
    };
    return Promise.all(
      Array.from(
        { length: count },
        async () => new Agent(await open(), this.waiting === 'pubsub' ? await open() : undefined, this.sha, readers),
      ),
    );
  }

  async disconnect(): Promise<void> {
    await Promise.all(this.conns.map((c) => c.quit().catch(() => undefined)));
    this.conns = [];
  }

  async stop(): Promise<void> {
    await this.disconnect();
    const exited = new Promise((resolve) => this.proc.once('exit', resolve));
    this.proc.kill('SIGTERM');
    await Promise.race([exited, sleep(5_000)]);
  }
}
