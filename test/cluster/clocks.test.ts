import pino from 'pino';
import { afterEach, describe, expect, inject, it } from 'vitest';
import type { NodeClocks } from '../../src/cluster/deadline.ts';
import { Leadership, type Term } from '../../src/cluster/leadership.ts';
import { NodeMetrics, type StepDownReason } from '../../src/cluster/node-metrics.ts';
import { freshDatabase } from '../helpers/postgres.ts';

// Rule 2 of docs/cluster.md on a real lease, with the node's clocks stubbed: a leader whose
// monotonic clock stood still (a paused VM) stops serving by its wall clock, and one whose clocks
// disagree by more than the drift margin steps down. Nothing waits in real time: the renewal
// interval is far longer than the test.

const leaderships: Leadership[] = [];
afterEach(async () => {
  await Promise.all(leaderships.splice(0).map((l) => l.stop()));
});

const TTL = 60_000;
const DRIFT = 1_000;

async function leading(): Promise<{
  leadership: Leadership;
  now: { monotonic: number; wall: number };
  deposed: Promise<StepDownReason>;
}> {
  const now = { monotonic: 1_000, wall: 1_800_000_000_000 };
  const clocks: NodeClocks = { monotonic: () => now.monotonic, wall: () => now.wall };
  let elected: (term: Term) => void = () => undefined;
  const won = new Promise<Term>((resolve) => {
    elected = resolve;
  });
  let deposedWith: (reason: StepDownReason) => void = () => undefined;
  const deposed = new Promise<StepDownReason>((resolve) => {
    deposedWith = resolve;
  });
  const leadership: Leadership = new Leadership({
    db: await freshDatabase(inject('postgresUrl')),
    nodeId: 'a',
    advertise: 'ws://a/ws',
    ttlMs: TTL,
    renewMs: TTL / 2,
    driftMs: DRIFT,
    logger: pino({ level: 'silent' }),
    metrics: new NodeMetrics(
      () => ({ role: 'leader', epoch: 1 }),
      () => true,
    ),
    clocks,
    onElected: elected,
    onDeposed: (_term, reason) => deposedWith(reason),
  });
  leaderships.push(leadership);
  await leadership.start();
  await won;
  expect(leadership.serving()).toBe(true);
  return { leadership, now, deposed };
}

describe('cluster: the serving deadline on two clocks', () => {
  it('a leader whose monotonic clock stood still through a pause stops serving by the wall clock', async () => {
    const { leadership, now, deposed } = await leading();
    now.wall += TTL;
    now.monotonic += 5;
    expect(leadership.serving()).toBe(false);
    expect(await deposed).toBe('deadline');
  });

  it('a leader whose wall clock was stepped back still stops by the monotonic clock', async () => {
    const { leadership, now, deposed } = await leading();
    now.wall -= 10 * TTL;
    now.monotonic += TTL;
    expect(leadership.serving()).toBe(false);
    expect(await deposed).toBe('deadline');
  });

  it('a leader whose clocks disagree by more than the drift margin steps down', async () => {
    const { leadership, now, deposed } = await leading();
    now.monotonic += 1_000;
    now.wall += 1_000 + DRIFT;
    expect(leadership.serving()).toBe(true);
    now.wall += 1;
    expect(leadership.serving()).toBe(false);
    expect(await deposed).toBe('clocks');
  });
});
