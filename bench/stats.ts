// Latency samples are milliseconds (performance.now() differences); rates are per second.

export interface Summary {
  /** Samples pooled over every repetition. */
  n: number;
  p50: number;
  p99: number;
  max: number;
  /** Median of the repetitions' throughputs: one slow repetition (a neighbour's burst) moves it least. */
  rate: number;
  /** Each repetition's throughput, to show the spread. */
  rates: number[];
  /** Every sample, sorted: lets repetitions measured apart be pooled (see workloads.ts merge). */
  sorted: Float64Array;
}

export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

export function summarize(samples: number[][], rates: number[]): Summary {
  const all = Float64Array.from(samples.flat()).sort();
  const byRate = [...rates].sort((a, b) => a - b);
  return {
    n: all.length,
    p50: percentile(all, 0.5),
    p99: percentile(all, 0.99),
    max: all.length > 0 ? (all[all.length - 1] ?? Number.NaN) : Number.NaN,
    rate: byRate[Math.floor(byRate.length / 2)] ?? Number.NaN,
    rates,
    sorted: all,
  };
}

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '–';
  if (ms < 1) return `${(ms * 1000).toFixed(0)} µs`;
  if (ms < 100) return `${ms.toFixed(2)} ms`;
  return `${ms.toFixed(0)} ms`;
}

/** CPU time in microseconds, as µs below a millisecond. */
export function fmtCpu(us: number | undefined): string {
  if (us === undefined || !Number.isFinite(us)) return '–';
  return us < 1000 ? `${us.toFixed(1)} µs` : `${(us / 1000).toFixed(2)} ms`;
}

export function fmtRate(r: number): string {
  return Number.isFinite(r) ? Math.round(r).toLocaleString('en-US') : '–';
}

/** "1.23x"; below 1 means Lockstep is faster (shorter latency) than the peer. */
export function fmtRatio(a: number, b: number): string {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}x` : '–';
}
