// node --import tsx bench/turns.ts [--baseline[=REV]] [--quick]: the hand-over x100 turn by turn.
// Runs the hand-over of docs/benchmarks.md on this checkout's server (and, with --baseline, on
// REV's beside it, repetitions interleaved) with both sides traced (turn-trace.ts): timestamps of
// every handler and frame, garbage collections and the event loop's delay in the server and in
// the bench process. Each turn is split into the parts of turn-breakdown.ts, and the slowest 1%
// are set against all turns in the "Hand-over turns" section of docs/benchmarks.md (kept by
// `npm run bench`), followed by a fresh server's first seconds of the same hand-over (how long its
// tail takes to settle); --quick prints only. About half a minute per system.
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { BASELINE_NAME, baselineArg, prepareBaseline } from './baseline.ts';
import { writeMarkedSection } from './doc-sections.ts';
import { watchLoad } from './load-watch.ts';
import { LockstepSystem } from './lockstep.ts';
import { LOCK_PLAN, timing } from './plan.ts';
import { fmtMs } from './stats.ts';
import { breakDown, gcSummary, mean, PARTS, slowest, type GcSummary, type TurnParts } from './turn-breakdown.ts';
import { installRecorder, type Trace, TRACE_START, TRACE_STOP } from './turn-trace.ts';
import { handover, interleaved, type Result } from './workloads.ts';

const QUICK = process.argv.includes('--quick');
const BASELINE = baselineArg(process.argv);
const T = timing(QUICK);
const SHARE = 0.01;
const GC_FLAGS = ['--trace-gc-nvp'];
/** Seconds of a fresh server's hand-over shown one by one. */
const FIRST_SECONDS = 8;

interface Traced {
  turns: TurnParts[];
  server: Trace[];
  client: Trace[];
  seconds: number;
  /** The server's young-generation accounting over its traces (--trace-gc-nvp), bytes. */
  heap: { allocated: number; survived: number; promoted: number; scavenges: number; tracing: boolean };
}

const traced = (): Traced => ({
  turns: [],
  server: [],
  client: [],
  seconds: 0,
  heap: { allocated: 0, survived: 0, promoted: 0, scavenges: 0, tracing: false },
});

/** Adds up a server's --trace-gc-nvp lines printed between its trace markers. */
function heapLines(into: Traced): (line: string) => void {
  return (line) => {
    if (line === TRACE_START) into.heap.tracing = true;
    else if (line === TRACE_STOP) into.heap.tracing = false;
    else if (into.heap.tracing) {
      const field = (k: string) => Number(new RegExp(`\\b${k}=(\\d+)`).exec(line)?.[1] ?? 0);
      into.heap.allocated += field('allocated');
      into.heap.survived += field('new_space_survived');
      into.heap.promoted += field('promoted');
      if (line.includes(' gc=s ')) into.heap.scavenges++;
    }
  };
}

const client = installRecorder();
const epoch = (t: number) => performance.timeOrigin + t;

async function tracedHandover(s: LockstepSystem, t: typeof T, into: Traced): Promise<Result> {
  const turns: Array<[number, number]> = [];
  const r = await handover(s, LOCK_PLAN.handoverAgents, LOCK_PLAN.holdMs, t, {
    phase: async (body) => {
      await s.server.ask('trace-start');
      client.start();
      try {
        return await body();
      } finally {
        const c = client.stop();
        const srv = (await s.server.ask('trace-stop')).trace as Trace;
        into.turns.push(...breakDown(turns, srv, c));
        into.server.push(srv);
        into.client.push(c);
        into.seconds += t.runMs / 1000;
      }
    },
    turn: (a, e) => turns.push([epoch(a), epoch(e)]),
  });
  return r;
}

const us = (ms: number) => (Number.isFinite(ms) ? `${(ms * 1000).toFixed(0)} µs` : '–');

function column(x: Traced): string[] {
  const slow = slowest(x.turns, SHARE);
  return PARTS.map(([k]) => `${us(mean(slow, (t) => t[k]))} / ${us(mean(x.turns, (t) => t[k]))}`);
}

function gcLine(g: GcSummary): string {
  return `${g.minorPerSecond.toFixed(1)}/s, median ${fmtMs(g.minorMedianMs)}, max ${fmtMs(g.minorMaxMs)}; ${g.major} other`;
}

function loopLine(ts: Trace[]): string {
  const p99 = Math.max(...ts.map((t) => t.loopDelay.p99));
  const max = Math.max(...ts.map((t) => t.loopDelay.max));
  return `p99 ${fmtMs(p99)}, max ${fmtMs(max)}`;
}

const kb = (bytes: number) => `${(bytes / 1024).toFixed(2)} KiB`;

/** Over every turn the server granted while traced (the measured windows), as the counts are. */
function perTurn(x: Traced, total: number, fmt: (v: number) => string): string {
  const turns = x.server.reduce((n, t) => n + t.releases.length, 0);
  return turns > 0 ? fmt(total / turns) : '–';
}

