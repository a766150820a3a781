import { describe, expect, it } from 'vitest';
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
