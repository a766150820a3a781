// The targets of issues 16 and 22, judged on one run: each as Lockstep's p50 and p99 beside what
// it is held against, the ratios, and a verdict, with what the run measured of a missed one's
// cause; then the client CPU each system's driver used there.
import { BASELINE_NAME } from './baseline.ts';
import type { Row } from './report.ts';
import { fmtCpu, fmtMs, fmtRate, fmtRatio } from './stats.ts';
import type { Result } from './workloads.ts';

export const LS = 'Lockstep';
export const FLOOR = 'ws echo (floor)';

/** Hand-over p99 bound, and the uncontended bounds against the floor. */
const HANDOVER_P99_MS = 1;
const UNCONTENDED_P50_WITHIN = 1.5;
const UNCONTENDED_RATE_AT_LEAST = 0.75;

export interface TargetPlan {
  handoverAgents: number;
  targetUncontendedAgents: number;
  mixAgents: number;
}

const verdict = (ok: boolean) => (ok ? 'met' : '**not met**');
const both = (r: Result) => `${fmtMs(r.p50)} / ${fmtMs(r.p99)}`;

/**
 * The targets table, and under it, for each target this run missed, what the run measured of its
 * cause: beside a peer's p99, the CPU each server spent per operation in the same workload (in a
 * closed loop a busy server is a queue, and its tail is made of that queue), and the section that
 * breaks the slowest operations down. No misses when every target was met.
 */
