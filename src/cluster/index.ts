// Cluster mode (docs/cluster.md): the leadership lease and the life of the leader state. The
// server composes it; nothing below the server knows it exists.
export { ClusterNode, type LeaderContext } from './node.ts';
export type { StepDownReason } from './node-metrics.ts';
export { Failover } from './failover.ts';
