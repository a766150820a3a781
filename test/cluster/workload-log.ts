import type { Outcome } from '../helpers/fault-client.ts';

// What the cluster workload's agents record, for the checks (workload-checks.ts) to hold against
// what PostgreSQL committed. Agents assert nothing themselves.

/**
 * The one clock of the workload: monotonic (performance.now(), so no two agents' times disagree
 * and none goes back), in epoch milliseconds (performance.timeOrigin), so that it also compares
 * with the database's commit times and the servers' expiresAt: every process runs on this
 * machine, whose wall clock the run assumes is not stepped meanwhile.
 */
export const now = (): number => performance.timeOrigin + performance.now();

/** A server's time (an ISO expiresAt, on this machine's wall clock) on the workload's clock. */
export const onOurClock = (iso: string): number => now() + (Date.parse(iso) - Date.now());

/** Node ids encode who appended them: agent * NODE_BASE + the agent's edit number. */
export const NODE_BASE = 1_000_000;

export interface EditRecord {
  agent: number;
  /** The agent's nth edit. */
  seq: number;
  nodeId: number;
  fn: number;
  fence: number;
  sessionId: string;
  key: string;
  /** Sent without expectedHashes: a lost update would be committed, not refused. */
  blind: boolean;
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
 * A lock as its holder saw it (docs/cluster.md, "How it is tested"): from the moment the grant
 * was received until the release was sent or the loss reported, suspended spans included, bounded
 * by the end of the lease it was last told of, and never ending before the agent last acted on it.
 */
export interface Hold {
  agent: number;
  /**
   * Whose account it is: `protocol`, the agent's own from what the client told it (grants,
   * `lost`, `sessionLost`, refusals); `handle`, a LockHandle's state (held or suspended).
   */
  view: 'protocol' | 'handle';
  sessionId: string;
  fn: number;
  mode: 'read' | 'write';
  fence: number;
  /** When the grant was received. */
  from: number;
  /** When the release was sent or the loss reported; undefined while the agent still held it. */
  to: number | undefined;
  /** What ended it: released, lost (reason), session lost, refused (type), closed. */
  end: string | undefined;
  /** The end of its lease as last told: the grant's expiresAt, a renewal's, a restore's. */
  leaseEnd: number;
  /** When the agent last checked it held the lock and sent an edit under it. */
  lastUse: number;
  /** How often the socket dropped under it, and how often a new leader gave it back. */
  suspended: number;
  restored: number;
}

/** A read under a read lock: the hash at the start and at the end, both read while the lock was held. */
export interface StableRead {
  agent: number;
  fn: number;
  fence: number;
  before: string;
  after: string;
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
  /** When the agents started: the printed times count from here. */
  startedAt: number;
  cycles: number;
  edits: EditRecord[];
  holds: Hold[];
  reads: StableRead[];
  restores: RestoreRecord[];
  /** When each agent finished a cycle with an acknowledged edit. */
  progress: Array<{ agent: number; at: number }>;
  sessions: { started: number; resumed: number; lost: number; failovers: number };
}

export const newLog = (): AgentLog => ({
  startedAt: now(),
  cycles: 0,
  edits: [],
  holds: [],
  reads: [],
  restores: [],
  progress: [],
  sessions: { started: 0, resumed: 0, lost: 0, failovers: 0 },
});

/**
 * How far a server's time read on our clock may be off: an expiresAt and Date.now() are whole
 * milliseconds, and performance.timeOrigin is taken to about one.
 */
export const SERVER_CLOCK_MS = 2;

/**
 * When a hold ended as its holder saw it: at the release sent or the loss reported, or the end of
 * the lease it was told of if that came first (a holder cut off cannot hear of the loss; it knows
 * its lease), but not before it last acted on it.
 */
export const holdEnd = (h: Hold): number =>
  Math.max(h.lastUse, Math.min(h.to ?? Number.POSITIVE_INFINITY, h.leaseEnd - SERVER_CLOCK_MS));
