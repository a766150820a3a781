import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { processCpuUs } from './proc.ts';
import { summarize, type Summary } from './stats.ts';
import type { LockAgent, LockSystem, Mode } from './systems.ts';

export interface Timing {
  /**
   * An unmeasured run of the workload before its first repetition, on each system: a workload a
   * server has not run before changes which of its code V8 compiles, and Lockstep's JIT takes
   * seconds to settle (docs/benchmarks.md, "A fresh server's first seconds"); a long-running
   * server is past that, so the figures are of the settled state.
   */
  settleMs: number;
  warmMs: number;
  runMs: number;
  reps: number;
  /** Bounds each repetition's work whatever the speed, so no load runs away. */
  maxOps: number;
}

export interface Result extends Summary {
  /**
   * CPU time (user + system) of the bench process, where every system's clients run, per
   * operation of the measured phases: what each system's driver costs its user. Measured by the
   * closed-loop workloads and the hand-over.
   */
  clientCpuUs?: number;
  /** The operations clientCpuUs was divided by, to pool repetitions measured apart. */
  clientCpuOps?: number;
  /** Likewise the server process's CPU per operation, where the system has a local process. */
  serverCpuUs?: number;
  /** Hand-over only: the longest any agent waited for a turn, ms. */
  longestWait?: number;
  /** Hand-over only: the most turns other agents took while one agent waited (FIFO: agents - 1). */
  mostTurnsWaited?: number;
  /** Set when repetitions were measured apart and pooled (mergeResults): each one's own result. */
  parts?: Result[];
}

/**
 * Measures the bench process's CPU over measured phases only (warm-ups and set-up excluded), and
 * the server process's over the same phases when it is a local process.
 */
class ClientCpu {
  private us = 0;
  private serverUs: number | undefined = 0;
  private ops = 0;

  constructor(private readonly serverPid?: number) {}

  async measure<T>(body: () => Promise<T>, opsOf: (t: T) => number): Promise<T> {
    const serverBefore = processCpuUs(this.serverPid);
    const before = process.cpuUsage();
    const out = await body();
    const d = process.cpuUsage(before);
    const serverAfter = processCpuUs(this.serverPid);
    this.us += d.user + d.system;
    this.serverUs =
      this.serverUs === undefined || serverBefore === undefined || serverAfter === undefined
        ? undefined
        : this.serverUs + serverAfter - serverBefore;
    this.ops += opsOf(out);
    return out;
  }

  perOp(): { clientCpuUs: number; clientCpuOps: number; serverCpuUs?: number } {
    const per = (us: number) => (this.ops > 0 ? us / this.ops : Number.NaN);
    return {
      clientCpuUs: per(this.us),
      clientCpuOps: this.ops,
      ...(this.serverPid === undefined || this.serverUs === undefined ? {} : { serverCpuUs: per(this.serverUs) }),
    };
  }
}

/**
 * Closed loop: every agent repeats `step` (which returns its round-trip latencies) until the
 * repetition's time or op budget is spent. Throughput counts round trips per second.
 */
async function closedLoop(
  sys: LockSystem,
  agents: LockAgent[],
  t: Timing,
  step: (a: LockAgent, i: number) => Promise<number[]>,
  /** Told when each measured phase starts (true) and ends (false). */
  measuring?: (on: boolean) => void,
): Promise<Result> {
  const samples: number[][] = [];
  const rates: number[] = [];
  const cpu = new ClientCpu(sys.serverPid);
  const phase = async (ms: number) => {
    const out: number[] = [];
    const end = performance.now() + ms;
    const start = performance.now();
    await Promise.all(
      agents.map(async (a, i) => {
        while (performance.now() < end && out.length < t.maxOps) out.push(...(await step(a, i)));
      }),
    );
    return { out, seconds: (performance.now() - start) / 1000 };
  };
  if (t.settleMs > 0) await phase(t.settleMs);
  for (let r = 0; r < t.reps; r++) {
    await phase(t.warmMs);
    measuring?.(true);
    const { out, seconds } = await cpu.measure(
      () => phase(t.runMs),
      (p) => p.out.length,
    );
    measuring?.(false);
    samples.push(out);
    rates.push(out.length / seconds);
  }
  return { ...summarize(samples, rates), ...cpu.perOp() };
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
    return await closedLoop(sys, as, t, (a, i) => pair(a, [i], 'write'));
  } finally {
    await sys.disconnect();
  }
}

