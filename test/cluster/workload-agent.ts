import {
  type AcquireOptions,
  isLockstepError,
  type LockHandle,
  LockstepClient,
  type LockstepClientError,
} from '../../src/client/index.ts';
import { type Outcome, seededRandom } from '../helpers/fault-client.ts';
import { type AgentLog, type EditRecord, type Hold, NODE_BASE, now, onOurClock } from './workload-log.ts';

// One agent of the cluster workload: the SDK given every node's URL (it finds the leader, resumes
// there after a failover and settles the locks the new leader restores), doing lock-set cycles and
// retrying an edit whose reply was lost with the same key. What it was told of its locks and what
// it did under them is recorded (workload-log.ts) for the checks; it asserts nothing itself.
//
// Two kinds (docs/cluster.md, "How it is tested"): a `protocol` agent locks, reads, edits once and
// releases, keeping its own account of its lock from what the client tells it; a `handle` agent
// works through LockHandles (withLocks for writes, acquire() for reads), edits twice per hold and
// checks the handle before each edit, and its holds are what the handle said. A `blind` agent
// edits without expectedHashes, so that a lost update would be committed rather than refused.

/** A reply slower than this is a dead node (a paused one keeps the socket open): drop and go on. */
const CALL_TIMEOUT_MS = 4_000;
/** An edit is sent at most this often; past it, its outcome stays unknown. */
const MAX_ATTEMPTS = 20;
/** What a refused edit says when the lock it named is no longer the session's. */
const LOCK_GONE = ['LOCK_REQUIRED', 'STALE_FENCE', 'NOT_HELD'];
/** A handle agent's edits under one write lock, the handle checked before each. */
const EDITS_PER_HOLD = 2;
/** The share of a handle agent's cycles that read a function twice under a read lock, and edit nothing. */
const READ_SHARE = 0.25;
/** A suspended handle is waited on this long for the session to be back (the progress bound is 30 s). */
const SETTLE_BOUND_MS = 20_000;

export interface AgentKind {
  view: Hold['view'];
  blind: boolean;
}

export class ClusterAgent {
  /** The holds not ended yet. */
  private readonly open = new Set<Hold>();
  private readonly pick: () => number;
  private disconnectedAt = 0;
  private edits = 0;

  private constructor(
    private readonly index: number,
    private readonly kind: AgentKind,
    private readonly client: LockstepClient,
    private readonly log: AgentLog,
    private readonly fns: readonly number[],
    /** The lease each lock asks for. */
    private readonly leaseMs: number,
    seed: number,
  ) {
    this.pick = seededRandom(seed);
    client.on('connected', ({ hello, resumed, reconnect }) => {
      if (!reconnect) log.sessions.started++;
      else if (resumed) log.sessions.resumed++;
      // Emitted once the SDK has settled the locks (given back what it did not believe it held,
      // reported lost what it did not get back) and before any waiting call goes on.
      const at = now();
      for (const r of hello.restored ?? []) {
        if (!('function' in r.resource)) continue;
        const fn = r.resource.function;
        const kept = client.heldUnder(r.resource, r.fence);
        log.restores.push({
          agent: index,
          sessionId: hello.sessionId,
          url: client.url,
          sentAt: this.disconnectedAt,
          at,
          fn,
          fence: r.fence,
          mode: r.mode,
          expiresAt: r.expiresAt,
          kept,
        });
        for (const h of this.holding(fn, [r.fence])) {
          // Given back with what was left of its lease: what the holder is told now.
          h.restored++;
          h.leaseEnd = onOurClock(r.expiresAt);
        }
      }
    });
    client.on('suspended', ({ locks }) => {
      for (const g of locks)
        if ('function' in g.resource) for (const h of this.holding(g.resource.function, [g.fence])) h.suspended++;
    });
    client.on('renewed', (grants) => {
      for (const g of grants)
        if ('function' in g.resource)
          for (const h of this.holding(g.resource.function, [g.fence])) h.leaseEnd = onOurClock(g.expiresAt);
    });
    // A protocol agent goes by the client's reports; a handle agent by its handles' (opened()).
    client.on('lost', ({ resource, fences, reason }) => {
      if (kind.view !== 'protocol' || !('function' in resource)) return;
      for (const h of this.holding(resource.function, fences)) this.ended(h, `lost (${reason})`);
    });
    client.on('sessionLost', ({ previousSessionId }) => {
      log.sessions.lost++;
      if (kind.view !== 'protocol') return;
      for (const h of this.open) if (h.sessionId === previousSessionId) this.ended(h, 'session lost');
    });
    client.on('closed', () => {
      for (const h of this.open) this.ended(h, 'closed');
    });
    client.on('disconnected', () => {
      this.disconnectedAt = now();
    });
    client.on('failover', () => {
      log.sessions.failovers++;
    });
    // Failures no caller waits for (a failed release of a restored lock): the cycles see their effect.
    client.on('error', () => {});
  }