function share(x: Traced, f: (t: TurnParts) => boolean): string {
  const slow = slowest(x.turns, SHARE);
  return `${slow.filter(f).length} of ${slow.length}`;
}

function section(systems: Array<[string, Traced]>, load: ReturnType<ReturnType<typeof watchLoad>['stop']>): string[] {
  const head = `| part of a turn (mean, ms: slowest 1% / all turns) | ${systems.map(([n]) => n).join(' | ')} |`;
  const rule = `| --- | ${systems.map(() => '---:').join(' | ')} |`;
  const cols = systems.map(([, x]) => column(x));
  const row = (label: string, cells: string[]) => `| ${label} | ${cells.join(' | ')} |`;
  const sorted = (x: Traced) => x.turns.map((t) => t.total).sort((a, b) => a - b);
  const pct = (x: Traced, q: number) => sorted(x)[Math.min(x.turns.length - 1, Math.floor(q * x.turns.length))] ?? NaN;
  const date = new Date().toISOString().slice(0, 10);
  return [
    '',
    '## Hand-over turns, slowest 1%',
    '',
    '<!-- Generated by `node --import tsx bench/turns.ts --baseline=REV` (bench/turns.ts) from one run: do not edit by hand. `npm run bench` keeps it as it is. -->',
    '',
    `Where the hand-over x${LOCK_PLAN.handoverAgents}'s time goes, turn by turn (${T.reps} repetitions of ${T.runMs} ms per server, interleaved, ${date}; load average before ${load.before.map((l) => l.toFixed(2)).join(' / ')}, 1-minute during ${load.low.toFixed(2)} to ${load.high.toFixed(2)}, after ${load.after.map((l) => l.toFixed(2)).join(' / ')}). Both processes record what they do with their sockets (bench/turn-trace.ts): every message handler and every frame written outside one, with its kind, each garbage collection (\`PerformanceObserver\` on \`gc\`) and the event loop's delay (\`monitorEventLoopDelay\`), stamped on one system clock. A turn (release sent → next grant received, the figure of the hand-over row) is then split at the release handler's start on the server, the grant's write, and the grant's handling on the client, and each gap is attributed to what that side was doing meanwhile (bench/turn-breakdown.ts): garbage collection first where it overlaps, then lock.queue pushes, then lock.acquire handlers (on the server), then other handlers and timers; what is left is time no JS ran there (the kernel, or the scheduler giving the core to the other process or to the machine's other work). Each cell is the mean over the slowest 1% of turns, then over all turns. The tracing adds a few µs to each handler on both sides. Below the parts, per turn the server granted while traced: its CPU time, the frames it wrote, and its young generation's accounting from V8's \`--trace-gc-nvp\` (a scavenge forced at both ends of each trace, so the \`allocated=\` figures add up to exactly what ran in between): bytes allocated, bytes that outlived a scavenge (copied within the young generation or promoted to the old), and scavenges. Where those bytes come from, by function: \`node --import tsx bench/alloc-turns.ts all\` (or \`live\`).`,
    '',
    head,
    rule,
    row(
      'turns traced',
      systems.map(([, x]) => `${slowest(x.turns, SHARE).length} / ${x.turns.length}`),
    ),
    row(
      'turn p50 / p99 (traced)',
      systems.map(([, x]) => `${fmtMs(pct(x, 0.5))} / ${fmtMs(pct(x, 0.99))}`),
    ),
    row(
      '**whole turn**',
      systems.map(
        ([, x]) => `**${us(mean(slowest(x.turns, SHARE), (t) => t.total))}** / ${us(mean(x.turns, (t) => t.total))}`,
      ),
    ),
    ...PARTS.map(([, label], i) =>
      row(
        label,
        cols.map((c) => c[i]!),
      ),
    ),
    row(
      'frames the release handler wrote before the grant',
      systems.map(
        ([, x]) =>
          `${mean(slowest(x.turns, SHARE), (t) => t.framesBefore).toFixed(1)} / ${mean(x.turns, (t) => t.framesBefore).toFixed(1)}`,
      ),
    ),
    row(
      'slow turns whose wait for the server held a scavenge',
      systems.map(([, x]) => share(x, (t) => t.srvGc > 0)),
    ),
    row(
      'slow turns whose wait for the server held lock.queue pushes',
      systems.map(([, x]) => share(x, (t) => t.srvQueue > 0)),
    ),
    row(
      'slow turns whose wait for the client held a scavenge',
      systems.map(([, x]) => share(x, (t) => t.cliGc > 0)),
    ),
    row(
      'server scavenges (young generation)',
      systems.map(([, x]) => gcLine(gcSummary(x.server, x.seconds))),
    ),
    row(
      'client (bench process) scavenges',
      systems.map(([, x]) => gcLine(gcSummary(x.client, x.seconds))),
    ),
    row(
      'server CPU per turn (user + system, tracing included)',
      systems.map(([, x]) =>
        perTurn(
          x,
          x.server.reduce((n, t) => n + t.cpuUs, 0),
          (v) => `${v.toFixed(0)} µs`,
        ),
      ),
    ),
    row(
      'server frames written per turn',
      systems.map(([, x]) =>
        perTurn(
          x,
          x.server.reduce((n, t) => n + t.frames, 0),
          (v) => v.toFixed(2),
        ),
      ),
    ),
    row(
      'server bytes allocated per turn',
      systems.map(([, x]) => perTurn(x, x.heap.allocated, kb)),
    ),
    row(
      '… surviving a scavenge (copied in the young generation + promoted to the old)',
      systems.map(([, x]) => perTurn(x, x.heap.survived + x.heap.promoted, kb)),
    ),
    row(
      '… promoted to the old generation',
      systems.map(([, x]) => perTurn(x, x.heap.promoted, kb)),
    ),
    row(
      'server scavenges per 1,000 turns',
      systems.map(([, x]) => perTurn(x, x.heap.scavenges * 1000, (v) => v.toFixed(1))),
    ),
    row(
      'server event loop delay',
      systems.map(([, x]) => loopLine(x.server)),
    ),
    row(
      'client event loop delay',
      systems.map(([, x]) => loopLine(x.client)),
    ),
  ];
}

