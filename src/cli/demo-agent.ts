import { isLockstepError, LockstepClient, type AcquireOptions, type LockHandle } from '../client/index.ts';
import type { EditOp } from '../protocol/program.ts';
import type { Resource } from '../protocol/resource.ts';
import type { Connection } from './common.ts';
import { mutation, type DemoFunction } from './demo-program.ts';
import type { Random } from './random.ts';

export interface AgentStats {
  name: string;
  /** Committed edits (a batch counts once). */
  edits: number;
  batches: number;
  reads: number;
  /** Acquires that had to wait in a queue. */
  queued: number;
  conflicts: number;
  denied: number;
  /** Locks lost (leases that ran out while the agent stalled): the edit meant under them dropped or refused. */
  expired: number;
  timeouts: number;
  /** Work a failover took: actions whose lock was not given back, or whose call was cut with the socket. */
  lost: number;
  errors: number;
}

export interface AgentContext {
  connection: Connection;
  program: string;
  functions: readonly DemoFunction[];
  rnd: Random;
  deadline: number;
  /** Stalls holding a short lease without renewing it, so that leases warn and expire. */
  straggler: boolean;
  /** The first thing it does, so a short run shows a queue and an expiry early. */
  opening?: { action: Action; fn: DemoFunction };
  /** Fires at the deadline: waits are withdrawn and pauses cut short, work in hand is finished. */
  signal: AbortSignal;
  log(line: string): void;
}

type Action = 'edit' | 'batch' | 'read' | 'optimistic' | 'tryLock' | 'hog' | 'stall';
const ACTION_WEIGHTS: Record<Action, number> = {
  edit: 36,
  batch: 18,
  read: 18,
  optimistic: 10,
  tryLock: 8,
  hog: 10,
  stall: 0,
};
const STRAGGLER_WEIGHTS: Record<Action, number> = { ...ACTION_WEIGHTS, stall: 40 };
/** A straggler's lease: short, so its warning (ttl/5 before the end) and expiry come within seconds. */
const STALL_TTL_MS = 4_000;

/** One simulated agent: lock, read, think, edit, release, until the deadline. */
export async function runAgent(name: string, ctx: AgentContext): Promise<AgentStats> {
  const stats: AgentStats = {
    name,
    edits: 0,
    batches: 0,
    reads: 0,
    queued: 0,
    conflicts: 0,
    denied: 0,
    expired: 0,
    timeouts: 0,
    lost: 0,
    errors: 0,
  };
  // Reconnects until the deadline (when it is closed): a cluster's failover takes a lease and more.
  const client = await LockstepClient.connect({
    ...ctx.connection,
    name,
    autoRenew: !ctx.straggler,
    callTimeoutMs: 10_000,
  });
  // A lease that ran out is the straggler's doing, said where it stalls; any other loss is a failover's.
  client.on('lost', (lock) => {
    if (lock.reason !== 'expired')
      ctx.log(`${name} lost its ${lock.mode} lock on ${nameOf(ctx.functions, lock.resource)} (${lock.reason})`);
  });
  const agent = new DemoAgent(client, name, ctx, stats);
  try {
    let next = ctx.opening;
    while (Date.now() < ctx.deadline && !ctx.signal.aborted) {
      try {
        await agent.act(next?.action ?? ctx.rnd.weighted(ctx.straggler ? STRAGGLER_WEIGHTS : ACTION_WEIGHTS), next?.fn);
        next = undefined;
      } catch (err) {
        if (agent.absorb(err) === 'stop') break;
      }
      await agent.pause(150, 700);
    }
  } finally {
    await client.close();
  }
  return stats;
}

class DemoAgent {
  private readonly program: string;

  constructor(
    private readonly client: LockstepClient,
    private readonly name: string,
    private readonly ctx: AgentContext,
    private readonly stats: AgentStats,
  ) {
    this.program = ctx.program;
  }

