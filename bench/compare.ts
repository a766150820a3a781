// The "against the previous commit" table (`--baseline`): for every workload both Lockstep
// servers ran, current ÷ baseline for p50, p99 and per second, and whether the current one is
// worse beyond noise. Both ran in the same run with their repetitions interleaved
// (workloads.ts interleaved), so the machine's drift hits both alike.
import { BASELINE_NAME } from './baseline.ts';
import type { Row } from './report.ts';
import { fmtCpu, fmtMs, fmtRate, fmtRatio } from './stats.ts';
import { LS } from './targets.ts';
import type { Result } from './workloads.ts';

/**
 * The least a figure must be worse by to count, whatever the run: A/A runs (the same commit on
 * both sides, `--baseline=HEAD --no-peers`) on the shared 2-core machine at a load average of
 * 4 to 7 put pooled ratios anywhere in 0.68x-1.70x for p50, 0.70x-1.54x for per second and
 * 0.43x-1.68x for p99, sometimes with all three repetitions on one side; so no fixed figure fits
 * every machine: these floors are for a quiet one, and the run's own spread (below)
 * raises them when the machine is not.
 */
export const NOISE_FLOOR = { p50: 0.1, p99: 0.25, rate: 0.1, cpu: 0.1 } as const;

type Metric = keyof typeof NOISE_FLOOR;
const METRICS: Metric[] = ['p50', 'p99', 'rate', 'cpu'];
function value(m: Metric, r: Result): number {
  if (m === 'cpu') return r.serverCpuUs ?? Number.NaN;
  return m === 'rate' ? r.rate : m === 'p50' ? r.p50 : r.p99;
}
/** How many times worse current is than baseline (above 1: worse), for one metric. */
const worseBy = (m: Metric, cur: Result, base: Result) =>
  m === 'rate' ? base.rate / cur.rate : value(m, cur) / value(m, base);

/** (max - min) / median of a metric over one system's repetitions: how much it moved by itself. */
function spread(m: Metric, r: Result): number {
  const xs = (r.parts ?? [r]).map((p) => value(m, p)).sort((a, b) => a - b);
  const mid = xs[Math.floor(xs.length / 2)] ?? Number.NaN;
  return xs.length < 2 || !(mid > 0) ? 0 : ((xs[xs.length - 1] ?? mid) - (xs[0] ?? mid)) / mid;
}

/** The noise threshold of a metric in this row: its floor, or either system's own spread if larger. */
export function noise(m: Metric, cur: Result, base: Result): number {
  return Math.max(NOISE_FLOOR[m], spread(m, cur), spread(m, base));
}

/**
 * Worse beyond noise: the pooled figure is worse by more than the noise threshold, and so is the
 * same figure in every interleaved pair of repetitions (one slow repetition cannot make it).
 */
export function worseMetrics(cur: Result, base: Result): Metric[] {
  const pairs = (cur.parts ?? [cur]).map((c, i) => [c, base.parts?.[i] ?? base] as const);
  // A comparison with NaN (server CPU not measured) is false: never counted worse.
  return METRICS.filter(
    (m) => worseBy(m, cur, base) > 1 + noise(m, cur, base) && pairs.every(([c, b]) => worseBy(m, c, b) > 1),
  );
}

const NAMES: Record<Metric, string> = { p50: 'p50', p99: 'p99', rate: 'per second', cpu: 'server CPU' };

export function baselineLines(rows: Row[]): string[] {
  const get = (w: string, s: string) => rows.find((x) => x.workload === w && x.system === s)?.r;
  const workloads = [...new Set(rows.map((x) => x.workload))].filter(
    (w) => get(w, LS) !== undefined && get(w, BASELINE_NAME) !== undefined,
  );
  const out = [
    '| workload | current p50 / p99 / per second | baseline p50 / p99 / per second | current ÷ baseline: p50 | p99 | per second | per-second ratio by repetition | server CPU per op: current / baseline | ratio | noise: p50, p99, per second, server CPU | worse beyond noise? |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
  ];
  const three = (r: Result) => `${fmtMs(r.p50)} / ${fmtMs(r.p99)} / ${fmtRate(r.rate)}`;
  for (const w of workloads) {
    const cur = get(w, LS) as Result;
    const base = get(w, BASELINE_NAME) as Result;
    const byRep = (cur.parts ?? [])
      .map((c, i) => {
        const b = base.parts?.[i];
        return b === undefined ? '' : fmtRatio(c.rate, b.rate);
      })
      .join(', ');
    const worse = worseMetrics(cur, base);
    out.push(
      `| ${w} | ${three(cur)} | ${three(base)} | ${fmtRatio(cur.p50, base.p50)} | ${fmtRatio(cur.p99, base.p99)} | ${fmtRatio(cur.rate, base.rate)} | ${byRep} | ${fmtCpu(cur.serverCpuUs)} / ${fmtCpu(base.serverCpuUs)} | ${fmtRatio(cur.serverCpuUs ?? Number.NaN, base.serverCpuUs ?? Number.NaN)} | ${METRICS.map((m) => `±${(100 * noise(m, cur, base)).toFixed(0)}%`).join(', ')} | ${worse.length === 0 ? 'no' : `**worse: ${worse.map((m) => NAMES[m]).join(', ')}**`} |`,
    );
  }
  return out;
}

export function baselineNote(): string {
  const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
  return `Latency ratios under 1.00x and per-second ratios over 1.00x mean the current commit is faster. The two servers' repetitions alternate (current first in odd ones, baseline first in even ones), each with its own connections and warm-up, so whatever else the machine does falls on both. A figure is "worse beyond noise" when it is worse pooled by more than its noise threshold and worse in every pair of repetitions. The threshold is measured in the run: the larger of the two systems' own spread over their repetitions ((max − min) ÷ median of that figure), but at least ${pct(NOISE_FLOOR.p50)} for p50, per second and server CPU and ${pct(NOISE_FLOOR.p99)} for p99. Server CPU per op is the server process's user + system time (every thread, from /proc) over the measured phases, divided by their operations: what the server spent, which a loaded machine disturbs far less than latency. A fixed threshold does not fit a shared machine: comparing a commit with itself at a load average of 4 to 7 gave pooled ratios from 0.68x to 1.70x for p50, 0.70x to 1.54x for per second and 0.43x to 1.68x for p99, so on a loaded machine a verdict here is weak evidence either way; the load average is under Machine.`;
}

/** The issue's last target as a row of the Targets table: no workload worse than the baseline beyond noise. */
export function baselineTargetLine(rows: Row[], short: string): string {
  const get = (w: string, s: string) => rows.find((x) => x.workload === w && x.system === s)?.r;
  const worse: string[] = [];
  let compared = 0;
  for (const w of new Set(rows.map((x) => x.workload))) {
    const cur = get(w, LS);
    const base = get(w, BASELINE_NAME);
    if (cur === undefined || base === undefined) continue;
    compared++;
    const ms = worseMetrics(cur, base);
    if (ms.length > 0) worse.push(`${w}: ${ms.map((m) => NAMES[m]).join(', ')}`);
  }
  const verdict = compared === 0 ? 'not measured' : worse.length === 0 ? 'met' : '**not met**';
  return `| nothing worse than ${short} beyond noise, ${compared} workload${compared === 1 ? '' : 's'} (see "Against the previous commit") | | ${short} in this run | ${worse.length === 0 ? 'none worse' : `worse: ${worse.join('; ')}`} | ${verdict} |`;
}
