import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { LockstepError } from '../protocol/errors.ts';
import {
  migrateBeforeLease,
  type ReservedFences,
  shownLocation,
  StoreError,
  type WriteFence,
} from '../service/index.ts';
import {
  holdsLease,
  type LeaseState,
  readLease,
  recordedBackends,
  registerBackend,
  renew,
  resign,
  takeOver,
  terminate,
} from './lease.ts';
import { type NodeClocks, readClocks, ServingDeadline, systemClocks } from './deadline.ts';
import { connectionTuning, LeaseConnection, leaseFailure } from './lease-connection.ts';
import type { NodeMetrics, StepDownReason } from './node-metrics.ts';

/** One leadership of this node: its epoch and term, and when it must stop serving. */
export interface Term {
  readonly epoch: number;
  readonly term: string;
  /** Past it the node may not serve (docs/cluster.md, rule 2). */
  readonly deadline: ServingDeadline;
}

export interface LeadershipOptions {
  db: string;
  nodeId: string;
  advertise: string;
  ttlMs: number;
  renewMs: number;
  driftMs: number;
  logger: Logger;
  metrics: NodeMetrics;
  /** The node's clocks; the system's unless a test steps them. */
  clocks?: NodeClocks;
  /** Elected: the leader state may be built (after the old leader's backends are ended). */
  onElected(term: Term): void;
  /** No longer leading. Called in a microtask of its own, never inside the check that found it. */
  onDeposed(term: Term, reason: StepDownReason): void;
}

/** Fences per leader state: a full block per failover is the most a takeover skips. */
const CLUSTER_FENCE_BLOCK = 10_000;

/**
 * The lease loop of one node: a standby watches the lease and takes it over once it has expired
 * (rule 1); a leader renews it every renewMs and serves only until its deadline, the moment it
 * sent its last successful renewal plus the lease minus the drift margin, by both of its clocks
 * (rule 2, deadline.ts). Every check of that deadline is synchronous (serving()), and the first
 * that finds it passed, or the clocks disagreeing, steps down.
 */
export class Leadership {
  private held: Term | undefined;
  private seen: { lease: LeaseState; at: number } | undefined;
  private readonly conn: LeaseConnection;
  private readonly clocks: NodeClocks;
  private loop: NodeJS.Timeout | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private stopped = false;
  /**
   * The lease records its holder's backends by pid and start time (schema 6 on): a holder stuck
   * past its lease can be ended by them. Any schema this node takes over has it, as its takeover
   * migrates; one older than 6 under a running leader has pids alone, which may have been reused.
   */
  private backendStarts = false;
  /** The last outdated-schema refusal logged, so that a node that may not lead says so once. */
  private outdated: string | undefined;
  /** The last statement on the lease got an answer. */
  answered = false;

  constructor(private readonly o: LeadershipOptions) {
    this.clocks = o.clocks ?? systemClocks;
    // A lease connection opened again while leading is one of the leader's backends (rule 7).
    this.conn = new LeaseConnection(o.db, o.ttlMs, async (client) => {
      const held = this.held;
      if (held !== undefined) await registerBackend(client, held.epoch, held.term);
    });
  }

  /** This node holds the lease (its leader state may not be built yet). */
  get holding(): boolean {
    return this.held !== undefined;
  }

  /** The epoch this node holds, or the last one it saw (0: nobody has led yet). */
  get epoch(): number {
    return this.held?.epoch ?? this.seen?.lease.epoch ?? 0;
  }

  /** The leader's advertised URL as last seen; null while there is none. */
  get leaderUrl(): string | null {
    if (this.held !== undefined) return this.o.advertise;
    return this.leaseLeftMs() > 0 ? (this.seen?.lease.url ?? null) : null;
  }

  /** What is left of the current lease by the last look at it (0 when none is live). */
  leaseLeftMs(): number {
    if (this.seen === undefined) return 0;
    return Math.max(0, this.seen.lease.remainingMs - (this.clocks.monotonic() - this.seen.at));
  }

