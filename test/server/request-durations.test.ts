import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { RequestDurations } from '../../src/coordinator/request-durations.ts';

const BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5];

/** The same observations into prom-client's Histogram and into RequestDurations. */
function both() {
  const theirs = new Registry();
  const ours = new Registry();
  const h = new Histogram({
    name: 'lockstep_request_duration_seconds',
    help: 'Time to answer a call, by method and outcome',
    labelNames: ['method', 'outcome'] as const,
    buckets: BUCKETS,
    registers: [theirs],
  });
  const d = new RequestDurations(BUCKETS, ours);
  const observe = (method: string, outcome: string, seconds: number) => {
    h.observe({ method, outcome }, seconds);
    d.observe(method, outcome, seconds);
  };
  return { theirs, ours, observe };
}

describe('RequestDurations', () => {
  it("scrapes exactly as prom-client's Histogram would, bounds, overflow, order and reset included", async () => {
    const { theirs, ours, observe } = both();
    const calls: Array<[string, string, number]> = [
      ['lock.acquire', 'ok', 0.00003],
      ['lock.acquire', 'ok', 0.0001],
      ['lock.release', 'ok', 0.002],
      ['lock.acquire', 'ok', 0.7],
      ['lock.acquire', 'LOCK_DENIED', 0.00049],
      ['edit.apply', '-32602', 0.5],
    ];
    for (const c of calls) observe(...c);
    expect(await ours.metrics()).toBe(await theirs.metrics());
    theirs.resetMetrics();
    ours.resetMetrics();
    expect(await ours.metrics()).toBe(await theirs.metrics());
    for (const c of calls.reverse()) observe(...c);
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });

  it('gives the same values as JSON', async () => {
    const { theirs, ours, observe } = both();
    observe('session.ping', 'ok', 0.0002);
    const strip = (ms: Awaited<ReturnType<Registry['getMetricsAsJSON']>>) =>
      ms.map((m) => ({
        ...m,
        // prom-client adds `exemplar: null`; the rest must match.
        values: (m.values as Array<{ labels: object; value: number; metricName?: string }>).map(
          ({ labels, value, metricName }) => ({ labels, value, metricName }),
        ),
      }));
    expect(strip(await ours.getMetricsAsJSON())).toEqual(strip(await theirs.getMetricsAsJSON()));
  });
});
