import type { Metric, Registry } from 'prom-client';

/** One method-and-outcome series: per-bucket counts (not cumulative), sum and count. */
interface Series {
  readonly method: string;
  readonly outcome: string;
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

interface Value {
  labels: Record<string, string | number>;
  sharedLabels?: Record<string, string>;
  value: number;
  metricName: string;
}

/**
 * lockstep_request_duration_seconds: the time to answer a call by method and outcome, a
 * Prometheus histogram timed on every call. Kept here in plain arrays rather than in prom-client's
 * Histogram, whose observe() builds, checks and hashes a label object on every call (about 2.5 µs
 * a request in the bench's profile, most of prom-client's share of the hot path); registered in
 * the server's registry, it is scraped in the same exposition format as a Histogram.
 */
export class RequestDurations {
  readonly name = 'lockstep_request_duration_seconds';
  readonly help = 'Time to answer a call, by method and outcome';
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  /** method → outcome → series: two lookups by strings the caller already has, no key built. */
  private readonly series = new Map<string, Map<string, Series>>();
  /** Every series in the order it first appeared, which is prom-client's order too. */
  private readonly ordered: Series[] = [];

  constructor(
    private readonly buckets: readonly number[],
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Metric);
  }

  /**
   * Shows the series at 0 before its first call, so that Prometheus' increase() and rate() count
   * that call too (a series that appears at 1 has no earlier sample to count from).
   */
  zero(method: string, outcome: string): void {
    this.seriesOf(method, outcome);
  }

  observe(method: string, outcome: string, seconds: number): void {
    const s = this.seriesOf(method, outcome);
    let i = 0;
    while (i < this.buckets.length && seconds > (this.buckets[i] ?? 0)) i++;
    // Past the last bound it counts only in +Inf, which is the count.
    if (i < this.buckets.length) s.counts[i] = (s.counts[i] ?? 0) + 1;
    s.sum += seconds;
    s.count++;
  }

  private seriesOf(method: string, outcome: string): Series {
    let byOutcome = this.series.get(method);
    if (byOutcome === undefined) {
      byOutcome = new Map();
      this.series.set(method, byOutcome);
    }
    let s = byOutcome.get(outcome);
    if (s === undefined) {
      s = { method, outcome, counts: new Float64Array(this.buckets.length), sum: 0, count: 0 };
      byOutcome.set(outcome, s);
      this.ordered.push(s);
    }
    return s;
  }

  /** The exposition, as prom-client's Histogram gives it: labels shared by a series kept apart. */
  async getForPromString(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Value[] }> {
    const values: Value[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.ordered) {
      const shared = { method: s.method, outcome: s.outcome };
      let acc = 0;
      this.buckets.forEach((le, i) => {
        acc += s.counts[i] ?? 0;
        values.push({ labels: { le }, sharedLabels: shared, value: acc, metricName: bucket });
      });
      values.push(
        { labels: { le: '+Inf' }, sharedLabels: shared, value: s.count, metricName: bucket },
        { labels: {}, sharedLabels: shared, value: s.sum, metricName: `${this.name}_sum` },
        { labels: {}, sharedLabels: shared, value: s.count, metricName: `${this.name}_count` },
      );
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** As getForPromString, with every series' own labels merged into each value's (as JSON wants them). */
  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Value[] }> {
    const data = await this.getForPromString();
    return {
      ...data,
      values: data.values.map(({ labels, sharedLabels, value, metricName }) => ({
        labels: { ...labels, ...sharedLabels },
        value,
        metricName,
      })),
    };
  }

  reset(): void {
    this.series.clear();
    this.ordered.length = 0;
  }
}