  /** The answer a standby gives (docs/cluster.md, "Three nodes"). */
  notLeader(): LockstepError {
    const leader = this.leaderUrl;
    const left = this.leaseLeftMs();
    return new LockstepError(
      'NOT_LEADER',
      leader === null
        ? 'this node is a standby and no leader is known yet'
        : `this node is a standby; the leader is ${leader}`,
      { leader },
      // With no live lease, a standby takes over within a renewal interval.
      left > 0 ? left : this.o.renewMs,
    );
  }

  /**
   * docs/cluster.md rule 2, synchronous: true while `term` (default: the current one) is held and its
   * deadline has not passed. The first call past the deadline steps down.
   */
  serving(term: Term | undefined = this.held): boolean {
    const held = this.held;
    if (held === undefined || held !== term) return false;
    const check = held.deadline.check();
    if (check === 'serving') return true;
    this.stepDown(check);
    return false;
  }

  /** What the leader state of `term` is built with: its store's write fence and fence blocks. */
  storeFence(term: Term): { writes: WriteFence; fences: ReservedFences } {
    const refuse = () =>
      new LockstepError('NOT_LEADER', 'this node no longer leads: the write was not made', { leader: null }, 0);
    const claim = () => {
      if (!this.serving(term)) throw refuse();
      return { epoch: term.epoch, term: term.term };
    };
    const moved = () => {
      if (this.held === term) this.stepDown('write-refused');
      return refuse();
    };
    return {
      writes: {
        ...connectionTuning(this.o.ttlMs),
        connected: (client) => registerBackend(client, term.epoch, term.term),
        claim,
        moved,
        checkWrite: async (client) => {
          claim();
          if (!(await holdsLease(client, term.epoch, term.term))) throw moved();
        },
      },
      fences: {
        block: CLUSTER_FENCE_BLOCK,
        ranOut: () => {
          if (this.held === term) this.stepDown('fences');
        },
      },
    };
  }

