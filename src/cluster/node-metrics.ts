import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Why a leader stops leading (docs/cluster.md, "Monitoring"). */
export const STEP_DOWN_REASONS = [
  'deadline',
  'clocks',
  'taken-over',
  'write-refused',
  'fences',
  'open-failed',
] as const;
export type StepDownReason = (typeof STEP_DOWN_REASONS)[number];

/** A node's role: `taking-over` holds the lease while its leader state is being built. */
export const CLUSTER_ROLES = ['leader', 'taking-over', 'standby'] as const;
export type ClusterRole = (typeof CLUSTER_ROLES)[number];

/** How a lease renewal ended: renewed, found taken by another node, or no answer. */
const RENEWAL_OUTCOMES = ['ok', 'lost', 'error'] as const;

/**
 * Metrics of the node rather than of its leader state: they exist on a standby too, and outlive
 * every leadership. /metrics shows them with the coordinator's (on the leader) or with the process
 * metrics of `standbyRegistry` (on a standby, which has no coordinator and so no defaults).
 * Every labelled series starts at 0 for every label value, on every node: Prometheus' increase()
 * counts a series' first event only from an earlier sample (the first step-down, say).
 */
export class NodeMetrics {
  readonly registry = new Registry();
  readonly standbyRegistry = new Registry();
  readonly takeovers: Counter;
  readonly stepDowns: Counter<'reason'>;
  readonly renewals: Histogram<'outcome'>;

  constructor(
    status: () => { role: ClusterRole; epoch: number },
    /** The database answered the last look at the lease (a standby's store check). */
    storeAnswered: () => boolean,
  ) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.standbyRegistry, prefix: 'lockstep_' });
    // The leader's comes from its coordinator, which asks the store itself.
    new Gauge({
      name: 'lockstep_store_up',
      help: 'Whether the database answered the last look at the lease (1) or not (0)',
      registers: [this.standbyRegistry],
      collect() {
        this.set(storeAnswered() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'lockstep_cluster_role',
      help: 'This node: 1 for its current role (leader, taking-over or standby), 0 for the others',
      labelNames: ['role'] as const,
      registers,
      collect() {
        const { role } = status();
        for (const r of CLUSTER_ROLES) this.set({ role: r }, r === role ? 1 : 0);
      },
    });
    new Gauge({
      name: 'lockstep_cluster_epoch',
      help: 'The leadership epoch this node last saw (it grows by one at every takeover)',
      registers,
      collect() {
        this.set(status().epoch);
      },
    });
    this.takeovers = new Counter({
      name: 'lockstep_cluster_takeovers_total',
      help: 'Times this node took the leadership lease',
      registers,
    });
    this.stepDowns = new Counter({
      name: 'lockstep_cluster_step_downs_total',
      help: 'Times this node stopped leading, by reason',
      labelNames: ['reason'] as const,
      registers,
    });
    for (const reason of STEP_DOWN_REASONS) this.stepDowns.inc({ reason }, 0);
    this.renewals = new Histogram({
      name: 'lockstep_cluster_lease_renewal_seconds',
      help: 'Time a lease renewal this node made while leading took, from sending it to its answer, by outcome',
      labelNames: ['outcome'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    for (const outcome of RENEWAL_OUTCOMES) this.renewals.zero({ outcome });
  }
}
