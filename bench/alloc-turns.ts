// node --import tsx bench/alloc-turns.ts [all|live] [seconds]: where the server allocates during
// the hand-over x100, per turn, by function (alloc-profile.ts in the server child). `all` (the
// default): everything allocated, collected or not; `live`: what is still alive at the end (what
// survived). Prints the top 30; a sampling profile, so figures under ~1 KiB a turn are rough.
import { LockstepSystem } from './lockstep.ts';
import type { Allocations } from './alloc-profile.ts';
import { LOCK_PLAN } from './plan.ts';
import { handover } from './workloads.ts';

const mode = process.argv[2] === 'live' ? 'live' : 'all';
const seconds = Number(process.argv[3] ?? 3);
process.env.LOCKSTEP_BENCH_TRACE = '1';
const s = await LockstepSystem.start();
let turns = 0;
let allocations: Allocations = [];
try {
  await handover(
    s,
    LOCK_PLAN.handoverAgents,
    LOCK_PLAN.holdMs,
    { settleMs: 0, warmMs: 500, runMs: seconds * 1000, reps: 1, maxOps: 1e7 },
    {
      phase: async (body) => {
        await s.server.ask(mode === 'all' ? 'alloc-start' : 'alloc-live-start');
        try {
          return await body();
        } finally {
          allocations = (await s.server.ask('alloc-stop')).allocations as Allocations;
        }
      },
      turn: () => {
        turns++;
      },
    },
  );
} finally {
  await s.stop();
}
const total = allocations.reduce((n, [, b]) => n + b, 0);
console.log(`${mode}: ${turns} turns, ${(total / turns / 1024).toFixed(2)} KiB sampled per turn`);
for (const [fn, bytes] of allocations.slice(0, 30))
  console.log(`${(bytes / turns).toFixed(0).padStart(7)} B/turn  ${fn}`);
process.exit(0);
