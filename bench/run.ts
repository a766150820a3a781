// npm run bench: every workload of docs/benchmarks.md, Lockstep and its peers side by side, then
// writes docs/benchmarks.md and docs/bench-latency.svg. About six minutes (each workload first
// runs 4 s unmeasured on every system); loopback only.
//   --quick        one short repetition of everything (for trying the bench, not for figures)
//   --wait-quiet   first wait (up to 10 min) for a 1-minute load average under 1.0
//   --only=TEXT    only the workloads whose label contains TEXT (e.g. --only=hand-over); prints
//                  the figures and writes no docs
//   --baseline[=REV]  also runs the Lockstep server of commit REV (default: baseline.ts
//                  DEFAULT_BASELINE) beside the current one, repetitions interleaved, and adds the
//                  "against the previous commit" table
//   --no-peers     leaves out the floor, Redis and etcd (with --baseline: only the two Lockstep
//                  servers run, for comparing commits quickly); the report needs them, so it
//                  implies printing only, as --only does
import { loadavg } from 'node:os';
import { BASELINE_NAME, baselineArg, prepareBaseline, type Baseline } from './baseline.ts';
import { baselineLines } from './compare.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { edits } from './edits.ts';
import { EtcdSystem } from './etcd.ts';
import { profileServers } from './hot-path.ts';
import { measureKernelCosts } from './kernel-costs.ts';
import { EchoFloor, LockstepSystem, RPC_DRIVER } from './lockstep.ts';
import { RedisSystem } from './redis.ts';
import { writeReport, type Results, type Row } from './report.ts';
import { memoryPerSession, openLoop } from './scale.ts';
import { fmtCpu, fmtMs, fmtRate } from './stats.ts';
import type { LockSystem } from './systems.ts';
import { BATCH, HANDOVER, LOCK_PLAN, READ_MOSTLY, timing, uncontendedWorkload, type Workload } from './plan.ts';
import { interleavedAll, type Result } from './workloads.ts';

const QUICK = process.argv.includes('--quick');
const ONLY = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
const BASELINE = baselineArg(process.argv);
const PEERS = !process.argv.includes('--no-peers');
const T = timing(QUICK);
const PLAN = {
  ...LOCK_PLAN,
  memorySteps: [1_000, 10_000],
  openLoopAgents: 1_000,
  openLoopRate: 2_000,
  editAgents: 4,
  profileAgents: 10,
  profileSeconds: QUICK ? 1 : 3,
};

async function waitQuiet(): Promise<void> {
  for (let i = 0; i < 20 && (loadavg()[0] ?? 0) >= 1.0; i++) {
    console.log(`load ${loadavg()[0]?.toFixed(2)}: waiting 30 s for a quieter machine`);
    await sleep(30_000);
  }
}

const rows: Row[] = [];
const skipped: string[] = [];

const wanted = (workload: string) => ONLY === undefined || workload.includes(ONLY);

/** Runs one workload unless --only leaves it out, and prints and keeps its figures. */
async function record(workload: string, system: string, driver: string, measure: () => Promise<Result>): Promise<void> {
  if (!wanted(workload)) return;
  const r = await measure();
  rows.push({ workload, system, driver, r });
  const cpu =
    (r.clientCpuUs === undefined ? '' : `  client CPU ${fmtCpu(r.clientCpuUs)}/op`) +
    (r.serverCpuUs === undefined ? '' : `  server CPU ${fmtCpu(r.serverCpuUs)}/op`);
  const fair =
    r.mostTurnsWaited === undefined
      ? ''
      : `  longest wait ${fmtMs(r.longestWait ?? Number.NaN)} (${r.mostTurnsWaited} turns)`;
  console.log(
    `${workload.padEnd(18)} ${system.padEnd(20)} p50 ${fmtMs(r.p50).padStart(9)}  p99 ${fmtMs(r.p99).padStart(9)}  max ${fmtMs(r.max).padStart(9)}  ${fmtRate(r.rate).padStart(7)}/s${cpu}${fair}`,
  );
}

/** One system in the comparison. */
interface Entrant {
  sys: LockSystem;
  /** Its rows' name where nobody waits, where Redis's three ways of waiting are one row. */
  noWait: string;
  /** Runs only where agents wait: Redis's pub/sub and FIFO ways, which are its poll row elsewhere. */
  waitingOnly: boolean;
}

/**
 * Starts every system of the run, and stops them all however it ends, so that no server outlives
 * the bench. They run side by side for the whole run, each idle while another is measured: each
 * workload's repetitions then alternate between them (workloads.ts interleavedAll), so that the
 * machine's drift over a run of minutes falls on every system alike instead of on whichever ran
 * last. Run one after another, the floor measured first and Lockstep minutes later gave
 * uncontended x10 ratios of 1.73x (p50) and 0.58x (per second) where the same two interleaved a
 * moment later gave 1.34x and 0.86x.
 */
