// The lock workloads as docs/benchmarks.md runs them (sizes, timing), shared by every bench that
// reports them (run.ts; cluster.ts on a cluster leader), so the same label is the same workload.
import { batch, handover, readMostly, type Result, type Timing, uncontended } from './workloads.ts';
import type { LockSystem } from './systems.ts';

export const LOCK_PLAN = {
  uncontended: [1, 10, 100],
  handoverAgents: 100,
  holdMs: 1,
  batchAgents: 10,
  mixAgents: 20,
  mixResources: 8,
};

/** The agents count the uncontended target is judged at, and the cluster's leader is run at. */
export const TARGET_UNCONTENDED_AGENTS = 10;

/**
 * How long each workload runs unmeasured on each system before its first repetition: a fresh
 * Lockstep server's hand-over p99 falls for about four seconds while V8 compiles the queueing
 * paths (docs/benchmarks.md, "A fresh server's first seconds", measured by bench/turns.ts).
 */
export const SETTLE_MS = 4_000;

export function timing(quick: boolean): Timing {
  return quick
    ? { settleMs: 500, warmMs: 200, runMs: 500, reps: 1, maxOps: 200_000 }
    : { settleMs: SETTLE_MS, warmMs: 500, runMs: 1_500, reps: 3, maxOps: 500_000 };
}

export interface Workload {
  label: string;
  run: (s: LockSystem, t: Timing) => Promise<Result>;
}

export function uncontendedWorkload(agents: number): Workload {
  return { label: `uncontended x${agents}`, run: (s, t) => uncontended(s, agents, t) };
}

const p = LOCK_PLAN;
export const HANDOVER: Workload = {
  label: `hand-over x${p.handoverAgents}`,
  run: (s, t) => handover(s, p.handoverAgents, p.holdMs, t),
};
export const READ_MOSTLY: Workload = {
  label: `90% read x${p.mixAgents}`,
  run: (s, t) => readMostly(s, p.mixAgents, p.mixResources, t),
};
export const BATCH: Workload = { label: `batch of 4 x${p.batchAgents}`, run: (s, t) => batch(s, p.batchAgents, t) };
