import { isLockstepError, LockstepClient, type LockstepClientError } from '../../src/client/index.ts';
import type { Outcome } from '../helpers/fault-client.ts';

// One agent of the cluster workload: the SDK given every node's URL (it finds the leader, resumes
// there after a failover and reconciles the locks the new leader restores), doing lock-set cycles
// and retrying an edit whose reply was lost with the same key. What it saw is recorded for the
// checks; it asserts nothing itself.

/** A reply slower than this is a dead node (a paused one keeps the socket open): drop and go on. */
const CALL_TIMEOUT_MS = 4_000;
/** An edit is sent at most this often; past it, its outcome stays unknown. */
const MAX_ATTEMPTS = 20;

export interface EditRecord {
  agent: number;
  cycle: number;
  nodeId: number;
  fn: number;
  fence: number;
  sessionId: string;
  key: string;
  /** When the first attempt was sent: the lock was held when any attempt committed, after it. */
  sentAt: number;
  /** When the known answer came, and the node that gave it. */
  answeredAt: number;
  answeredBy: string;
  /** The first known answer; a retry with the same key answers what the first attempt did. */
  outcome: Outcome;
  attempts: number;
  /** Retryable refusals on the way (STORE_UNAVAILABLE) and when they came: each retried with the same key. */
  refusals: Array<{ type: string; at: number }>;
}

/**
 * A span in which the agent knows the server held its write lock (fence) on fn: from when it saw
 * the grant (or restore) to the last request the server accepted under it. The server's own hold
 * covers it, so two such spans of different fences that overlap are two conflicting holders.
 */
export interface HoldRecord {
  agent: number;
  sessionId: string;
  fn: number;
  fence: number;
  how: 'granted' | 'restored';
  from: number;
  to: number;
}

export interface RestoreRecord {
  agent: number;
  sessionId: string;
  /** The node that answered the resume, and when the hello was sent and answered. */
  url: string;
  sentAt: number;
  at: number;
  fn: number;
  fence: number;
  mode: string;
  expiresAt: string;
  kept: boolean;
}

export interface AgentLog {
  edits: EditRecord[];
  holds: HoldRecord[];
  restores: RestoreRecord[];
  /** When each agent finished a cycle with an acknowledged edit. */
  progress: Array<{ agent: number; at: number }>;
  sessions: { started: number; resumed: number; lost: number; failovers: number };
}

export const newLog = (): AgentLog => ({
  edits: [],
  holds: [],
  restores: [],
  progress: [],
  sessions: { started: 0, resumed: 0, lost: 0, failovers: 0 },
});

/** Node ids encode who appended them: agent * NODE_BASE + cycle. */
export const NODE_BASE = 1_000_000;

const holdKey = (fn: number, fence: number) => `${fn}/${fence}`;

export class ClusterAgent {
  /** The spans of the locks the client holds now, by function and fence. */
  private readonly holding = new Map<string, HoldRecord>();
  private disconnectedAt = 0;

  private constructor(
    private readonly index: number,
    private readonly client: LockstepClient,
    private readonly log: AgentLog,
  ) {
    client.on('connected', ({ hello, resumed, reconnect }) => {
      if (!reconnect) log.sessions.started++;
      else if (resumed) log.sessions.resumed++;
      // Emitted once the SDK has reconciled (given back what it did not believe it held) and
      // before any waiting call goes on: a lock it kept is held from here. One it gave back was
      // held for a moment before, no span known.
      const at = Date.now();
      for (const r of hello.restored ?? []) {
        if (!('function' in r.resource)) continue;
        const fn = r.resource.function;
        const kept = r.mode === 'write' && client.heldUnder(r.resource, r.fence);
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
        if (!kept) {
          this.holding.delete(holdKey(fn, r.fence));
          continue;
        }
        const hold: HoldRecord = {
          agent: index,
          sessionId: hello.sessionId,
          fn,
          fence: r.fence,
          how: 'restored',
          from: at,
          to: at,
        };
        log.holds.push(hold);
        this.holding.set(holdKey(fn, r.fence), hold);
      }
    });
    client.on('sessionLost', () => {
      log.sessions.lost++;
      this.holding.clear();
    });
    client.on('disconnected', () => {
      this.disconnectedAt = Date.now();
    });
    client.on('failover', () => {
      log.sessions.failovers++;
    });
    // Failures no caller waits for (a failed release of a restored lock): the cycles see their effect.
    client.on('error', () => {});
  }