  static async open(
    index: number,
    kind: AgentKind,
    urls: readonly string[],
    log: AgentLog,
    fns: readonly number[],
    leaseMs: number,
    seed: number,
  ): Promise<ClusterAgent> {
    const client = new LockstepClient({
      urls: [...urls],
      name: `agent-${index}`,
      callTimeoutMs: CALL_TIMEOUT_MS,
      // A paused node holds a socket open without answering: pass it over quickly.
      connectTimeoutMs: 1_000,
      reconnect: { initialDelayMs: 50, maxDelayMs: 1_000 },
    });
    const agent = new ClusterAgent(index, kind, client, log, fns, leaseMs, seed);
    await client.connect();
    return agent;
  }

  /** One cycle on a function drawn from the agent's seeded sequence. */
  async cycle(): Promise<void> {
    this.log.cycles++;
    const fn = this.fns[Math.floor(this.pick() * this.fns.length)]!;
    if (this.kind.view === 'protocol') await this.protocolCycle(fn);
    else if (this.pick() < READ_SHARE) await this.readCycle(fn);
    else await this.handleCycle(fn);
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  /** Lock, read, edit once under the fence granted, release. */
  private async protocolCycle(fn: number): Promise<void> {
    const handle = await this.acquire({ functions: [fn], mode: 'write' });
    if (handle === undefined) return;
    const hold = this.opened(handle, fn);
    try {
      const { hash } = await this.client.function.get({ function: fn });
      // What it was told decides: a loss reported, or its lease over, and it does not edit.
      if (hold.to !== undefined || now() >= hold.leaseEnd) return;
      await this.editUnder(hold, hold.fence, hash);
    } catch {
      // The read failed (the store or the leader away): the cycle ends without an edit.
    } finally {
      this.ended(hold, 'released');
      await handle.release().catch(() => undefined);
    }
  }

  /** withLocks: read and edit, twice, the handle checked before each read and each edit. */
  private async handleCycle(fn: number): Promise<void> {
    await this.client
      .withLocks({ functions: [fn], mode: 'write', ttlMs: this.leaseMs, autoRenew: true }, async (lock) => {
        const hold = this.opened(lock, fn);
        try {
          for (let i = 0; i < EDITS_PER_HOLD; i++) {
            if (!(await this.usable(lock))) return;
            const { hash } = await this.client.function.get({ function: fn });
            // As examples/minimal-agent.ts does: a handle that is not held is not used.
            if (!(await this.usable(lock))) return;
            const record = await this.editUnder(hold, lock.fences[String(fn)]!, hash);
            if (record.outcome.kind !== 'ok') return;
          }
        } finally {
          this.ended(hold, 'released');
        }
      })
      .catch((err: unknown) => {
        // A client that gave up on the cluster is the end of this agent: the run reports it stuck.
        if (isLockstepError(err, 'CLOSED')) throw err;
      });
  }

  /** A read lock: the function read twice, which no writer may change in between. */
  private async readCycle(fn: number): Promise<void> {
    const lock = await this.acquire({ functions: [fn], mode: 'read', autoRenew: true });
    if (lock === undefined) return;
    const hold = this.opened(lock, fn);
    try {
      if (!(await this.usable(lock))) return;
      const before = (await this.client.function.get({ function: fn })).hash;
      const after = (await this.client.function.get({ function: fn })).hash;
      if (await this.usable(lock)) this.log.reads.push({ agent: this.index, fn, fence: hold.fence, before, after });
    } catch {
      // A read failed: nothing to compare.
    } finally {
      this.ended(hold, 'released');
      await lock.release().catch(() => undefined);
    }
  }

  private acquire(request: AcquireOptions): Promise<LockHandle | undefined> {
    return this.client.acquire({ ...request, ttlMs: this.leaseMs }).catch((err: unknown) => {
      if (isLockstepError(err, 'CLOSED')) throw err;
      return undefined;
    });
  }

  /** A hold from now, as the grant just received tells it; a handle agent's ends when its handle is lost. */
  private opened(handle: LockHandle, fn: number): Hold {
    const grant = handle.grants[0]!;
    const hold: Hold = {
      agent: this.index,
      view: this.kind.view,
      sessionId: this.client.sessionId as string,
      fn,
      mode: grant.mode,
      fence: grant.fence,
      from: now(),
      to: undefined,
      end: undefined,
      leaseEnd: onOurClock(grant.expiresAt),
      lastUse: 0,
      suspended: 0,
      restored: 0,
    };
    this.log.holds.push(hold);
    this.open.add(hold);
    if (this.kind.view === 'handle') {
      const lose = () => this.ended(hold, `lost (${handle.lost?.reason})`);
      if (handle.signal.aborted) lose();
      else handle.signal.addEventListener('abort', lose, { once: true });
    }
    return hold;
  }

  private ended(hold: Hold, end: string): void {
    if (!this.open.delete(hold)) return;
    hold.to = now();
    hold.end = end;
  }

  /** The open holds on fn under one of these fences. */
  private holding(fn: number, fences: readonly number[]): Hold[] {
    return [...this.open].filter((h) => h.fn === fn && fences.includes(h.fence));
  }

  /** Whether the handle is held, once a suspension is over (held again, or lost). */
  private async usable(lock: LockHandle): Promise<boolean> {
    if (lock.state === 'suspended') await this.settled(lock);
    return lock.state === 'held';
  }

  /** Resolves when the session is back (each lock held again or lost), the client closed, or the handle lost. */
  private settled(lock: LockHandle): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.client.off('connected', done);
        this.client.off('closed', done);
        lock.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, SETTLE_BOUND_MS);
      this.client.on('connected', done);
      this.client.on('closed', done);
      lock.signal.addEventListener('abort', done);
    });
  }

  /** An edit under the hold, which the agent acts on from now; a refusal that says the lock is gone ends a protocol hold. */
  private async editUnder(hold: Hold, fence: number, hash: string): Promise<EditRecord> {
    hold.lastUse = now();
    const record = await this.edit(hold.fn, fence, this.kind.blind ? undefined : hash);
    if (record.outcome.kind === 'ok') this.log.progress.push({ agent: this.index, at: now() });
    else if (
      record.outcome.kind === 'error' &&
      LOCK_GONE.includes(record.outcome.type) &&
      this.kind.view === 'protocol'
    )
      this.ended(hold, `refused (${record.outcome.type})`);
    return record;
  }

  private async edit(fn: number, fence: number, hash: string | undefined): Promise<EditRecord> {
    const seq = ++this.edits;
    const nodeId = this.index * NODE_BASE + seq;
    const record: EditRecord = {
      agent: this.index,
      seq,
      nodeId,
      fn,
      fence,
      sessionId: this.client.sessionId as string,
      key: `agent-${this.index}-edit-${seq}`,
      blind: hash === undefined,
      sentAt: now(),
      answeredAt: 0,
      answeredBy: '',
      outcome: { kind: 'unknown' },
      attempts: 0,
      refusals: [],
    };
    this.log.edits.push(record);
    const params = {
      ops: [
        {
          op: 'addNode' as const,
          function: fn,
          node: { id: nodeId, op: 'const', attrs: { agent: this.index, seq } },
        },
      ],
      ...(hash === undefined ? {} : { expectedHashes: { [fn]: hash } }),
      fences: { [fn]: fence },
      key: record.key,
    };
    // The key is the session's: a retry in it answers what the first attempt did. An answer from
    // another session (the old one was lost) says nothing of the first attempt but an ok. A
    // retryable refusal (the store unreachable, maybe after the commit was sent) is no answer either.
    while (record.outcome.kind === 'unknown' && this.client.sessionId === record.sessionId) {
      if (record.attempts >= MAX_ATTEMPTS) break;
      record.attempts++;
      const sentAt = now();
      const outcome = await this.client.edit.apply(params).then(
        (result): Outcome => ({ kind: 'ok', result }),
        (err: LockstepClientError): Outcome =>
          // A local error (no reply: disconnected, timed out) leaves the outcome unknown.
          isLockstepError(err) && err.code !== 0
            ? { kind: 'error', type: err.type, code: err.code, data: err.data }
            : { kind: 'unknown' },
      );
      record.answeredAt = now();
      record.answeredBy = this.client.url;
      // A drop while it was out: the SDK sends an edit whose reply was lost again with its key
      // after the resume, maybe to another node. That was a second attempt, answered by replay.
      if (this.disconnectedAt >= sentAt) record.attempts++;
      if (outcome.kind === 'error' && outcome.data?.retryable === true) {
        record.refusals.push({ type: outcome.type, at: record.answeredAt });
        await new Promise((resolve) => setTimeout(resolve, Math.min(Number(outcome.data?.retryAfterMs ?? 100), 1_000)));
      } else if (this.client.sessionId === record.sessionId) record.outcome = outcome;
      else if (outcome.kind === 'ok') {
        record.sessionId = this.client.sessionId as string;
        record.outcome = outcome;
      }
    }
    return record;
  }
}
