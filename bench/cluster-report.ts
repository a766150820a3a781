// The Cluster section of docs/benchmarks.md (docs/cluster.md, "Takeover time"), from one run of
// bench/cluster.ts; kept by `npm run bench` (doc-sections.ts).
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { optionSpecs } from '../src/config.ts';
import { writeMarkedSection } from './doc-sections.ts';
import { type KernelCosts, kernelLine } from './kernel-costs.ts';
import { type Load, SAMPLE_EVERY_MS } from './load-watch.ts';
import { hardwareLine, loadLine, postgresVersion, whenLine } from './method.ts';
import { fmtCpu, fmtMs, fmtRate, fmtRatio, percentile } from './stats.ts';
import { FAULTS, type Fault, PROBE_EVERY_MS } from './takeover.ts';
import type { Result, Timing } from './workloads.ts';

export interface LockRow {
  workload: string;
  single: Result;
  leader: Result;
  /** etcd's v3 Lock on the same run, where it took part. */
  etcd?: Result;
}

export interface ClusterResults {
  quick: boolean;
  seconds: number;
  load: Load;
  takeovers: Record<Fault, number[]>;
  locks: LockRow[];
  timing: Timing;
  kernel: KernelCosts;
}

export const SECTION = 'cluster';

const FAULT_LABEL: Record<Fault, string> = {
  kill: '`kill -9` of the leader (started again after, as a standby)',
  pause: 'leader paused past its lease (`SIGSTOP`; `SIGCONT` after: it finds itself deposed)',
};

/** The takeover figures as the section and the console show them. */
export function takeoverSummary(ms: readonly number[]): { p50: number; min: number; max: number } {
  const sorted = [...ms].sort((a, b) => a - b);
  return { p50: percentile(sorted, 0.5), min: sorted[0] ?? Number.NaN, max: sorted.at(-1) ?? Number.NaN };
}

function takeoverLines(res: ClusterResults): string[] {
  const ttl = optionSpecs.leaseTtlMs.default;
  const renew = optionSpecs.leaseRenewMs.default;
  const drift = optionSpecs.leaseDriftMs.default;
  const out = [
    '### Takeover time',
    '',
    `Three nodes (\`lockstep serve\`, each its own process) on one database, default timing (\`--lease-ttl-ms ${ttl} --lease-renew-ms ${renew} --lease-drift-ms ${drift}\`). Each takeover faults the leader and runs from the fault to the first lock granted by the new leader; a prober asks every remaining node for a session and a write lock every ${PROBE_EVERY_MS} ms (a standby answers \`NOT_LEADER\` at once), so the figure is the cluster's, not a client's backoff. From the timing alone a takeover takes what was left of the lease when the fault came (between ${ttl - renew} and ${ttl} ms), plus up to one look by the standbys (${renew} ms) and the new leader's load of the store.`,
    '',
    '| fault | takeovers | p50 | max | min |',
    '|---|---:|---:|---:|---:|',
  ];
  for (const fault of FAULTS) {
    const ms = res.takeovers[fault];
    const s = takeoverSummary(ms);
    out.push(`| ${FAULT_LABEL[fault]} | ${ms.length} | ${fmtMs(s.p50)} | ${fmtMs(s.max)} | ${fmtMs(s.min)} |`);
  }
  return out;
}

