import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { summarize, type Summary } from './stats.ts';
import type { LockAgent, LockSystem, Mode } from './systems.ts';

export interface Timing {
  warmMs: number;
  runMs: number;
  reps: number;
  /** Bounds each repetition's work whatever the speed, so no load runs away. */
  maxOps: number;
}

export interface Result extends Summary {
  /** Workload-specific extra figure (the longest wait for a turn in the hand-over). */
  extra?: number;
}

/**
 * Closed loop: every agent repeats `step` (which returns its round-trip latencies) until the
 * repetition's time or op budget is spent. Throughput counts round trips per second.
 */
async function closedLoop(
  agents: LockAgent[],
  t: Timing,
  step: (a: LockAgent, i: number) => Promise<number[]>,
): Promise<Result> {
  const samples: number[][] = [];
  const rates: number[] = [];
  const phase = async (ms: number, keep: boolean) => {
    const out: number[] = [];
    const end = performance.now() + ms;
    const start = performance.now();
    await Promise.all(
      agents.map(async (a, i) => {
        while (performance.now() < end && out.length < t.maxOps) out.push(...(await step(a, i)));
      }),
    );
    if (keep) {
      samples.push(out);
      rates.push(out.length / ((performance.now() - start) / 1000));
    }
  };
  for (let r = 0; r < t.reps; r++) {
    await phase(t.warmMs, false);
    await phase(t.runMs, true);
  }
  return summarize(samples, rates);
}

async function pair(a: LockAgent, rs: readonly number[], mode: Mode): Promise<number[]> {
  const t0 = performance.now();
  const granted = await a.acquire(rs, mode);
  const t1 = performance.now();
  await a.release(rs);
  return [granted - t0, performance.now() - t1];
}

/** Workload 2 (and 1 on the floor): each agent locks and releases its own resource. */
export async function uncontended(sys: LockSystem, agents: number, t: Timing): Promise<Result> {
  const as = await sys.connect(agents, agents);
  try {
    return await closedLoop(as, t, (a, i) => pair(a, [i], 'write'));
  } finally {
    await sys.disconnect();
  }
}

/** Workload 4a: each agent locks its own 4 resources in one request. */
export async function batch(sys: LockSystem, agents: number, t: Timing): Promise<Result> {
  const as = await sys.connect(agents, agents * 4);
  try {
    return await closedLoop(as, t, (a, i) => pair(a, [4 * i, 4 * i + 1, 4 * i + 2, 4 * i + 3], 'write'));
  } finally {
    await sys.disconnect();
  }
}

/**
 * Workload 4b: agents share a few resources; 90% of acquires are reads, 10% writes. The latency
 * is acquire-to-grant (including any wait) and release; a fixed seed keeps the mix identical for
 * every system.
 */
export async function readMostly(sys: LockSystem, agents: number, resources: number, t: Timing): Promise<Result> {
  const as = await sys.connect(agents, resources, true);
  let seed = 12345;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x80000000;
  };
  try {
    return await closedLoop(as, t, (a) => pair(a, [Math.floor(rand() * resources)], rand() < 0.9 ? 'read' : 'write'));
  } finally {
    await sys.disconnect();
  }
}

/**
 * Workload 3: every agent queues on resource 0, holds it for `holdMs` when its turn comes,
 * releases, and queues again at once. Hand-over latency is from the holder's release leaving its
 * client to the next holder's grant arriving (one process, one clock). `extra` is the longest any
 * agent waited for a turn: FIFO keeps it near agents x turn time, a free-for-all does not.
 * Throughput is turns per second.
 */
export async function handover(sys: LockSystem, agents: number, holdMs: number, t: Timing): Promise<Result> {
  const as = await sys.connect(agents, 1);
  const samples: number[][] = [];
  const rates: number[] = [];
  let longestWait = 0;
  try {
    for (let r = 0; r < t.reps; r++) {
      for (const keep of [false, true]) {
        const out: number[] = [];
        let releasedAt: number | undefined;
        let turns = 0;
        const start = performance.now();
        const end = start + (keep ? t.runMs : t.warmMs);
        // Once time is up, agents still queued take their turn and leave: the queue drains.
        await Promise.all(
          as.map(async (a) => {
            let first = true;
            while (first || (performance.now() < end && turns < t.maxOps)) {
              first = false;
              const asked = performance.now();
              const granted = await a.acquire([0], 'write');
              // A wait still going at the end counts up to the end: a starved agent must show.
              if (keep && asked < end) longestWait = Math.max(longestWait, Math.min(granted, end) - asked);
              if (granted < end) {
                turns++;
                if (releasedAt !== undefined) out.push(granted - releasedAt);
              }
              if (holdMs > 0) await sleep(holdMs);
              await a.release([0], (at) => (releasedAt = at));
            }
          }),
        );
        if (keep) {
          samples.push(out);
          rates.push((turns / (Math.min(performance.now(), end) - start)) * 1000);
        }
      }
    }
    return { ...summarize(samples, rates), extra: longestWait };
  } finally {
    await sys.disconnect();
  }
}