/** Workload 4a: each agent locks its own 4 resources in one request. */
export async function batch(sys: LockSystem, agents: number, t: Timing): Promise<Result> {
  const as = await sys.connect(agents, agents * 4);
  try {
    return await closedLoop(sys, as, t, (a, i) => pair(a, [4 * i, 4 * i + 1, 4 * i + 2, 4 * i + 3], 'write'));
  } finally {
    await sys.disconnect();
  }
}

/** One lock and release of the read mix, for read-mix.ts: its mode and both latencies, ms. */
export interface MixOp {
  mode: Mode;
  acquireMs: number;
  releaseMs: number;
}

/**
 * Workload 4b: agents share a few resources; 90% of acquires are reads, 10% writes. The latency
 * is acquire-to-grant (including any wait) and release; a fixed seed keeps the mix identical for
 * every system. `ops` gets each operation of the measured phases.
 */
export async function readMostly(
  sys: LockSystem,
  agents: number,
  resources: number,
  t: Timing,
  ops?: (op: MixOp) => void,
): Promise<Result> {
  const as = await sys.connect(agents, resources, true);
  let seed = 12345;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x80000000;
  };
  let measured = false;
  try {
    return await closedLoop(
      sys,
      as,
      t,
      async (a) => {
        const resource = Math.floor(rand() * resources);
        const mode = rand() < 0.9 ? 'read' : 'write';
        const out = await pair(a, [resource], mode);
        if (measured) ops?.({ mode, acquireMs: out[0]!, releaseMs: out[1]! });
        return out;
      },
      (on) => {
        measured = on;
      },
    );
  } finally {
    await sys.disconnect();
  }
}

/**
 * Workload 3: every agent queues on resource 0, holds it for `holdMs` when its turn comes,
 * releases, and queues again at once. Hand-over latency is from the holder's release leaving its
 * client to the next holder's grant arriving (one process, one clock). Throughput is turns per
 * second. Fairness is counted in turns: grants arrive one at a time (the lock is exclusive), so
 * the grants another agent received between an agent's request and its own grant are exactly the
 * turns it was overtaken by or waited behind. Under FIFO that is at most agents - 1, whatever
 * the timing; a free-for-all has no bound. The longest wait in time is reported too.
 *
 * One continuous run: the agents queue once, all at the same moment, when it starts, and the
 * settle, warm-up and measured repetitions are windows of time in that run, with the queue never
 * drained between them. A repetition that formed its own queue would begin with 100 acquires at
 * once, and its first turns (each behind that burst) would be a sizeable share of its slowest 1%:
 * that measures forming a queue, not taking turns in one. Forming one is what the first seconds
 * of a fresh server show (turns.ts, one run per second).
 */
export async function handover(
  sys: LockSystem,
  agents: number,
  holdMs: number,
  t: Timing,
  tracer?: TurnTracer,
): Promise<Result> {
  const as = await sys.connect(agents, 1);
  const samples: number[][] = [];
  const rates: number[] = [];
  const cpu = new ClientCpu(sys.serverPid);
  /** Every measured window so far (the open one included): a wait is judged against each. */
  const windows: Window[] = [];
  let open: Window | undefined;
  let longestWait = 0;
  let mostTurnsWaited = 0;
  let releasedAt: number | undefined;
  let grants = 0;
  let running = true;
  const close = (w: Window) => {
    if (open !== w) return;
    open = undefined;
    w.end = performance.now();
    w.closed();
  };
  // Once the last window ends, agents still queued take their turn and leave: the queue drains.
  const loops = Promise.all(
    as.map(async (a) => {
      while (running) {
        const asked = performance.now();
        const grantsBefore = grants;
        const granted = await a.acquire([0], 'write');
        grants++;
        for (const w of windows) {
          // A wait that overlaps a window counts its part in it: one as long as the window is an
          // agent that never got a turn there.
          if (asked >= w.end || granted <= w.start) continue;
          longestWait = Math.max(longestWait, Math.min(granted, w.end) - Math.max(asked, w.start));
          mostTurnsWaited = Math.max(mostTurnsWaited, grants - 1 - grantsBefore);
        }
        const w = open;
        if (w !== undefined) {
          w.turns++;
          if (releasedAt !== undefined) {
            w.out.push(granted - releasedAt);
            tracer?.turn(releasedAt, granted);
          }
          if (w.turns >= t.maxOps) close(w);
        }
        if (holdMs > 0) await sleep(holdMs);
        await a.release([0], (at) => (releasedAt = at));
      }
    }),
  );
  // Awaited once the windows are over; an agent's failure before that must not go unhandled.
  loops.catch(() => undefined);
  const measured = () =>
    new Promise<Window>((resolve) => {
      const start = performance.now();
      const w: Window = { start, end: start + t.runMs, out: [], turns: 0, closed: () => resolve(w) };
      windows.push(w);
      open = w;
      setTimeout(() => close(w), t.runMs);
    });
  try {
    if (t.settleMs > 0) await sleep(t.settleMs);
    for (let r = 0; r < t.reps; r++) {
      if (t.warmMs > 0) await sleep(t.warmMs);
      const w = await cpu.measure(
        () => (tracer === undefined ? measured() : tracer.phase(measured)),
        (w) => w.turns,
      );
      samples.push(w.out);
      rates.push(w.turns / ((w.end - w.start) / 1000));
    }
    running = false;
    await loops;
    return { ...summarize(samples, rates), ...cpu.perOp(), longestWait, mostTurnsWaited };
  } finally {
    running = false;
    await sys.disconnect();
  }
}

