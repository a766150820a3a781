// The Machine and Method sections of docs/benchmarks.md, built from the values the code ran with
// (machine, timing, server options, peers' flags, drivers) so the text cannot drift from them.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { flagOf, optionSpecs, type OptionName } from '../src/config.ts';
import { PG_BIN } from '../test/helpers/postgres.ts';
import { type Baseline, DEFAULT_BASELINE } from './baseline.ts';
import { EtcdSystem, ETCD_NOTE } from './etcd.ts';
import { type KernelCosts, kernelLine } from './kernel-costs.ts';
import { BENCH_SERVER } from './lockstep.ts';
import { LOCK_PLAN } from './plan.ts';
import { RedisSystem, redisMethod } from './redis.ts';
import { WAVE } from './scale.ts';
import type { Timing } from './workloads.ts';

function cpuModel(): string {
  const info = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
  return /model name\s*:\s*(.+)/.exec(info)?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
}

/** The commit measured, marked when the code had changes on top of it (this run's output aside). */
function commit(): string {
  const cwd = fileURLToPath(new URL('..', import.meta.url));
  const git = (...args: string[]) => String(spawnSync('git', args, { cwd, encoding: 'utf8' }).stdout).trim();
  const head = git('rev-parse', '--short', 'HEAD');
  if (head === '') return 'unknown commit';
  const changed = git(
    'status',
    '--porcelain',
    '--untracked-files=no',
    '--',
    '.',
    ':!docs/benchmarks.md',
    ':!docs/bench-latency.svg',
  );
  return changed === '' ? head : `${head} with uncommitted changes`;
}

/** The Machine lines every generated section shares: the hardware, and when and what was measured. */
export function hardwareLine(): string {
  return `- CPU: ${cpuModel()}, ${cpus().length} cores; ${(totalmem() / 2 ** 30).toFixed(0)} GiB memory`;
}

export function loadLine(loadBefore: number[], loadAfter: number[]): string {
  const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(' / ');
  return `- load average (1/5/15 min) before: ${load(loadBefore)}, after: ${load(loadAfter)}. The machine is shared with other work; figures move by tens of percent between runs, ratios within one run much less.`;
}

export function postgresVersion(): string {
  return spawnSync(join(PG_BIN, 'postgres'), ['--version'], { encoding: 'utf8' }).stdout.trim();
}

export function whenLine(): string {
  return `- ${new Date().toISOString().slice(0, 10)}, Lockstep at ${commit()}`;
}

export function machineLines(loadBefore: number[], loadAfter: number[], kernel: KernelCosts): string[] {
  return [
    hardwareLine(),
    kernelLine(kernel),
    `- Node ${process.version}; ${RedisSystem.available() ? RedisSystem.version() : 'redis-server: not installed'}; ${EtcdSystem.available() ? EtcdSystem.version() : 'etcd: not installed'}`,
    loadLine(loadBefore, loadAfter),
    whenLine(),
  ];
}

/** Lockstep's options as the flags `lockstep serve` would take, each with its default when lifted. */
function lockstepOptions(): string {
  return Object.entries(BENCH_SERVER)
    .map(([name, value]) => {
      const spec = optionSpecs[name as OptionName];
      const shown = typeof value === 'number' ? value.toLocaleString('en-US') : String(value);
      const dflt = typeof spec.default === 'number' ? spec.default.toLocaleString('en-US') : String(spec.default);
      return `\`--${flagOf(name as OptionName)} ${shown}\` (default ${dflt})`;
    })
    .join(', ');
}

export function scaleMethod(): string {
  return `Idle sessions (connected and past \`session.hello\`), opened in waves of ${WAVE} so that connections without a session stay under \`--${flagOf('maxPending')}\` (${optionSpecs.maxPending.default.toLocaleString('en-US')}). Resident memory of the server process after a full GC, over the server with one session:`;
}

