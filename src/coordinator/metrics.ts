import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Clock, LockManager, SessionRegistry } from '../concurrency/index.ts';
import { METHOD_NAMES } from '../protocol/methods.ts';
import { RequestDurations } from './request-durations.ts';

/**
 * Every label value a labelled series can take, shown at 0 from the start: a series that first
 * appears at 1 has no earlier sample, so Prometheus' increase() and rate() (the alert rules and
 * the dashboard, docs/monitoring.md) would not count its first event.
 */
const SESSION_ROLES = ['agent', 'observer'] as const;
const SESSION_STATES = ['connected', 'detached'] as const;
const GRANT_KINDS = ['immediate', 'queued'] as const;
const EDIT_KINDS = ['edit', 'undo', 'redo', 'restore'] as const;

/**
 * Prometheus metrics for one server. A registry of its own (not prom-client's global one) so that
 * several servers in one process, as in the tests, never share counters.
 * Gauges are computed when scraped, from the cores' own state, so they cannot drift from it.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly grants: Counter<'kind'>;
  readonly denials: Counter;
  readonly expiries: Counter;
  readonly deadlocks: Counter;
  readonly conflicts: Counter;
  readonly edits: Counter<'kind'>;
  readonly slowConsumers: Counter;
  readonly requests: RequestDurations;
  readonly waits: Histogram;

  constructor(
    locks: LockManager,
    sessions: SessionRegistry,
    o: {
      clock: Clock;
      /** Whether the program store answers (asked at each scrape). */
      ping(): Promise<boolean>;
      /** The connection cap (--max-sessions), for alerts on sessions near it. */
      maxSessions: number;
    },
  ) {
    const registers = [this.registry];
    new Gauge({
      name: 'lockstep_store_up',
      help: 'Whether the program store answered at this scrape (1) or not (0)',
      registers,
      async collect() {
        this.set((await o.ping()) ? 1 : 0);
      },
    });
    new Gauge({
      name: 'lockstep_sessions_max',
      help: 'The connection cap (--max-sessions): more connections are closed with 1013',
      registers,
      collect() {
        this.set(o.maxSessions);
      },
    });
    new Gauge({
      name: 'lockstep_queue_oldest_wait_seconds',
      help: 'How long the longest-waiting queued request has waited so far (0 when none waits)',
      registers,
      collect() {
        const now = o.clock.now();
        let oldest = now;
        for (const s of sessions.list()) for (const t of locks.tickets(s.id)) oldest = Math.min(oldest, t.enqueuedAt);
        this.set((now - oldest) / 1000);
      },
    });
    collectDefaultMetrics({ register: this.registry, prefix: 'lockstep_' });
    new Gauge({
      name: 'lockstep_sessions',
      help: 'Sessions by role and state',
      labelNames: ['role', 'state'] as const,
      registers,
      collect() {
        this.reset();
        for (const role of SESSION_ROLES) for (const state of SESSION_STATES) this.set({ role, state }, 0);
        for (const s of sessions.list()) this.inc({ role: s.role, state: s.state });
      },
    });
    new Gauge({
      name: 'lockstep_locks_held',
      help: 'Held locks by mode (one per holder and resource)',
      labelNames: ['mode'] as const,
      registers,
      collect() {
        this.reset();
        this.set({ mode: 'read' }, 0);
        this.set({ mode: 'write' }, 0);
        for (const r of locks.status()) for (const h of r.holders) this.inc({ mode: h.mode });
      },
    });
    new Gauge({
      name: 'lockstep_queue_length',
      help: 'Queued tickets per resource: the sum over resources, and the longest queue',
      labelNames: ['stat'] as const,
      registers,
      collect() {
        let total = 0;
        let longest = 0;
        for (const r of locks.status()) {
          total += r.queue.length;
          longest = Math.max(longest, r.queue.length);
        }
        this.set({ stat: 'total' }, total);
        this.set({ stat: 'max' }, longest);
      },
    });
    this.grants = new Counter({
      name: 'lockstep_lock_grants_total',
      help: 'Grants, immediate or after queueing',
      labelNames: ['kind'] as const,
      registers,
    });
    for (const kind of GRANT_KINDS) this.grants.inc({ kind }, 0);
    this.denials = new Counter({ name: 'lockstep_lock_denials_total', help: 'LOCK_DENIED answers', registers });
    this.expiries = new Counter({
      name: 'lockstep_lock_expiries_total',
      help: 'Leases that ran out (one per expired lock)',
      registers,
    });
    this.deadlocks = new Counter({
      name: 'lockstep_deadlocks_refused_total',
      help: 'Waits refused with DEADLOCK',
      registers,
    });
    this.conflicts = new Counter({
      name: 'lockstep_edit_conflicts_total',
      help: 'Edits refused with CONFLICT',
      registers,
    });
    this.edits = new Counter({
      name: 'lockstep_edits_total',
      help: 'Committed revisions by kind',
      labelNames: ['kind'] as const,
      registers,
    });
    for (const kind of EDIT_KINDS) this.edits.inc({ kind }, 0);
    this.slowConsumers = new Counter({
      name: 'lockstep_slow_consumers_dropped_total',
      help: 'Sockets closed (1013) because their send buffer stayed over the high-water mark',
      registers,
    });
    // Lock calls are answered in microseconds; edits commit to disk in about a millisecond.
    this.requests = new RequestDurations(
      [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5],
      this.registry,
    );
    // The refusal the alert LockstepStoreRefusals counts: any call may meet it in a cluster (its
    // journal), so every method's series is there. Other outcomes appear at their first call.
    for (const method of METHOD_NAMES) this.requests.zero(method, 'STORE_UNAVAILABLE');

    this.waits = new Histogram({
      name: 'lockstep_lock_wait_seconds',
      help: 'Time a queued request waited until it was granted',
      buckets: [0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600],
      registers,
    });
    // When each queued ticket started waiting, until it is granted or withdrawn.
    const queuedAt = new Map<string, number>();
    locks.on('queued', ({ ticket }) => queuedAt.set(ticket, o.clock.now()));
    locks.on('cancelled', ({ ticket }) => queuedAt.delete(ticket));
    locks.on('waitTimeout', ({ ticket }) => queuedAt.delete(ticket));
    locks.on('granted', ({ ticket, grants }) => {
      this.grants.inc({ kind: ticket === null ? 'immediate' : 'queued' }, grants.length);
      const since = ticket === null ? undefined : queuedAt.get(ticket);
      if (since === undefined) return;
      queuedAt.delete(ticket as string);
      this.waits.observe((o.clock.now() - since) / 1000);
    });
    locks.on('denied', () => this.denials.inc());
    locks.on('expired', ({ locks: gs }) => this.expiries.inc(gs.length));
    locks.on('deadlock', () => this.deadlocks.inc());
  }
}