/** A measured window of the hand-over's run. */
interface Window {
  start: number;
  /** Planned until it closes, then when it did (earlier, where maxOps closed it). */
  end: number;
  out: number[];
  turns: number;
  closed: () => void;
}

/** What turns.ts watches a hand-over with: its measured phases, and each turn measured in them. */
export interface TurnTracer {
  phase<T>(body: () => Promise<T>): Promise<T>;
  /** A turn's release-sent and grant-received times (performance.now()). */
  turn(releasedAt: number, grantedAt: number): void;
}

/**
 * One result from repetitions measured apart (each a Result of one repetition): samples pooled,
 * rates side by side, client CPU over all their operations, the worst wait of any. The per-
 * repetition results are kept as `parts`, for comparisons repetition by repetition.
 */
export function mergeResults(parts: Result[]): Result {
  const sum = summarize(
    parts.map((p) => Array.from(p.sorted)),
    parts.flatMap((p) => p.rates),
  );
  const ops = parts.reduce((n, p) => n + (p.clientCpuOps ?? 0), 0);
  const us = parts.reduce((n, p) => n + (p.clientCpuUs ?? 0) * (p.clientCpuOps ?? 0), 0);
  const serverUs = parts.every((p) => p.serverCpuUs !== undefined)
    ? parts.reduce((n, p) => n + (p.serverCpuUs ?? 0) * (p.clientCpuOps ?? 0), 0)
    : undefined;
  const worst = (f: (p: Result) => number | undefined) => {
    const xs = parts.map(f).filter((x): x is number => x !== undefined);
    return xs.length > 0 ? Math.max(...xs) : undefined;
  };
  return {
    ...sum,
    clientCpuUs: ops > 0 ? us / ops : Number.NaN,
    clientCpuOps: ops,
    ...(serverUs === undefined || ops === 0 ? {} : { serverCpuUs: serverUs / ops }),
    longestWait: worst((p) => p.longestWait),
    mostTurnsWaited: worst((p) => p.mostTurnsWaited),
    parts,
  };
}

/**
 * `run` on two systems, its repetitions interleaved (a, b; then b, a; ...) so that the machine's
 * drift falls on both alike; each system's repetitions are then pooled.
 */
export async function interleaved(
  run: (s: LockSystem, t: Timing) => Promise<Result>,
  a: LockSystem,
  b: LockSystem,
  t: Timing,
): Promise<[Result, Result]> {
  const [ra, rb] = await interleavedAll(run, [a, b], t);
  return [ra!, rb!];
}

/** `run` on any number of systems, the order of each repetition the reverse of the one before. */
export async function interleavedAll(
  run: (s: LockSystem, t: Timing) => Promise<Result>,
  systems: readonly LockSystem[],
  t: Timing,
): Promise<Result[]> {
  const parts: Result[][] = systems.map(() => []);
  const order = systems.map((_, i) => i);
  for (let r = 0; r < t.reps; r++) {
    // Each system settles once, in its first repetition.
    const one = { ...t, reps: 1, settleMs: r === 0 ? t.settleMs : 0 };
    for (const i of r % 2 === 0 ? order : [...order].reverse()) parts[i]!.push(await run(systems[i]!, one));
  }
  return parts.map(mergeResults);
}
