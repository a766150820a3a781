import { FaultClient, type Outcome } from '../helpers/fault-client.ts';

// One agent of the cluster workload: it knows every node's URL, follows NOT_LEADER's data.leader,
// resumes its session on whichever node leads, reconciles the locks a new leader restores to it
// (keeps the one it believes it holds, releases the others) and retries an edit whose reply was
// lost with the same key. What it saw is recorded for the checks; it asserts nothing itself.

/** A reply slower than this is a dead node (a paused one keeps the socket open): drop and go on. */
const CALL_TIMEOUT_MS = 4_000;
/** How long an agent keeps looking for a leader before the run is declared stuck. */
const CONNECT_BOUND_MS = 60_000;

export interface EditRecord {
  agent: number;
  cycle: number;
  nodeId: number;
  fn: number;
  fence: number;
  sessionId: string;
  key: string;
  sentAt: number;
  /** When the known answer came. */
  answeredAt: number;
  /** The first known answer; a retry with the same key answers what the first attempt did. */
  outcome: Outcome;
  attempts: number;
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
  sessions: { started: number; resumed: number; lost: number };
}

export const newLog = (): AgentLog => ({
  edits: [],
  holds: [],
  restores: [],
  progress: [],
  sessions: { started: 0, resumed: 0, lost: 0 },
});

/** Node ids encode who appended them: agent * NODE_BASE + cycle. */
export const NODE_BASE = 1_000_000;

interface Held {
  fn: number;
  fence: number;
  hold: HoldRecord;
}

export class ClusterAgent {
  private client: FaultClient | undefined;
  private url: string;
  private session: { id: string; secret: string } | undefined;
  private held: Held | undefined;

  constructor(
    private readonly index: number,
    private readonly urls: readonly string[],
    private readonly log: AgentLog,
  ) {
    this.url = urls[index % urls.length]!;
  }

  /** One lock-set cycle on fn: lock, read, append a node under the fence, release. */
  async cycle(fn: number, cycle: number): Promise<void> {
    const nodeId = this.index * NODE_BASE + cycle;
    for (;;) {
      await this.acquire(fn);
      const read = await this.call('function.get', { function: fn });
      if (read.kind === 'ok' && this.held !== undefined) {
        const { fence, hold } = this.held;
        const record = await this.edit(fn, fence, read.result.hash, nodeId, cycle);
        if (record.outcome.kind === 'ok') {
          hold.to = Math.max(hold.to, record.sentAt);
          this.log.progress.push({ agent: this.index, at: Date.now() });
        }
        await this.release();
        return;
      }
    }
  }

  async close(): Promise<void> {
    await this.client?.close();
  }

  /** Until the agent holds fn's write lock (a grant, or its own lock restored). */
  private async acquire(fn: number): Promise<void> {
    while (this.held?.fn !== fn) {
      if (this.held !== undefined) await this.release();
      const r = await this.call('lock.acquire', { functions: [fn], mode: 'write', wait: true, ttlMs: 10_000 });
      if (r.kind !== 'ok') continue;
      const grant =
        r.result.status === 'granted'
          ? r.result.grants[0]
          : (await this.client!.next((n) => n.method === 'lock.granted' && n.params.ticket === r.result.ticket))?.params
              .grants[0];
      if (grant === undefined) continue;
      const at = Date.now();
      const hold: HoldRecord = {
        agent: this.index,
        sessionId: this.session!.id,
        fn,
        fence: grant.fence,
        how: 'granted',
        from: at,
        to: at,
      };
      this.log.holds.push(hold);
      this.held = { fn, fence: grant.fence, hold };
    }
  }

  private async edit(fn: number, fence: number, hash: string, nodeId: number, cycle: number): Promise<EditRecord> {
    const record: EditRecord = {
      agent: this.index,
      cycle,
      nodeId,
      fn,
      fence,
      sessionId: this.session!.id,
      key: `agent-${this.index}-cycle-${cycle}`,
      sentAt: Date.now(),
      answeredAt: 0,
      outcome: { kind: 'unknown' },
      attempts: 0,
    };
    this.log.edits.push(record);
    const params = {
      ops: [{ op: 'addNode', function: fn, node: { id: nodeId, op: 'const', attrs: { agent: this.index, cycle } } }],
      expectedHashes: { [fn]: hash },
      fences: { [fn]: fence },
      key: record.key,
    };
    // Retried only in the same session: the key is the session's, so a retry answers what the
    // first attempt did. A lost session leaves the outcome unknown.
    while (record.outcome.kind === 'unknown' && this.session?.id === record.sessionId) {
      record.attempts++;
      if (record.attempts > 1) record.sentAt = Date.now();
      record.outcome = await this.call('edit.apply', params);
      record.answeredAt = Date.now();
    }
    return record;
  }

