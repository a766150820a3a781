import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { freePort, packageVersion, waitFor } from './proc.ts';
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

// FIFO read/write lock, the fair peer: a list per resource queues "mode token" entries. Acquire
// takes the lock only if it is free (or read-held, for a read) *and* nobody queues; otherwise it
// joins the back of the queue. Release, in the same atomic script, hands the lock straight to the
// head of the queue (a writer, or the run of readers at the head) and pushes onto each new
// holder's own grant list, on which that waiter blocks in BLPOP. No latecomer can slip in between
// (ownership moves inside one script), nobody polls, and a release wakes only whom it grants.
// The grant list's name is built inside the script, which one Redis allows (a Cluster would not).
const ACQUIRE_FIFO = `
local m = redis.call('hget', KEYS[1], 'mode')
if redis.call('llen', KEYS[2]) == 0 and (not m or (m == 'read' and ARGV[1] == 'read')) then
  redis.call('hset', KEYS[1], 'mode', ARGV[1], ARGV[2], 1)
  redis.call('pexpire', KEYS[1], ARGV[3])
  return 1
end
redis.call('rpush', KEYS[2], ARGV[1] .. ' ' .. ARGV[2])
return 0`;
const RELEASE_FIFO = `
if redis.call('hdel', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('hlen', KEYS[1]) > 1 then return 1 end
redis.call('del', KEYS[1])
local granted = false
while true do
  local head = redis.call('lindex', KEYS[2], 0)
  if not head then break end
  local sp = string.find(head, ' ', 1, true)
  local mode = string.sub(head, 1, sp - 1)
  if granted and (granted == 'write' or mode == 'write') then break end
  local token = string.sub(head, sp + 1)
  redis.call('lpop', KEYS[2])
  redis.call('hset', KEYS[1], 'mode', mode, token, 1)
  redis.call('rpush', 'grant:' .. token, 1)
  granted = mode
end
if granted then redis.call('pexpire', KEYS[1], ARGV[2]) end
return 1`;

export type Waiting = 'poll' | 'pubsub' | 'fifo';

const SCRIPTS = {
  release: RELEASE,
  acquireMany: ACQUIRE_MANY,
  acquireRw: ACQUIRE_RW,
  releaseRw: RELEASE_RW,
  acquireFifo: ACQUIRE_FIFO,
  releaseFifo: RELEASE_FIFO,
};
type Scripts = Record<keyof typeof SCRIPTS, string>;

/** What the method section says about Redis, from the constants above. */
export function redisMethod(): string {
  const args = REDIS_ARGS.map((a) => (a === '' ? "''" : a)).join(' ');
  return [
    `\`redis-server --port P --bind 127.0.0.1 ${args}\`: no RDB snapshots and no append-only file, so no disk I/O and no fsync; each agent has its own connection (ioredis).`,
    `The usual recipe: \`SET key token NX PX ttl\` to take, a Lua compare-and-delete to give back; a batch is one Lua script taking all four keys or none; the read/write mix uses a Lua read-write lock (Redisson's layout: a hash with the mode and one field per holder).`,
    `Waiting three ways. *Poll*: retry every ${POLL_MS} ms (redis-semaphore's default retryInterval). *Pub/sub*: the release script publishes on the key's channel; waiters, each with a second (subscriber) connection, retry on every message (and every ${WAKE_FALLBACK_MS} ms, for a wake-up lost to expiry). *FIFO queue*, the fair peer for the hand-over: a Lua read/write lock with a list per resource; an acquire joins the queue unless the lock is free and nobody queues, and the release script itself hands the lock to the head of the queue (the writer, or the run of readers there) and pushes onto that waiter's own list, on which it blocks in \`BLPOP\` on its one connection. Fair because ownership passes inside one atomic script in queue order, so nobody can overtake; nobody polls, and a release wakes only whom it grants, one server hop like Lockstep's push. (Chosen over Redisson's FairLock, whose woken waiter must still ask again: two hops per hand-over.) What it leaves out, to Redis's advantage: a dead waiter's queue entry is never timed out (Redisson keeps a timeout set for that).`,
    'Where nobody waits (uncontended, batch) poll and pub/sub are the same and one row shows them; the FIFO queue runs where waiting happens (hand-over, read/write mix).',
  ].join(' ');
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
    private readonly waiting: Waiting,
  ) {
    sub?.on('message', () => {
      this.wakeups++;
      this.wake?.();
    });
  }

  async acquire(rs: readonly number[], mode: Mode): Promise<number> {
    if (this.waiting === 'fifo') return this.acquireFifo(rs, mode);
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
    const done =
      this.waiting === 'fifo'
        ? this.cmd.evalsha(this.sha.releaseFifo, 2, ...this.fifoKeys(rs), this.token, TTL_MS)
        : this.cmd.evalsha(
            this.rw ? this.sha.releaseRw : this.sha.release,
            rs.length,
            ...this.keys(rs),
            this.token,
            this.sub === undefined ? '0' : '1',
          );
    sent?.(performance.now());
    await done;
  }

  /** Queued: the grant is pushed onto this agent's list by the release that grants it. */
  private async acquireFifo(rs: readonly number[], mode: Mode): Promise<number> {
    const keys = this.fifoKeys(rs);
    if ((await this.cmd.evalsha(this.sha.acquireFifo, 2, ...keys, mode, this.token, TTL_MS)) !== 1)
      await this.cmd.blpop(`grant:${this.token}`, 0);
    return performance.now();
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

  /** The FIFO recipe locks one resource per request (the workloads it runs need no more). */
  private fifoKeys(rs: readonly number[]): [string, string] {
    if (rs.length !== 1) throw new Error('Redis FIFO queue: one resource per request');
    return [`fifo:${rs[0]}`, `fifoq:${rs[0]}`];
  }
}

export class RedisSystem implements LockSystem {
  readonly driver = packageVersion('ioredis');
  readonly locks = true;
  private conns: Redis[] = [];
  waiting: Waiting = 'poll';

  private constructor(
    private readonly proc: ChildProcess,
    private readonly port: number,
    private readonly sha: Scripts,
  ) {}

  /** Its CPU is measured like Lockstep's (read-mix.ts sets them side by side). */
  get serverPid(): number | undefined {
    return this.proc.pid;
  }

  get name(): string {
    if (this.waiting === 'poll') return `Redis (poll ${POLL_MS} ms)`;
    return this.waiting === 'pubsub' ? 'Redis (pub/sub)' : 'Redis (FIFO queue)';
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
    const sha = {} as Scripts;
    for (const [name, lua] of Object.entries(SCRIPTS))
      sha[name as keyof Scripts] = (await admin.script('LOAD', lua)) as string;
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
        async () =>
          new Agent(
            await open(),
            this.waiting === 'pubsub' ? await open() : undefined,
            this.sha,
            readers,
            this.waiting,
          ),
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
