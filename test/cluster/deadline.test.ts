import { describe, expect, it } from 'vitest';
import { type NodeClocks, readClocks, ServingDeadline } from '../../src/cluster/deadline.ts';

// Rule 2 of docs/cluster.md with the clocks stubbed: serving is bounded by the monotonic and the
// wall clock alike, and clocks that disagree by more than the drift margin end it.

/** Clocks that move only when told. */
function stubbed() {
  const now = { monotonic: 5_000, wall: 1_800_000_000_000 };
  const clocks: NodeClocks = { monotonic: () => now.monotonic, wall: () => now.wall };
  const pass = (ms: number) => {
    now.monotonic += ms;
    now.wall += ms;
  };
  return { now, clocks, pass };
}

const BUDGET = 2_500;
const DRIFT = 500;

describe('the serving deadline', () => {
  it('ends at the last renewal sent plus the budget, and a later renewal extends it', () => {
    const { clocks, pass } = stubbed();
    const deadline = new ServingDeadline(clocks, BUDGET, DRIFT, readClocks(clocks));
    pass(BUDGET - 1);
    expect(deadline.check()).toBe('serving');
    expect(deadline.leftMs()).toBe(1);
    const sent = readClocks(clocks);
    pass(1);
    expect(deadline.check()).toBe('deadline');
    deadline.extend(sent);
    expect(deadline.check()).toBe('serving');
    // A renewal sent earlier than the one that set the deadline extends nothing.
    deadline.extend({ monotonic: sent.monotonic - 100, wall: sent.wall - 100 });
    pass(BUDGET - 1);
    expect(deadline.check()).toBe('deadline');
  });

  it('ends by the wall clock when the monotonic clock stood still through a pause', () => {
    const { now, clocks } = stubbed();
    const deadline = new ServingDeadline(clocks, BUDGET, DRIFT, readClocks(clocks));
    // A paused VM: its monotonic clock did not count the pause, the wall clock did.
    now.wall += 60_000;
    now.monotonic += 10;
    expect(deadline.check()).toBe('deadline');
    expect(deadline.leftMs()).toBeLessThan(0);
  });

  it('ends by the monotonic clock when the wall clock was stepped back', () => {
    const { now, clocks } = stubbed();
    const deadline = new ServingDeadline(clocks, BUDGET, DRIFT, readClocks(clocks));
    now.wall -= 60_000;
    now.monotonic += BUDGET;
    expect(deadline.check()).toBe('deadline');
  });

  it('ends when the clocks disagree by more than the drift margin, either way, before the deadline', () => {
    for (const step of [DRIFT + 1, -(DRIFT + 1)]) {
      const { now, clocks, pass } = stubbed();
      const deadline = new ServingDeadline(clocks, BUDGET, DRIFT, readClocks(clocks));
      pass(100);
      now.wall += DRIFT;
      expect(deadline.check()).toBe('serving');
      now.wall += step - DRIFT;
      expect(deadline.check()).toBe('clocks');
    }
    const { now, clocks } = stubbed();
    const deadline = new ServingDeadline(clocks, BUDGET, DRIFT, readClocks(clocks));
    now.monotonic += 1_000;
    now.wall += 1_000 + DRIFT + 1;
    expect(deadline.check()).toBe('clocks');
  });
});