  static async open(index: number, urls: readonly string[], log: AgentLog): Promise<ClusterAgent> {
    const client = new LockstepClient({
      urls: [...urls],
      name: `agent-${index}`,
      callTimeoutMs: CALL_TIMEOUT_MS,
      // A paused node holds a socket open without answering: pass it over quickly.
      connectTimeoutMs: 1_000,
      reconnect: { initialDelayMs: 50, maxDelayMs: 1_000 },
    });
    const agent = new ClusterAgent(index, client, log);
    await client.connect();
    return agent;
  }

  /** One lock-set cycle on fn: lock, read, append a node under the fence, release. */
  async cycle(fn: number, cycle: number): Promise<void> {
    const handle = await this.client.acquire({ functions: [fn], mode: 'write', ttlMs: 10_000 }).catch((err) => {
      // A client that gave up on the cluster is the end of this agent: the run reports it stuck.
      if (isLockstepError(err, 'CLOSED')) throw err;
      return undefined;
    });
    if (handle === undefined) return;
    this.hold(fn, handle.fences[String(fn)]!, 'granted', Date.now());
    try {
      const { hash } = await this.client.function.get({ function: fn });
      // The handle names the lock as held now (a lost lock's fence is its old one, which the server refuses).
      const fence = handle.fences[String(fn)]!;
      this.hold(fn, fence, 'granted', Date.now());
      const record = await this.edit(fn, fence, hash, cycle);
      if (record.outcome.kind === 'ok') {
        const hold = this.holding.get(holdKey(fn, fence));
        if (hold !== undefined) hold.to = Math.max(hold.to, record.sentAt);
        this.log.progress.push({ agent: this.index, at: Date.now() });
      }
    } catch {
      // The read failed (the store or the leader away): the cycle ends without an edit.
    } finally {
      await this.release(fn, handle.fences[String(fn)]!, () => handle.release());
    }
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  private hold(fn: number, fence: number, how: HoldRecord['how'], at: number): HoldRecord {
    const existing = this.holding.get(holdKey(fn, fence));
    if (existing !== undefined) return existing;
    const hold: HoldRecord = {
      agent: this.index,
      sessionId: this.client.sessionId as string,
      fn,
      fence,
      how,
      from: at,
      to: at,
    };
    this.log.holds.push(hold);
    this.holding.set(holdKey(fn, fence), hold);
    return hold;
  }

  private async release(fn: number, fence: number, release: () => Promise<unknown[]>): Promise<void> {
    const hold = this.holding.get(holdKey(fn, fence));
    this.holding.delete(holdKey(fn, fence));
    const sentAt = Date.now();
    const released = await release().catch(() => []);
    if (hold !== undefined && released.length > 0) hold.to = Math.max(hold.to, sentAt);
  }

  private async edit(fn: number, fence: number, hash: string, cycle: number): Promise<EditRecord> {
    const nodeId = this.index * NODE_BASE + cycle;
    const record: EditRecord = {
      agent: this.index,
      cycle,
      nodeId,
      fn,
      fence,
      sessionId: this.client.sessionId as string,
      key: `agent-${this.index}-cycle-${cycle}`,
      sentAt: Date.now(),
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
          node: { id: nodeId, op: 'const', attrs: { agent: this.index, cycle } },
        },
      ],
      expectedHashes: { [fn]: hash },
      fences: { [fn]: fence },
      key: record.key,
    };
    // The key is the session's: a retry in it answers what the first attempt did. An answer from
    // another session (the old one was lost) says nothing of the first attempt but an ok. A
    // retryable refusal (the store unreachable, maybe after the commit was sent) is no answer either.
    while (record.outcome.kind === 'unknown' && this.client.sessionId === record.sessionId) {
      if (record.attempts >= MAX_ATTEMPTS) break;
      record.attempts++;
      const sentAt = Date.now();
      const outcome = await this.client.edit.apply(params).then(
        (result): Outcome => ({ kind: 'ok', result }),
        (err: LockstepClientError): Outcome =>
          // A local error (no reply: disconnected, timed out) leaves the outcome unknown.
          isLockstepError(err) && err.code !== 0
            ? { kind: 'error', type: err.type, code: err.code, data: err.data }
            : { kind: 'unknown' },
      );
      record.answeredAt = Date.now();
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
