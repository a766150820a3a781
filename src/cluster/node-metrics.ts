import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Metrics of the node rather than of its leader state: they exist on a standby too, and outlive
 * every leadership. /metrics shows them with the coordinator's (on the leader) or with the process
 * metrics of `standbyRegistry` (on a standby, which has no coordinator and so no defaults).
 */
export class NodeMetrics {
  readonly registry = new Registry();
  readonly standbyRegistry = new Registry();
  readonly takeovers: Counter;
  readonly stepDowns: Counter<'reason'>;
  readonly renewals: Histogram<'outcome'>;

  constructor(
    status: () => { role: 'leader' | 'standby'; epoch: number },
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
      help: 'This node: 1 for its current role (leader or standby), 0 for the other',
      labelNames: ['role'] as const,
      registers,
      collect() {
        const { role } = status();
        this.set({ role: 'leader' }, role === 'leader' ? 1 : 0);
        this.set({ role: 'standby' }, role === 'standby' ? 1 : 0);
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
    this.renewals = new Histogram({
      name: 'lockstep_cluster_lease_renewal_seconds',
      help: 'Time a lease renewal took, from sending it to its answer, by outcome',
      labelNames: ['outcome'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
  }
}
