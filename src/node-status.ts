import { Registry } from 'prom-client';
import type { ClusterNode } from './cluster/index.ts';
import type { Clock } from './concurrency/index.ts';
import type { LeaderState } from './leader-state.ts';
import type { NodeEndpoints } from './transport/http-routes.ts';
import { VERSION } from './version.ts';

/** This node as /healthz and /metrics show it: its leader state, if it leads, and its cluster part. */
export interface NodeParts {
  leader(): LeaderState | undefined;
  cluster: ClusterNode<LeaderState> | undefined;
  startedAt: number;
  clock: Clock;
}

export function nodeEndpoints(node: NodeParts): NodeEndpoints {
  return { health: () => health(node), metrics: () => metricsText(node) };
}

/**
 * 200 only from a leader whose store answers. In cluster mode the body adds role, epoch and the
 * leader's URL (and the leader how long it has led), and a standby, or a node taking over, answers
 * 503, so a load balancer sends traffic to the leader only. uptimeMs is this node's, since it
 * started: it goes on across takeovers (docs/cluster.md, "Watching the nodes").
 */
async function health(node: NodeParts): Promise<{ ok: boolean; body: Record<string, unknown> }> {
  const state = node.leader();
  const { cluster } = node;
  const uptimeMs = node.clock.now() - node.startedAt;
  if (state !== undefined) {
    const { status, ...h } = await state.coordinator.health();
    return { ok: status === 'ok', body: { status, uptimeMs, ...h, ...cluster?.status(), version: VERSION } };
  }
  const role = cluster?.status() ?? { role: 'standby', epoch: 0, leader: null };
  const body = {
    status: role.role,
    uptimeMs,
    sessions: 0,
    store: cluster?.storeAnswered ?? false,
    ...role,
    version: VERSION,
  };
  return { ok: false, body };
}

/** The coordinator's metrics on the leader, process metrics on a standby; the node's on both. */
async function metricsText(node: NodeParts): Promise<{ contentType: string; text: string }> {
  const state = node.leader();
  const own = state === undefined ? undefined : await state.coordinator.metrics();
  const metrics = node.cluster?.metrics;
  const parts = [
    own?.text ?? (metrics === undefined ? '' : await metrics.standbyRegistry.metrics()),
    metrics === undefined ? '' : await metrics.registry.metrics(),
  ];
  return { contentType: own?.contentType ?? Registry.PROMETHEUS_CONTENT_TYPE, text: parts.join('') };
}
