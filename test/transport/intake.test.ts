import { afterEach, describe, expect, it, vi } from 'vitest';
import { Intake } from '../../src/transport/intake.ts';
import { TokenBucket } from '../../src/transport/token-bucket.ts';

/** Busy for `ms` of wall time, as a costly call is. */
function work(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // busy
  }
}

describe('the intake of one socket', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('keeps pacing a flood, with no second refusal, when a busy server let the bucket refill meanwhile', () => {
    vi.useFakeTimers();
    let now = 0;
    const ran: number[] = [];
    const refused: number[] = [];
    const reader = { pause: () => {}, resume: () => {} };
    const intake = new Intake(reader, new TokenBucket(1000, 2, () => now), {
      run(data) {
        ran.push(Number(data.toString()));
        return undefined;
      },
      refuse(data) {
        refused.push(Number(data.toString()));
      },
    });
    for (let i = 0; i < 10; i++) intake.push(Buffer.from(String(i)), false);
    // The burst runs 0 and 1; 2 is refused; the rest wait unread.
    expect([ran, refused]).toEqual([[0, 1], [2]]);
    // The server was busy for a second: the bucket is full again, but the flood is still waiting.
    now += 1000;
    for (let step = 0; step < 100 && ran.length + refused.length < 10; step++) {
      vi.advanceTimersByTime(1);
      now += 1;
    }
    expect(ran).toEqual([0, 1, 3, 4, 5, 6, 7, 8, 9]);
    expect(refused).toEqual([2]);
    intake.stop();
  });

  it('yields to the event loop when calls answered by an async store chain past the turn budget', async () => {
    const ran: number[] = [];
    const reader = { pause: () => {}, resume: () => {} };
    const intake = new Intake(reader, new TokenBucket(1_000_000, 1_000_000, () => performance.now()), {
      // A store that answers within the turn (SQLite behind an async boundary): resolved at once.
      run(data) {
        work(2);
        ran.push(Number(data.toString()));
        return Promise.resolve();
      },
      refuse() {},
    });
    for (let i = 0; i < 20; i++) intake.push(Buffer.from(String(i)), false);
    // Other sockets' work waits behind the next turn; by then this one must have stopped.
    await new Promise((resolve) => setImmediate(resolve));
    expect(ran.length).toBeGreaterThan(0);
    expect(ran.length).toBeLessThan(20);
    // And it goes on, in order, over the following turns.
    while (ran.length < 20) await new Promise((resolve) => setImmediate(resolve));
    expect(ran).toEqual([...Array(20).keys()]);
    intake.stop();
  });
});
