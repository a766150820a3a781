import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { LockstepError } from '../protocol/errors.ts';
import type { ReservedFences, WriteFence } from '../service/index.ts';
import { Leadership, type Term } from './leadership.ts';
import { type ClusterRole, NodeMetrics, type StepDownReason } from './node-metrics.ts';

/** What a leader state is built with (src/server.ts builds the store and coordinator from it). */
export interface LeaderContext {
  /** docs/cluster.md rule 2, synchronous: false once this leadership may no longer grant or reply. */
  serving(): boolean;
  /** For the program store: rule 3's check in every write, and fence blocks reserved ahead. */
  store: { writes: WriteFence; fences: ReservedFences };
}

/**
 * The whole leader state's life: built when the node becomes leader, discarded when it steps down.
 * Nothing of it outlives its leadership, so a node that leads again (A -> B -> A) starts afresh
 * from the store, as a restart would.
 */
export interface LeaderStates<S> {
  open(ctx: LeaderContext): Promise<S>;
  /** Closes every socket (4002) at once, then lets go of the rest. */
  discard(state: S, reason: StepDownReason): Promise<void>;
}

export interface ClusterStatus {
  /** `taking-over`: this node holds the lease and is building its leader state (docs/cluster.md). */
  role: ClusterRole;
  epoch: number;
  /** The leader's advertised URL, or null while there is none. */
  leader: string | null;
  /** On the leader: how long it has led, since its leader state was built (uptimeMs is the node's). */
  leadingForMs?: number;
}

export interface ClusterNodeOptions<S> {
  db: string;
  advertise: string;
  ttlMs: number;
  renewMs: number;
  driftMs: number;
  logger: Logger;
  states: LeaderStates<S>;
}

/**
 * A node of a cluster (a PostgreSQL store): a standby, or the leader with its leader state. Only
 * once that state is built does the node count as leader; until then it answers as a standby.
 */
export class ClusterNode<S> {
  readonly metrics: NodeMetrics;
  readonly nodeId = `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
  private readonly leadership: Leadership;
  private state: { term: Term; value: S; since: number } | undefined;
  private opening: Promise<void> | undefined;

  constructor(private readonly o: ClusterNodeOptions<S>) {
    this.metrics = new NodeMetrics(
      () => this.status(),
      () => this.storeAnswered,
    );
    this.leadership = new Leadership({
      db: o.db,
      nodeId: this.nodeId,
      advertise: o.advertise,
      ttlMs: o.ttlMs,
      renewMs: o.renewMs,
      driftMs: o.driftMs,
      logger: o.logger,
      metrics: this.metrics,
      onElected: (term) => {
        this.opening = this.open(term);
      },
      onDeposed: (term, reason) => this.deposed(term, reason),
    });
  }

  /** The leader state while this node leads and may serve; undefined on a standby. */
  current(): S | undefined {
    const state = this.state;
    return state !== undefined && this.leadership.serving(state.term) ? state.value : undefined;
  }

  status(): ClusterStatus {
    const since = this.current() === undefined ? undefined : this.state?.since;
    const base = { epoch: this.leadership.epoch, leader: this.leadership.leaderUrl };
    if (since !== undefined) return { role: 'leader', ...base, leadingForMs: Math.round(performance.now() - since) };
    return { role: this.leadership.holding ? 'taking-over' : 'standby', ...base };
  }

  /** The database answered the last look at (or renewal of) the lease. */
  get storeAnswered(): boolean {
    return this.leadership.answered;
  }

  notLeader(): LockstepError {
    return this.leadership.notLeader();
  }

  /** Looks at the lease once (a lone node takes it over and builds its state), then loops. */
  async start(): Promise<void> {
    await this.leadership.start();
    await this.opening;
  }

  /**
   * Ends the loop, lets the leader state go with `drain` (the server's orderly shutdown) and gives
   * the lease up last, so a standby takes over once this node has stopped serving.
   */
  async stop(drain: (state: S) => Promise<void>): Promise<void> {
    await this.opening;
    const state = this.state;
    this.state = undefined;
    if (state !== undefined) await drain(state.value);
    await this.leadership.stop();
  }

  private async open(term: Term): Promise<void> {
    let value: S;
    try {
      value = await this.o.states.open({
        serving: () => this.leadership.serving(term),
        store: this.leadership.storeFence(term),
      });
    } catch (err) {
      this.o.logger.error({ err, epoch: term.epoch }, 'could not build the leader state');
      if (this.leadership.serving(term)) this.leadership.stepDown('open-failed');
      return;
    }
    // Deposed while loading: what was built belongs to no leadership.
    if (!this.leadership.serving(term)) {
      await this.o.states.discard(value, 'deadline');
      return;
    }
    this.state = { term, value, since: performance.now() };
    this.o.logger.info({ epoch: term.epoch, advertise: this.o.advertise }, 'leading');
  }

  private deposed(term: Term, reason: StepDownReason): void {
    const state = this.state;
    if (state === undefined || state.term !== term) return;
    this.state = undefined;
    this.o.states.discard(state.value, reason).catch((err: unknown) => {
      this.o.logger.error({ err }, 'discarding the leader state failed');
    });
  }
}