export function targetLines(rows: Row[], p: TargetPlan): { table: string[]; misses: string[] } {
  const get = (w: string, s: string) => rows.find((x) => x.workload === w && x.system === s)?.r;
  const own = [LS, FLOOR, BASELINE_NAME];
  const peers = (w: string) => rows.filter((x) => x.workload === w && !own.includes(x.system));
  const hand = `hand-over x${p.handoverAgents}`;
  const mix = `90% read x${p.mixAgents}`;
  const un = `uncontended x${p.targetUncontendedAgents}`;
  const breakdown: Record<string, string> = {
    [hand]: '"Hand-over turns, slowest 1%" breaks the slowest turns down part by part',
    [mix]: '"90% read, operation by operation" splits them by kind and shows how busy each server was',
    [un]: `"Hot path profile" shows where Lockstep's server time per round trip goes beside the floor's, measured in this run`,
  };
  const table = [
    '| target | Lockstep p50 / p99 | held against: p50 / p99 | Lockstep ÷ it: p50, p99 | |',
    '|---|---:|---:|---:|---|',
  ];
  const misses: string[] = [];
  /** One target's row; when it is missed, `miss` (what was missed, with its figure) and what explains it. */
  const judge = (ok: boolean, cells: string, miss: string, cause: string) => {
    table.push(`| ${cells} | ${verdict(ok)} |`);
    if (!ok) misses.push(`- **${miss}**${cause}`);
  };
  const beatsEveryPeer = (w: string) => {
    const ls = get(w, LS);
    if (ls === undefined) return;
    const ps = peers(w);
    if (ps.length === 0) table.push(`| ${w}, p99 below every peer's | ${both(ls)} | no peer ran | | not measured |`);
    for (const { system, r } of ps) {
      const cpu =
        ls.serverCpuUs === undefined || r.serverCpuUs === undefined
          ? ''
          : ` Server CPU per operation here (user + system, every thread): Lockstep ${fmtCpu(ls.serverCpuUs)}, ${system} ${fmtCpu(r.serverCpuUs)} (${fmtRatio(ls.serverCpuUs, r.serverCpuUs)}); the bench's client for each, ${fmtCpu(ls.clientCpuUs)} and ${fmtCpu(r.clientCpuUs)}, on the same cores.`;
      judge(
        ls.p99 < r.p99,
        `${w}, p99 below ${system}'s | ${both(ls)} | ${both(r)} | ${fmtRatio(ls.p50, r.p50)}, **${fmtRatio(ls.p99, r.p99)}**`,
        `${w}, p99 below ${system}'s (${fmtRatio(ls.p99, r.p99)})`,
        `.${cpu} ${breakdown[w]}.`,
      );
    }
  };

  const lh = get(hand, LS);
  if (lh !== undefined) {
    judge(
      lh.p99 < HANDOVER_P99_MS,
      `${hand}, p99 under ${HANDOVER_P99_MS} ms | ${both(lh)} | ${fmtMs(HANDOVER_P99_MS)} | p99 **${fmtRatio(lh.p99, HANDOVER_P99_MS)}**`,
      `${hand}, p99 under ${HANDOVER_P99_MS} ms (${fmtMs(lh.p99)})`,
      `: ${breakdown[hand]}.`,
    );
    beatsEveryPeer(hand);
    const bound = p.handoverAgents - 1;
    const waited = lh.mostTurnsWaited ?? Number.POSITIVE_INFINITY;
    judge(
      waited <= bound,
      `${hand}, longest wait bounded by FIFO (at most ${bound} other turns) | ${lh.mostTurnsWaited} turns, ${fmtMs(lh.longestWait ?? Number.NaN)} | ${bound} turns | `,
      `${hand}, longest wait bounded by FIFO (${lh.mostTurnsWaited} turns)`,
      ': an agent was overtaken, which FIFO forbids.',
    );
  }
  const lu = get(un, LS);
  const fu = get(un, FLOOR);
  if (lu !== undefined && fu !== undefined) {
    judge(
      lu.p50 <= UNCONTENDED_P50_WITHIN * fu.p50,
      `${un}, p50 within ${UNCONTENDED_P50_WITHIN}x of the floor | ${both(lu)} | ${both(fu)} | **${fmtRatio(lu.p50, fu.p50)}**, ${fmtRatio(lu.p99, fu.p99)}`,
      `${un}, p50 within ${UNCONTENDED_P50_WITHIN}x of the floor (${fmtRatio(lu.p50, fu.p50)})`,
      `: ${breakdown[un]}.`,
    );
    judge(
      lu.rate >= UNCONTENDED_RATE_AT_LEAST * fu.rate,
      `${un}, throughput at least ${UNCONTENDED_RATE_AT_LEAST}x the floor's | ${fmtRate(lu.rate)}/s | ${fmtRate(fu.rate)}/s | per second **${fmtRatio(lu.rate, fu.rate)}**`,
      `${un}, throughput at least ${UNCONTENDED_RATE_AT_LEAST}x the floor's (${fmtRatio(lu.rate, fu.rate)})`,
      `: ${breakdown[un]}.`,
    );
  }
  beatsEveryPeer(mix);
  return {
    table,
    misses:
      misses.length === 0 ? [] : ['', 'Where a target was missed, what this run measured of the cause:', '', ...misses],
  };
}

/** Client CPU per operation of each system's driver in the judged workloads. */
export function clientCpuLines(rows: Row[], p: TargetPlan): string[] {
  const workloads = [
    `uncontended x${p.targetUncontendedAgents}`,
    `hand-over x${p.handoverAgents}`,
    `90% read x${p.mixAgents}`,
  ];
  const measured = rows.filter((x) => workloads.includes(x.workload) && x.r.clientCpuUs !== undefined);
  // One driver's systems together (Redis's ways of waiting are measured in later workloads than its plain row).
  const drivers = [...new Set(measured.map((x) => x.driver))];
  const systems = [...new Map(measured.map((x) => [x.system, x.driver]))].sort(
    (a, b) => drivers.indexOf(a[1]) - drivers.indexOf(b[1]),
  );
  const cell = (w: string, s: string) => {
    const row = measured.find((x) => x.workload === w && x.system === s);
    return row === undefined ? '' : fmtCpu(row.r.clientCpuUs);
  };
  return [
    `| system | driver | ${workloads.join(' | ')} |`,
    `|---|---|${workloads.map(() => '---:').join('|')}|`,
    ...systems.map(
      ([s, d]) => `| ${s === LS ? `**${s}**` : s} | ${d} | ${workloads.map((w) => cell(w, s)).join(' | ')} |`,
    ),
  ];
}
