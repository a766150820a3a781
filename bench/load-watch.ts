// The machine's load over a bench run. Before and after alone can miss a neighbour's burst in
// the middle of a run on a shared machine, so the 1-minute average is also sampled throughout.
import { loadavg } from 'node:os';

export const SAMPLE_EVERY_MS = 5_000;

export interface Load {
  /** 1, 5 and 15-minute averages when the run began and when it ended. */
  before: number[];
  after: number[];
  /** Lowest and highest 1-minute average seen during the run. */
  low: number;
  high: number;
}

export function watchLoad(): { stop(): Load } {
  const before = loadavg();
  let low = before[0] ?? Number.NaN;
  let high = low;
  const sample = () => {
    const now = loadavg()[0] ?? Number.NaN;
    low = Math.min(low, now);
    high = Math.max(high, now);
  };
  const timer = setInterval(sample, SAMPLE_EVERY_MS).unref();
  return {
    stop() {
      clearInterval(timer);
      sample();
      return { before, after: loadavg(), low, high };
    },
  };
}
