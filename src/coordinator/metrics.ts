import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { LockManager, SessionRegistry } from '../concurrency/index.ts';
import { RequestDurations } from './request-durations.ts';

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

  constructor(locks: LockManager, sessions: SessionRegistry) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'lockstep_' });
    new Gauge({
      name: 'lockstep_sessions',
      help: 'Sessions by role and state',
      labelNames: ['role', 'state'] as const,
      registers,
      collect() {
        this.reset();
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

    locks.on('granted', ({ ticket, grants }) =>
      this.grants.inc({ kind: ticket === null ? 'immediate' : 'queued' }, grants.length),
    );
    locks.on('denied', () => this.denials.inc());
    locks.on('expired', ({ locks: gs }) => this.expiries.inc(gs.length));
    locks.on('deadlock', () => this.deadlocks.inc());
  }
}