  act(action: Action, fn = this.ctx.rnd.pick(this.ctx.functions)): Promise<void> {
    const { rnd, functions } = this.ctx;
    switch (action) {
      case 'edit':
        return this.edit([fn]);
      case 'batch':
        return this.edit(rnd.sample(functions, rnd.int(2, 3)));
      case 'read':
        return this.read(rnd.sample(functions, rnd.int(1, 2)));
      case 'optimistic':
        return this.optimistic(fn);
      case 'tryLock':
        return this.tryLock(fn);
      case 'hog':
        return this.edit([fn], 1_200, 2_000);
      case 'stall':
        return this.stall(fn);
    }
  }

  /** What a failed action means for the demo: counted, and whether the agent should stop. */
  absorb(err: unknown): 'stop' | 'go on' {
    if (isLockstepError(err, 'ABORTED', 'CLOSED')) return 'stop';
    // A failover: the call was cut with the socket, or a lock it relied on was not given back.
    const lostLock = isLockstepError(err, 'LOCK_LOST') && err.data.reason !== 'expired';
    if (lostLock || (isLockstepError(err, 'DISCONNECTED') && this.client.urls.length > 1)) {
      this.stats.lost++;
      this.ctx.log(`${this.name}: ${(err as Error).message}, across a failover; carrying on`);
      return 'go on';
    }
    if (isLockstepError(err, 'CONFLICT')) this.stats.conflicts++;
    else if (isLockstepError(err, 'LOCK_LOST')) {
      this.stats.expired++;
      this.ctx.log(`${this.name}: ${err.message}; moving on`);
    } else if (isLockstepError(err, 'LOCK_DENIED')) this.stats.denied++;
    else if (isLockstepError(err, 'WAIT_TIMEOUT')) this.stats.timeouts++;
    else {
      this.stats.errors++;
      this.ctx.log(`${this.name}: ${isLockstepError(err) ? `${err.type}: ${err.message}` : String(err)}`);
    }
    return 'go on';
  }