interface Second {
  p50: number;
  p99: number;
  turns: number;
  /** Functions V8's optimizing compiler finished in that second (--trace-opt). */
  optimized: number;
}

/**
 * A fresh server's hand-over second by second, untraced but for V8's --trace-opt: how long the
 * tail takes to settle while the JIT compiles the queueing paths, and so how long the workloads
 * run unmeasured first (plan.ts, SETTLE_MS).
 */
async function firstSeconds(): Promise<Second[]> {
  let optimized = 0;
  const fresh = await LockstepSystem.start(['--trace-opt'], undefined, (line) => {
    if (line.includes('completed optimizing') || line.includes('completed compiling')) optimized++;
  });
  const out: Second[] = [];
  try {
    for (let i = 0; i < FIRST_SECONDS; i++) {
      const before = optimized;
      const r = await handover(fresh, LOCK_PLAN.handoverAgents, LOCK_PLAN.holdMs, {
        settleMs: 0,
        warmMs: 0,
        runMs: 1_000,
        reps: 1,
        maxOps: T.maxOps,
      });
      out.push({ p50: r.p50, p99: r.p99, turns: r.n, optimized: optimized - before });
    }
  } finally {
    await fresh.stop();
  }
  return out;
}

function firstSecondsSection(seconds: Second[]): string[] {
  return [
    '',
    "### A fresh server's first seconds",
    '',
    `The same hand-over on a server just started, in ${seconds.length} runs of one second each (each starts with its ${LOCK_PLAN.handoverAgents} agents queueing at once and ends with the queue drained), and how many functions V8's optimizing compiler finished meanwhile (\`--trace-opt\`): the compiler runs on a thread of its own, on the same two cores as both processes, and code not yet optimized runs slower. The tail settles within about four seconds; every workload above and in Results runs ${T.settleMs} ms unmeasured first on every system, so the figures are of a settled server, as a long-running one is.`,
    '',
    '| second | turns | p50 | p99 | functions optimized |',
    '| ---: | ---: | ---: | ---: | ---: |',
    ...seconds.map(
      (x, i) =>
        `| ${i + 1} | ${x.turns.toLocaleString('en-US')} | ${fmtMs(x.p50)} | ${fmtMs(x.p99)} | ${x.optimized} |`,
    ),
  ];
}

async function main(): Promise<void> {
  process.env.LOCKSTEP_BENCH_TRACE = '1';
  const load = watchLoad();
  const cur = traced();
  const base = traced();
  const current = await LockstepSystem.start(GC_FLAGS, undefined, heapLines(cur));
  const systems: Array<[string, Traced]> = [['Lockstep', cur]];
  try {
    if (BASELINE === undefined)
      for (let r = 0; r < T.reps; r++)
        await tracedHandover(current, { ...T, reps: 1, settleMs: r === 0 ? T.settleMs : 0 }, cur);
    else {
      const b = prepareBaseline(BASELINE);
      const baseline = await LockstepSystem.startBaseline(b.serverModule, BASELINE_NAME, GC_FLAGS, heapLines(base));
      systems.push([`${BASELINE_NAME}, ${b.short}`, base]);
      try {
        await interleaved(
          (s, t) => tracedHandover(s as LockstepSystem, t, s === current ? cur : base),
          current,
          baseline,
          T,
        );
      } finally {
        await baseline.stop();
      }
    }
  } finally {
    await current.stop();
  }
  const lines = [...section(systems, load.stop()), ...firstSecondsSection(await firstSeconds())];
  console.log(lines.join('\n'));
  console.log(`load average now ${loadavg()[0]?.toFixed(2)}`);
  if (!QUICK) writeMarkedSection('turns', lines);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