function lockLines(res: ClusterResults): string[] {
  const t = res.timing;
  const out = [
    '### Lock operations: the leader of three nodes against one node',
    '',
    `Workloads of the Results above (same sizes, same client), on two servers running side by side, each workload's repetitions interleaved (${t.settleMs} ms unmeasured first, then ${t.reps} of ${t.warmMs} ms warm-up then ${t.runMs} ms measured on each): a single node on SQLite (\`--db :memory:\`, as the Lockstep rows above), and the leader of a three-node cluster on PostgreSQL with both standbys running; both with the options of "How each system was configured" otherwise. Locks live in memory on both; the leader also checks its lease before every grant and every frame it writes, and commits every session and lock change to its journal in PostgreSQL before it answers or pushes it, the changes made while a commit is in flight together in the next one (docs/cluster.md, "What is durable when"). Ratios are leader ÷ single node: for latency above 1.00x means the leader is slower, for per second below 1.00x does. Server CPU is the Lockstep process's alone; the journal's work inside PostgreSQL is not in it.`,
    '',
    '| workload | single node p50 / p99 | leader p50 / p99 | single node per second | leader per second | leader ÷ single node: p50 | p99 | per second | server CPU per op: single node | leader |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const { workload, single: s, leader: l } of res.locks)
    out.push(
      `| ${workload} | ${fmtMs(s.p50)} / ${fmtMs(s.p99)} | ${fmtMs(l.p50)} / ${fmtMs(l.p99)} | ${fmtRate(s.rate)} | ${fmtRate(l.rate)} | ${fmtRatio(l.p50, s.p50)} | ${fmtRatio(l.p99, s.p99)} | ${fmtRatio(l.rate, s.rate)} | ${fmtCpu(s.serverCpuUs)} | ${fmtCpu(l.serverCpuUs)} |`,
    );
  return out;
}

/** "ext4 (/dev/vda)": the filesystem a directory is on, as df says. */
function filesystemOf(dir: string): string {
  const line =
    String(spawnSync('df', ['-T', dir], { encoding: 'utf8' }).stdout)
      .trim()
      .split('\n')[1] ?? '';
  const [device, type] = line.split(/\s+/);
  return type === undefined ? 'unknown' : `${type} (${device})`;
}

function etcdLines(res: ClusterResults): string[] {
  const rows = res.locks.filter((r) => r.etcd !== undefined);
  if (rows.length === 0) return [];
  const dir = tmpdir();
  const t = res.timing;
  const out = [
    '### Lock operations: the leader against etcd',
    '',
    `The same run: etcd's v3 Lock (as under Results, a single member) beside the two servers above, each workload's repetitions interleaved over the three (${t.settleMs} ms unmeasured first, then ${t.reps} of ${t.warmMs} ms warm-up then ${t.runMs} ms measured on each). Same durability on both sides: a lock change on the leader is told only once PostgreSQL has committed it (\`fsync=on\`, \`synchronous_commit=on\`), and etcd answers Lock and Unlock (each a Raft write) only once its write-ahead log is fsynced (etcd 3.4 always does); PostgreSQL's data directory and etcd's are both under ${dir}, on ${filesystemOf(dir)}, not tmpfs. Ratios are leader ÷ etcd: for latency under 1.00x means the leader is faster, for per second over 1.00x does.`,
    '',
    '| workload | leader (PostgreSQL, 3 nodes) p50 / p99 | etcd (v3 Lock) p50 / p99 | single node (SQLite) p50 / p99 | leader per second | etcd per second | single node per second | leader ÷ etcd: p50 | p99 | per second |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const { workload, single: s, leader: l, etcd: e } of rows)
    out.push(
      `| ${workload} | ${fmtMs(l.p50)} / ${fmtMs(l.p99)} | ${fmtMs(e!.p50)} / ${fmtMs(e!.p99)} | ${fmtMs(s.p50)} / ${fmtMs(s.p99)} | ${fmtRate(l.rate)} | ${fmtRate(e!.rate)} | ${fmtRate(s.rate)} | ${fmtRatio(l.p50, e!.p50)} | ${fmtRatio(l.p99, e!.p99)} | ${fmtRatio(l.rate, e!.rate)} |`,
    );
  return out;
}

export function writeClusterSection(res: ClusterResults): void {
  const { load } = res;
  writeMarkedSection(SECTION, [
    '',
    '## Cluster',
    '',
    '<!-- Generated by `npm run bench:cluster` (bench/cluster.ts) from one run: do not edit by hand. `npm run bench` keeps it as it is. -->',
    '',
    ...(res.quick
      ? ['> **Quick run (`--quick`): few takeovers and one short repetition; not figures to quote.**', '']
      : []),
    `Lockstep as a cluster (docs/cluster.md), as docs/cluster.md's "Takeover time" says: takeover time, and lock operations on a leader against a single node and against etcd, measured in one run (${res.seconds.toFixed(0)} s) on a throwaway local PostgreSQL over TCP on 127.0.0.1 with \`fsync=on\`. To reproduce: \`npm run bench:cluster\` (\`-- --quick\` to try it: few takeovers, short repetitions; \`npm run bench:takeover\` for the takeovers alone, printed only).`,
    '',
    hardwareLine(),
    kernelLine(res.kernel),
    `- Node ${process.version}; ${postgresVersion()}`,
    loadLine(load.before, load.after),
    `- 1-minute load average sampled every ${SAMPLE_EVERY_MS / 1000} s during the run: ${load.low.toFixed(2)} to ${load.high.toFixed(2)}.`,
    whenLine(),
    '',
    ...takeoverLines(res),
    '',
    ...lockLines(res),
    '',
    ...etcdLines(res),
    '',
  ]);
}
