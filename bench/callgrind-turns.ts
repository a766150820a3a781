// node --import tsx bench/callgrind-turns.ts [SERVER_MODULE] [turns=600]: instructions the server
// executes per hand-over x100 turn, counted by valgrind's callgrind (every thread of the process,
// JIT compiler and GC included) over a phase of `turns` turns after an 8 s warm-up, so that two
// commits compare by a count a loaded machine does not move. SERVER_MODULE: another commit's
// src/server.ts (bench/baseline.ts exports one under the system temp dir); default this checkout's.
// Under valgrind the server runs tens of times slower, so more coalesced lock.queue pushes fall on
// each turn than at full speed: compare two servers measured this way, not with the figures of a
// normal run. About seven minutes at 600 turns.
import { fork, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Child } from './proc.ts';
import { BENCH_SERVER, LockstepSystem } from './lockstep.ts';
import { LOCK_PLAN } from './plan.ts';
import { handover } from './workloads.ts';

const serverModule = process.argv[2] || undefined;
const turns = Number(process.argv[3] ?? 600);
const out = join(tmpdir(), `lockstep-callgrind.${process.pid}.out`);
const proc = fork(
  fileURLToPath(new URL('./lockstep-server.ts', import.meta.url)),
  [JSON.stringify(BENCH_SERVER), ...(serverModule === undefined ? [] : [serverModule])],
  {
    execPath: 'valgrind',
    execArgv: [
      '--tool=callgrind',
      '--instr-atstart=no',
      `--callgrind-out-file=${out}`,
      process.execPath,
      '--import',
      'tsx',
      '--expose-gc',
    ],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  },
);
const port = await new Promise<number>((resolve) => proc.once('message', (m) => resolve((m as { port: number }).port)));
const server = { proc, port } as unknown as Child;
const sys = LockstepSystem.around(server, 'Lockstep under callgrind');
const instrument = (on: boolean) => spawnSync('callgrind_control', ['-i', on ? 'on' : 'off', String(proc.pid)]);
let granted = 0;
try {
  await handover(
    sys,
    LOCK_PLAN.handoverAgents,
    LOCK_PLAN.holdMs,
    { settleMs: 0, warmMs: 8_000, runMs: 3_600_000, reps: 1, maxOps: turns },
    {
      phase: async (body) => {
        instrument(true);
        try {
          return await body();
        } finally {
          instrument(false);
        }
      },
      turn: () => {
        granted++;
      },
    },
  );
} finally {
  proc.kill('SIGTERM');
  await new Promise((resolve) => proc.once('exit', resolve));
}
const totals = String(spawnSync('callgrind_annotate', [out], { encoding: 'utf8' }).stdout);
const total = Number(/([\d,]+)(?: \(100\.0%\))?\s+PROGRAM TOTALS/.exec(totals)?.[1]?.replace(/,/g, '') ?? Number.NaN);
// The turns of the instrumented window (the run goes on, unmeasured, until its queue drains).
console.log(
  `${serverModule ?? 'this checkout'}: ${granted} turns, ${total.toLocaleString('en-US')} instructions, ${Math.round(total / granted).toLocaleString('en-US')} per turn (${out})`,
);
process.exit(0);