  /**
   * Creates the schema if there is none (the lease is part of it; a later migration waits for this
   * node's takeover, rule 7), then looks at the lease once (taking it over if it has expired) and
   * goes on in a loop. Throws StoreError when the database cannot be used.
   */
  async start(): Promise<void> {
    const shown = shownLocation(this.o.db);
    const found = await this.conn
      .use(async (c) => {
        await c.query('BEGIN');
        try {
          const result = await migrateBeforeLease(c, Date.now());
          await c.query('problem' in result ? 'ROLLBACK' : 'COMMIT');
          return result;
        } catch (err) {
          await c.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
      })
      .catch((err: unknown) => {
        const why = err instanceof Error ? err.message.replaceAll(this.o.db, shown) : String(err);
        throw new StoreError(shown, `cannot be used (${why})`);
      });
    if ('problem' in found) throw new StoreError(shown, found.problem);
    this.backendStarts = found.backendStarts;
    await this.tick();
  }

  /** Ends the loop; a leader gives its lease up so that a standby takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.loop);
    clearTimeout(this.deadlineTimer);
    await this.ticking;
    const held = this.held;
    this.held = undefined;
    if (held !== undefined) await this.conn.use((c) => resign(c, held.epoch, held.term)).catch(() => undefined);
    await this.conn.close();
  }

  /** Stops serving now: every later check fails; the node is told in a microtask. */
  stepDown(reason: StepDownReason): void {
    const held = this.held;
    if (held === undefined) return;
    this.held = undefined;
    clearTimeout(this.deadlineTimer);
    this.o.metrics.stepDowns.inc({ reason });
    this.o.logger.warn({ epoch: held.epoch, reason }, 'stepping down: no longer the leader');
    queueMicrotask(() => this.o.onDeposed(held, reason));
  }

  private tick(): Promise<void> {
    const started = this.clocks.monotonic();
    this.ticking = (this.held === undefined ? this.look() : this.renew(this.held))
      .then(
        () => {
          this.answered = true;
        },
        (err: unknown) => {
          this.answered = false;
          this.o.logger.warn({ err }, leaseFailure(err, this.clocks.monotonic() - started, this.o.ttlMs));
        },
      )
      .finally(() => {
        this.ticking = undefined;
        if (!this.stopped) this.loop = setTimeout(() => void this.tick(), this.o.renewMs);
      });
    return this.ticking;
  }

  private async renew(term: Term): Promise<void> {
    const sent = readClocks(this.clocks);
    const took = () => (this.clocks.monotonic() - sent.monotonic) / 1000;
    let ok: boolean;
    try {
      ok = await this.conn.use((c) => renew(c, term.epoch, term.term, this.o.ttlMs));
    } catch (err) {
      this.o.metrics.renewals.observe({ outcome: 'error' }, took());
      throw err;
    }
    this.o.metrics.renewals.observe({ outcome: ok ? 'ok' : 'lost' }, took());
    // Paused or deposed meanwhile: a late answer extends nothing.
    if (!this.serving(term)) return;
    if (!ok) {
      this.stepDown('taken-over');
      return;
    }
    term.deadline.extend(sent);
    this.armDeadline(term);
  }

  private async look(): Promise<void> {
    const at = this.clocks.monotonic();
    const lease = await this.conn.use(readLease);
    this.seen = { lease, at };
    if (lease.remainingMs > 0 || this.stopped) return;
    const claim = { nodeId: this.o.nodeId, url: this.o.advertise, term: randomUUID() };
    let sent = readClocks(this.clocks);
    const result = await this.conn.use((c) =>
      takeOver(c, claim, this.o.ttlMs, this.o.ttlMs / 2, () => {
        sent = readClocks(this.clocks);
      }),
    );
    if (result.kind === 'held') {
      this.seen = { lease: result.lease, at };
      return;
    }
    if (result.kind === 'outdated') {
      if (this.outdated !== result.problem)
        this.o.logger.error({ problem: result.problem }, 'may not lead: the schema is newer');
      this.outdated = result.problem;
      return;
    }
    if (result.kind === 'blocked') {
      // The old holder has a transaction open on the lease row past its lease (paused mid-write):
      // end its backends, which rolls the transaction back, and try again at the next look. A
      // schema before version 6 records no start times to match them by: the database's
      // idle_in_transaction_session_timeout of that holder's connections ends it instead.
      const now = await this.conn.use(readLease);
      if (now.remainingMs === 0 && this.backendStarts) {
        const ended = await this.conn.use(async (c) => terminate(c, await recordedBackends(c)));
        this.o.logger.warn({ epoch: now.epoch, ended }, 'lease row held past its lease: ended the holder backends');
      }
      return;
    }
    this.backendStarts = true;
    const deadline = new ServingDeadline(this.clocks, this.o.ttlMs - this.o.driftMs, this.o.driftMs, sent);
    const term: Term = { epoch: result.epoch, term: claim.term, deadline };
    this.held = term;
    this.seen = undefined;
    this.o.metrics.takeovers.inc();
    this.armDeadline(term);
    // Only once the old leader's backends are gone is state read (rule 1). Safety does not hang on
    // it (the takeover waited for every write of the old term that had passed its check), so a
    // failure here is logged and the node goes on.
    const ended = await this.conn
      .use((c) => terminate(c, result.backends))
      .catch((err: unknown) => {
        this.o.logger.warn({ err }, 'could not end the previous leader backends');
        return 0;
      });
    this.o.logger.info(
      { epoch: term.epoch, previous: result.previous.nodeId || null, ended },
      'took over the leadership lease',
    );
    // A node stopping meanwhile builds nothing: stop() gives the lease back.
    if (this.serving(term) && !this.stopped) this.o.onElected(term);
  }

  /** A timer at the deadline, so that a leader nobody calls still stops (and closes sockets) on time. */
  private armDeadline(term: Term): void {
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = setTimeout(() => this.serving(term), Math.max(0, term.deadline.leftMs()) + 1);
    this.deadlineTimer.unref();
  }
}
