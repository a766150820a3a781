// The "against the previous commit" table (`--baseline`): for every workload both Lockstep
// servers ran, current ÷ baseline for p50, p99 and per second, and whether the current one is
// worse beyond noise. Both ran in the same run with their repetitions interleaved (run.ts
// recordPaired), so the machine's drift hits both alike.
import { BASELINE_NAME } from './baseline.ts';
import type { Row } from './report.ts';
import { fmtMs, fmtRate, fmtRatio } from './stats.ts';
import { LS } from './targets.ts';
import type { Result } from './workloads.ts';

/**
 * How much worse than the baseline a figure may be and still count as noise. Set from A/A runs on
 * the shared 2-core machine (the same commit on both sides, `--baseline=HEAD` with a clean tree):
 * pooled p50 and per-second ratios there stayed within about ±10%, p99 ratios within about ±30%
 * (a p99 of a few thousand samples is a few dozen scheduler hiccups).
 */
export const NOISE = { p50: 0.1, p99: 0.3, rate: 0.1 } as const;

type Metric = keyof typeof NOISE;
/** How many times worse current is than baseline (above 1: worse), for one metric. */
const worseBy = (m: Metric, cur: Result, base: Result) =>
  m === 'rate' ? base.rate / cur.rate : m === 'p50' ? cur.p50 / base.p50 : cur.p99 / base.p99;

/**
 * Worse beyond noise: the pooled figure is worse than the threshold allows, and so is the same
 * figure in every interleaved pair of repetitions (one slow repetition cannot make the verdict).
 */
export function worseMetrics(cur: Result, base: Result): Metric[] {
  const pairs = (cur.parts ?? [cur]).map((c, i) => [c, base.parts?.[i] ?? base] as const);
  return (Object.keys(NOISE) as Metric[]).filter(
    (m) => worseBy(m, cur, base) > 1 + NOISE[m] && pairs.every(([c, b]) => worseBy(m, c, b) > 1),
  );
}

const NAMES: Record<Metric, string> = { p50: 'p50', p99: 'p99', rate: 'per second' };

export function baselineLines(rows: Row[]): string[] {
  const get = (w: string, s: string) => rows.find((x) => x.workload === w && x.system === s)?.r;
  const workloads = [...new Set(rows.map((x) => x.workload))].filter(
    (w) => get(w, LS) !== undefined && get(w, BASELINE_NAME) !== undefined,
  );
  const out = [
    '| workload | current p50 / p99 / per second | baseline p50 / p99 / per second | current ÷ baseline: p50 | p99 | per second | per-second ratio by repetition | worse beyond noise? |',
    '|---|---:|---:|---:|---:|---:|---:|---|',
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
      `| ${w} | ${three(cur)} | ${three(base)} | ${fmtRatio(cur.p50, base.p50)} | ${fmtRatio(cur.p99, base.p99)} | ${fmtRatio(cur.rate, base.rate)} | ${byRep} | ${worse.length === 0 ? 'no' : `**worse: ${worse.map((m) => NAMES[m]).join(', ')}**`} |`,
    );
  }
  return out;
}

export function baselineNote(): string {
  return `Latency ratios under 1.00x and per-second ratios over 1.00x mean the current commit is faster. The two servers' repetitions alternate (current first in odd ones, baseline first in even ones), each with its own warm-up, so whatever else the machine does falls on both. "Worse beyond noise" needs both: the pooled figure worse by more than the noise threshold (p50 and per second: ${NOISE.p50 * 100}%, p99: ${NOISE.p99 * 100}%; what runs comparing a commit with itself moved by on this shared machine), and that figure worse in every pair of repetitions.`;
}
