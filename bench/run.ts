// npm run bench: every workload of docs/benchmarks.md, Lockstep and its peers side by side, then
// writes docs/benchmarks.md and docs/bench-latency.svg. About four minutes; loopback only.
//   --quick        one short repetition of everything (for trying the bench, not for figures)
//   --wait-quiet   first wait (up to 10 min) for a 1-minute load average under 1.0
import { loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { edits } from './edits.ts';
import { EtcdSystem } from './etcd.ts';
import { EchoFloor, LockstepSystem } from './lockstep.ts';
import { RedisSystem } from './redis.ts';
import { writeReport, type Results, type Row } from './report.ts';
import { memoryPerSession, openLoop } from './scale.ts';
import { fmtMs, fmtRate } from './stats.ts';
import type { LockSystem } from './systems.ts';
import { batch, handover, readMostly, uncontended, type Result, type Timing } from './workloads.ts';

const QUICK = process.argv.includes('--quick');
const T: Timing = QUICK
  ? { warmMs: 200, runMs: 500, reps: 1, maxOps: 200_000 }
  : { warmMs: 500, runMs: 1_500, reps: 3, maxOps: 500_000 };
const PLAN = {
  uncontended: [1, 10, 100],
  handoverAgents: 100,
  holdMs: 1,
  batchAgents: 10,
  mixAgents: 20,
  mixResources: 8,
  memorySteps: [1_000, 10_000],
  openLoopAgents: 1_000,
  openLoopRate: 2_000,
  editAgents: 4,
};

async function waitQuiet(): Promise<void> {
  for (let i = 0; i < 20 && (loadavg()[0] ?? 0) >= 1.0; i++) {
    console.log(`load ${loadavg()[0]?.toFixed(2)}: waiting 30 s for a quieter machine`);
    await sleep(30_000);
  }
}

const rows: Row[] = [];
const skipped: string[] = [];

function record(workload: string, system: string, r: Result): void {
  rows.push({ workload, system, r });
  const extra = r.extra === undefined ? '' : `  longest wait ${fmtMs(r.extra)}`;
  console.log(
    `${workload.padEnd(26)} ${system.padEnd(20)} p50 ${fmtMs(r.p50).padStart(9)}  p99 ${fmtMs(r.p99).padStart(9)}  max ${fmtMs(r.max).padStart(9)}  ${fmtRate(r.rate).padStart(8)}/s${extra}`,
  );
}

/** Runs `body` against a started system and always stops it, so no server outlives the bench. */
async function withSystem<S extends LockSystem>(start: () => Promise<S>, body: (s: S) => Promise<void>): Promise<void> {
  const s = await start();
  try {
    await body(s);
  } finally {
    await s.stop();
  }
}

/** `noWait` names the system where nobody waits, so how it would wait does not matter. */
async function lockWorkloads(s: LockSystem, noWait = s.name): Promise<void> {
  for (const n of PLAN.uncontended) record(`uncontended x${n}`, noWait, await uncontended(s, n, T));
  if (!s.locks) return;
  record('hand-over x100', s.name, await handover(s, PLAN.handoverAgents, PLAN.holdMs, T));
  record(`batch of 4 x${PLAN.batchAgents}`, noWait, await batch(s, PLAN.batchAgents, T));
  record(`90% read x${PLAN.mixAgents}`, s.name, await readMostly(s, PLAN.mixAgents, PLAN.mixResources, T));
}

async function main(): Promise<void> {
  if (process.argv.includes('--wait-quiet')) await waitQuiet();
  const began = Date.now();
  const loadBefore = loadavg();
  await withSystem(EchoFloor.start, (s) => lockWorkloads(s));
  await withSystem(LockstepSystem.start, (s) => lockWorkloads(s));
  if (RedisSystem.available()) {
    await withSystem(RedisSystem.start, async (s) => {
      await lockWorkloads(s, 'Redis');
      s.waiting = 'pubsub';
      record('hand-over x100', s.name, await handover(s, PLAN.handoverAgents, PLAN.holdMs, T));
      record(`90% read x${PLAN.mixAgents}`, s.name, await readMostly(s, PLAN.mixAgents, PLAN.mixResources, T));
    });
  } else skipped.push('Redis: redis-server not found (run bench/setup-peers.sh)');
  if (EtcdSystem.available()) await withSystem(EtcdSystem.start, (s) => lockWorkloads(s));
  else skipped.push('etcd: etcd not found (run bench/setup-peers.sh)');
  for (const s of skipped) console.log(`skipped ${s}`);

  const memory = await memoryPerSession(QUICK ? [1_000] : PLAN.memorySteps);
  for (const m of memory)
    console.log(
      `memory: ${m.sessions} idle sessions, ${(m.perSession / 1024).toFixed(1)} KiB each (RSS ${m.rssMiB.toFixed(0)} MiB)`,
    );
  const open = await openLoop(PLAN.openLoopAgents, PLAN.openLoopRate, QUICK ? 1_000 : 3_000, QUICK ? 1 : 3);
  record(`open loop x${PLAN.openLoopAgents}`, 'Lockstep', open);
  const edit = await edits(PLAN.editAgents, T);
  record(`edits x${PLAN.editAgents}`, 'Lockstep', edit);

  const results: Results = {
    rows,
    skipped,
    memory,
    open,
    quick: QUICK,
    seconds: (Date.now() - began) / 1000,
    loadBefore,
    loadAfter: loadavg(),
    plan: PLAN,
    timing: T,
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