async function withEntrants(baseline: Baseline | undefined, body: (es: Entrant[]) => Promise<void>): Promise<void> {
  const es: Entrant[] = [];
  const enter = (sys: LockSystem, noWait = sys.name, waitingOnly = false) => es.push({ sys, noWait, waitingOnly });
  try {
    if (PEERS) enter(await EchoFloor.start());
    enter(await LockstepSystem.start());
    if (baseline !== undefined) enter(await LockstepSystem.startBaseline(baseline.serverModule, BASELINE_NAME));
    if (!PEERS) skipped.push('the floor, Redis and etcd: --no-peers');
    else if (RedisSystem.available()) {
      for (const waiting of ['poll', 'pubsub', 'fifo'] as const) {
        const redis = await RedisSystem.start();
        redis.waiting = waiting;
        enter(redis, 'Redis', waiting !== 'poll');
      }
    } else skipped.push('Redis: redis-server not found (run bench/setup-peers.sh)');
    if (PEERS && EtcdSystem.available()) enter(await EtcdSystem.start());
    else if (PEERS) skipped.push('etcd: etcd not found (run bench/setup-peers.sh)');
    await body(es);
  } finally {
    for (const e of es) await e.sys.stop();
  }
}

const UNCONTENDED = PLAN.uncontended.map(uncontendedWorkload);
/** The workloads where agents wait for each other, so how a system waits shows. */
const WAITING: readonly Workload[] = [HANDOVER, READ_MOSTLY];

/** The floor runs only the uncontended workloads: it has no locks. */
function runs(e: Entrant, w: Workload): boolean {
  if (WAITING.includes(w)) return e.sys.locks;
  return !e.waitingOnly && (e.sys.locks || UNCONTENDED.includes(w));
}

/** Every workload on every system that runs it, each workload's repetitions interleaved over them. */
async function lockWorkloads(es: Entrant[]): Promise<void> {
  for (const w of [...UNCONTENDED, ...WAITING, BATCH]) {
    if (!wanted(w.label)) continue;
    const its = es.filter((e) => runs(e, w));
    const results = await interleavedAll(
      w.run,
      its.map((e) => e.sys),
      T,
    );
    // Where agents wait, each way of waiting is its own row; elsewhere Redis's are one.
    const named = (e: Entrant) => (WAITING.includes(w) ? e.sys.name : e.noWait);
    for (const [i, e] of its.entries()) await record(w.label, named(e), e.sys.driver, async () => results[i]!);
  }
}

async function main(): Promise<void> {
  if (process.argv.includes('--wait-quiet')) await waitQuiet();
  const began = Date.now();
  const loadBefore = loadavg();
  const kernel = measureKernelCosts();
  const baseline = BASELINE === undefined ? undefined : prepareBaseline(BASELINE);
  if (baseline !== undefined)
    console.log(`baseline: ${BASELINE_NAME} is ${baseline.short} (node_modules: ${baseline.nodeModules})`);
  await withEntrants(baseline, lockWorkloads);
  for (const s of skipped) console.log(`skipped ${s}`);
  if (baseline !== undefined) console.log(`\nagainst ${baseline.short}:\n${baselineLines(rows).join('\n')}`);

  if (ONLY !== undefined || !PEERS) return;

  const memory = await memoryPerSession(QUICK ? [1_000] : PLAN.memorySteps);
  for (const m of memory)
    console.log(
      `memory: ${m.sessions} idle sessions, ${(m.perSession / 1024).toFixed(1)} KiB each (RSS ${m.rssMiB.toFixed(0)} MiB)`,
    );
  const open = await openLoop(PLAN.openLoopAgents, PLAN.openLoopRate, QUICK ? 1_000 : 3_000, QUICK ? 1 : 3);
  await record(`open loop x${PLAN.openLoopAgents}`, 'Lockstep', RPC_DRIVER, async () => open);
  await record(`edits x${PLAN.editAgents}`, 'Lockstep', RPC_DRIVER, () => edits(PLAN.editAgents, T));
  const profiles = await profileServers(PLAN.profileAgents, PLAN.profileSeconds);

  const results: Results = {
    rows,
    skipped,
    memory,
    open,
    profiles,
    quick: QUICK,
    seconds: (Date.now() - began) / 1000,
    loadBefore,
    loadAfter: loadavg(),
    kernel,
    plan: PLAN,
    timing: T,
    baseline,
  };
  writeReport(results);
  console.log(`wrote docs/benchmarks.md and docs/bench-latency.svg in ${results.seconds.toFixed(0)} s`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    // Children are forked with IPC and would keep this process alive; exiting ends them too.
    process.exit(1);
  },
);