function baselineMethod(b: Baseline | undefined): string {
  const how = `\`npm run bench -- --baseline[=REV]\` (REV defaults to ${DEFAULT_BASELINE}, the state before the current round of request-path work) runs the server of another commit beside the current one: that commit's files are exported with \`git archive\` into a directory under the system temp dir (kept for the next run), with this checkout's node_modules when its lock file pins the same versions (else its own \`npm ci\`), and started exactly as the current one (bench/lockstep-server.ts, same options). Every Lockstep workload then runs on both with their repetitions interleaved, each repetition with its own connections and warm-up, and "Against the previous commit" compares them.`;
  if (b === undefined) return `${how} This run did not use it.`;
  return `${how} In this run the baseline was ${b.short} (node_modules: ${b.nodeModules === 'shared' ? "this checkout's" : 'its own'}).`;
}

export function methodLines(t: Timing, baseline?: Baseline): string[] {
  return [
    `- Every server runs in its own process (Lockstep and the echo floor are forked Node processes; Redis and etcd are their own binaries); all clients run in the bench process, so one clock times every request and one CPU counter measures every driver. The ${cpus().length} cores are shared by the bench process and the server under test (and, on a shared machine, whatever else runs). Every system is started at the beginning and runs until the end, idle while another is measured, and each workload's repetitions alternate between the systems that run it (the order reversed in every other repetition, each repetition with its own connections and warm-up): the machine's drift over the run falls on every system alike, so the ratios within a workload compare like with like.`,
    `- Each workload, on each system: first ${t.settleMs} ms unmeasured, so that the figures are of a server past compiling that workload's code, as a long-running one is (a fresh Lockstep server's hand-over p99 falls for about four seconds while V8 compiles its queueing paths: "A fresh server's first seconds" under Hand-over turns; the C servers need none of it, and get the same); then ${t.reps} repetition${t.reps > 1 ? 's' : ''} of ${t.warmMs} ms warm-up (discarded) then ${t.runMs} ms measured, each capped at ${t.maxOps.toLocaleString('en-US')} operations. Percentiles pool the repetitions' samples; "per second" is the median repetition, with the range in brackets. The hand-over's agents queue once, all at the same moment, when a run starts, and what follows (the unmeasured time, the warm-ups and the measured repetitions) are windows of that run, the queue never drained between them, so that a measured turn is a turn in a standing queue; where repetitions are interleaved with another system's, each is a run of its own, its queue formed before its warm-up. (A measured repetition that formed its own queue began with ${LOCK_PLAN.handoverAgents} acquires at once, and the turns behind that burst were a sizeable share of its slowest 1%; forming a queue is what "A fresh server's first seconds" shows.)`,
    "- An operation is one round trip (an acquire or a release), except in the hand-over (a turn) and edits (a committed edit). Latency is from the request leaving the client to the reply arriving; the hand-over's is from the holder's release leaving its client to the next holder's grant arriving.",
    '- Closed loop: each agent has one request outstanding at a time. The open-loop row keeps a fixed schedule instead.',
    '- Ratio columns divide Lockstep\'s figure by the row\'s: for latency under 1.00x means Lockstep is faster, for "per second" over 1.00x does.',
    `- Baseline: ${baselineMethod(baseline)}`,
    `- Client CPU: \`process.cpuUsage()\` (user + system) of the bench process over the measured phases only, divided by their operations (in the hand-over, by the turns taken in the measured windows). All of it is the driver's work (each system's is named with the figures) plus the bench's own loop, which is the same for every system.`,
    '',
    '### How each system was configured',
    '',
    `- **ws echo (floor)**: a \`ws\` server (no compression) that parses each request and answers with a JSON-RPC result of the same shape and size as Lockstep's answer (bench/echo-server.ts). The physical limit of one request in this stack.`,
    `- **Lockstep**: \`start()\` in a child process with ${lockstepOptions()}; every other option at its default. The rate limit is lifted because it is a policy a single closed-loop agent exceeds, not a cost. The lock path does no disk I/O at all: locks, queues and leases live in memory; only edits are durable (the edits row uses a file store). Acquires are sent with \`wait: true\`.`,
    `- **Redis**: ${redisMethod()}`,
    `- **etcd**: etcd's own v3 lock service (v3lockpb \`Lock\`/\`Unlock\` over gRPC, each agent its own connection and lease): ${ETCD_NOTE}. Lock waits server-side, FIFO by revision: a fair, push-based peer. It has no shared mode and no multi-name lock: reads take the exclusive lock, and a batch locks its four names one after another in sorted order.`,
  ];
}