  /** A think time, cut short at the deadline. */
  pause(minMs: number, maxMs: number): Promise<void> {
    const ms = Math.min(this.ctx.rnd.int(minMs, maxMs), Math.max(0, this.ctx.deadline - Date.now()));
    if (ms === 0 || this.ctx.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.ctx.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.ctx.signal.addEventListener('abort', done, { once: true });
    });
  }

  private lockOptions(fns: readonly DemoFunction[], mode: 'read' | 'write', what: string): AcquireOptions {
    return {
      program: this.program,
      functions: fns.map((f) => f.id),
      mode,
      ttlMs: 15_000,
      waitTimeoutMs: 2_500,
      description: `${what} ${fns.map((f) => f.name).join(', ')}`,
      signal: this.ctx.signal,
      onQueue: (u) => {
        if (!u.initial) return;
        this.stats.queued++;
        this.ctx.log(
          `${this.name} waits for ${fns.map((f) => f.name).join(', ')} (position ${Math.max(...u.positions.map((p) => p.position))})`,
        );
      },
    };
  }

  /** Locks, reads, thinks for `minMs..maxMs` (long for a hog, so others queue), edits. */
  private async edit(fns: readonly DemoFunction[], minMs = 250, maxMs = 900): Promise<void> {
    const batch = fns.length > 1;
    await this.client.withLocks(this.lockOptions(fns, 'write', batch ? 'refactor' : 'edit'), async (lock) => {
      const bodies = await Promise.all(
        fns.map((f) => this.client.function.get({ program: this.program, function: f.id })),
      );
      await this.pause(minMs, maxMs);
      const ops = bodies.flatMap((b) => mutation(b.function, this.ctx.rnd, this.name));
      const expectedHashes = Object.fromEntries(bodies.map((b) => [String(b.function.id), b.hash]));
      await this.commit(
        lock,
        ops,
        expectedHashes,
        batch ? `refactored ${fns.map((f) => f.name).join(' + ')}` : `edited ${fns[0]?.name}`,
      );
      if (batch) this.stats.batches++;
    });
  }

  private async read(fns: readonly DemoFunction[]): Promise<void> {
    await this.client.withLocks(this.lockOptions(fns, 'read', 'review'), async () => {
      await Promise.all(fns.map((f) => this.client.function.get({ program: this.program, function: f.id })));
      await this.pause(200, 600);
      this.stats.reads++;
    });
  }

  /** Reads without a lock and edits later on that basis: the edit conflicts if someone was faster. */
  private async optimistic(fn: DemoFunction): Promise<void> {
    const seen = await this.client.function.get({ program: this.program, function: fn.id });
    await this.pause(300, 1_000);
    await this.client.withLocks(this.lockOptions([fn], 'write', 'edit'), async (lock) => {
      try {
        await this.commit(
          lock,
          mutation(seen.function, this.ctx.rnd, this.name),
          { [fn.id]: seen.hash },
          `edited ${fn.name}`,
        );
      } catch (err) {
        if (!isLockstepError(err, 'CONFLICT')) throw err;
        this.stats.conflicts++;
        this.ctx.log(`${this.name} hit a CONFLICT on ${fn.name} (changed since read); re-reading`);
        const fresh = await this.client.function.get({ program: this.program, function: fn.id });
        await this.commit(
          lock,
          mutation(fresh.function, this.ctx.rnd, this.name),
          { [fn.id]: fresh.hash },
          `edited ${fn.name} after the conflict`,
        );
      }
    });
  }

  /**
   * Takes a short lease and goes quiet past its end without renewing (its client does not
   * auto-renew): the lease warns and expires, the SDK reports the lock lost, and the edit it meant
   * to make is dropped (or, sent before the loss was heard, refused by the server).
   */
  private async stall(fn: DemoFunction): Promise<void> {
    const lock = await this.client.acquire({
      ...this.lockOptions([fn], 'write', 'long refactor of'),
      ttlMs: STALL_TTL_MS,
    });
    try {
      const { function: body, hash } = await this.client.function.get({ program: this.program, function: fn.id });
      this.ctx.log(`${this.name} holds ${fn.name} for ${STALL_TTL_MS / 1000}s and stops renewing`);
      await this.pause(STALL_TTL_MS + 300, STALL_TTL_MS + 900);
      if (lock.lost !== undefined) {
        this.stats.expired++;
        this.ctx.log(`${this.name} lost its lock on ${fn.name} while it stalled (${lock.lost.reason}); edit dropped`);
        return;
      }
      await this.commit(
        lock,
        mutation(body, this.ctx.rnd, this.name),
        { [fn.id]: hash },
        `edited ${fn.name} after stalling`,
      );
    } catch (err) {
      if (!isLockstepError(err, 'LOCK_REQUIRED', 'STALE_FENCE', 'NOT_HELD', 'CONFLICT')) throw err;
      this.stats.expired++;
      this.ctx.log(
        `${this.name}'s lease on ${fn.name} expired while it stalled; its late edit was refused (${err.type})`,
      );
    } finally {
      await lock.release();
    }
  }

  private async tryLock(fn: DemoFunction): Promise<void> {
    try {
      await this.client.withLocks({ ...this.lockOptions([fn], 'write', 'quick fix'), wait: false }, async (lock) => {
        const { function: body, hash } = await this.client.function.get({ program: this.program, function: fn.id });
        await this.commit(lock, mutation(body, this.ctx.rnd, this.name), { [fn.id]: hash }, `quick-fixed ${fn.name}`);
      });
    } catch (err) {
      if (!isLockstepError(err, 'LOCK_DENIED')) throw err;
      this.stats.denied++;
      this.ctx.log(`${this.name} found ${fn.name} busy (LOCK_DENIED); moving on`);
    }
  }

  private async commit(
    lock: LockHandle,
    ops: EditOp[],
    expectedHashes: Record<string, string>,
    what: string,
  ): Promise<void> {
    // A lock lost meanwhile: what was read under it may be stale, and the server would refuse the edit.
    lock.signal.throwIfAborted();
    const r = await this.client.edit.apply({ program: this.program, ops, expectedHashes, fences: lock.fences });
    this.stats.edits++;
    this.ctx.log(`${this.name} ${what} -> revision ${r.revision}`);
  }
}

function nameOf(functions: readonly DemoFunction[], r: Resource): string {
  if (!('function' in r)) return `the structure of ${r.program}`;
  return functions.find((f) => f.id === r.function)?.name ?? `function ${r.function}`;
}