  private async release(): Promise<void> {
    const held = this.held;
    if (held === undefined) return;
    this.held = undefined;
    const sentAt = Date.now();
    const r = await this.call('lock.release', { functions: [held.fn] });
    if (r.kind === 'ok') held.hold.to = Math.max(held.hold.to, sentAt);
  }

  /** A call on the leader; `unknown` if the connection died or timed out (then it reconnects). */
  private async call(method: string, params: unknown): Promise<Outcome> {
    if (this.client === undefined || this.client.isClosed) await this.connect();
    const client = this.client!;
    let timer: NodeJS.Timeout | undefined;
    const out = await Promise.race([
      client.call(method, params),
      new Promise<Outcome>((resolve) => {
        timer = setTimeout(() => {
          void client.terminate();
          resolve({ kind: 'unknown' });
        }, CALL_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(timer);
    if (out.kind === 'error' && out.type === 'NOT_LEADER') await client.close();
    else if (out.kind === 'error' && out.data?.retryable === true) {
      // As the SDK does: a retryable refusal (the store unreachable for a moment) is waited out.
      await new Promise((resolve) => setTimeout(resolve, Math.min(Number(out.data?.retryAfterMs ?? 100), 1_000)));
    }
    return out;
  }

  /** Finds the leader and says hello there: a resume while the session is known, else a new session. */
  private async connect(): Promise<void> {
    const end = Date.now() + CONNECT_BOUND_MS;
    let next = this.urls.indexOf(this.url);
    for (let attempt = 0; ; attempt++) {
      if (Date.now() > end) throw new Error(`agent ${this.index}: no leader within ${CONNECT_BOUND_MS} ms`);
      const url = this.url;
      const client = await FaultClient.connect(url).catch(() => undefined);
      const sentAt = Date.now();
      const hello =
        client === undefined
          ? undefined
          : await client.call('session.hello', {
              protocol: 1,
              name: `agent-${this.index}`,
              ...(this.session === undefined
                ? {}
                : { resume: { sessionId: this.session.id, secret: this.session.secret } }),
            });
      if (client !== undefined && hello?.kind === 'ok') {
        this.client = client;
        if (this.session === undefined) {
          this.session = { id: hello.result.sessionId, secret: hello.result.resumeSecret };
          this.log.sessions.started++;
        } else {
          this.log.sessions.resumed++;
          await this.reconcile(url, sentAt, hello.result.restored ?? []);
        }
        return;
      }
      await client?.close();
      const error = hello?.kind === 'error' ? hello : undefined;
      if (error?.type === 'NOT_FOUND') {
        // The session is gone (left, or its grace ran out): whatever it held is gone with it.
        this.session = undefined;
        this.held = undefined;
        this.log.sessions.lost++;
        continue;
      }
      const leader = error?.type === 'NOT_LEADER' ? (error.data?.leader as string | null | undefined) : undefined;
      if (typeof leader === 'string' && leader !== url) {
        this.url = leader;
        continue;
      }
      next = (next + 1) % this.urls.length;
      this.url = this.urls[next]!;
      // Waits what NOT_LEADER says is left of the lease, capped, with jitter; a round of the list
      // without a leader backs off a little more.
      const hint = Number(error?.data?.retryAfterMs ?? 100);
      const wait = Math.min(hint, 500) + Math.random() * 50 + (next === 0 ? Math.min(attempt, 10) * 20 : 0);
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  /** Keeps the restored lock it believes it holds, releases the others (the SDK's rule). */
  private async reconcile(url: string, sentAt: number, restored: any[]): Promise<void> {
    const at = Date.now();
    let keptHeld = false;
    for (const r of restored) {
      const fn = r.resource.function as number;
      const kept = this.held !== undefined && this.held.fn === fn && this.held.fence === r.fence && r.mode === 'write';
      this.log.restores.push({
        agent: this.index,
        sessionId: this.session!.id,
        url,
        sentAt,
        at,
        fn,
        fence: r.fence,
        mode: r.mode,
        expiresAt: r.expiresAt,
        kept,
      });
      const hold: HoldRecord = {
        agent: this.index,
        sessionId: this.session!.id,
        fn,
        fence: r.fence,
        how: 'restored',
        from: at,
        to: at,
      };
      this.log.holds.push(hold);
      if (kept) {
        this.held = { fn, fence: r.fence, hold };
        keptHeld = true;
        continue;
      }
      const releaseAt = Date.now();
      const out = await this.client!.call('lock.release', { functions: [fn] });
      if (out.kind === 'ok') hold.to = releaseAt;
    }
    // Not given back: the lock is gone (a pending edit under it will be refused); acquire anew.
    if (!keptHeld) this.held = undefined;
  }
}
