import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/concurrency/fake-clock.ts';
import { LockManager, PUSH_SLICE } from '../../src/concurrency/index.ts';

const fn = { program: 'main', function: 1 };
const T0 = Date.UTC(2025, 0, 1);
const W = { resources: [fn], mode: 'write' as const, wait: true };

/**
 * A queue of `n` waiters behind holder h on one resource, with every position push and grant
 * recorded in order, grouped by the clock timer run (or lock call) that made them.
 */
function queueOf(n: number) {
  const clock = new FakeClock(T0);
  const runs: string[][] = [[]];
  const timer = clock.setTimeout.bind(clock);
  clock.setTimeout = (f, ms) =>
    timer(() => {
      runs.push([]);
      f();
    }, ms);
  const locks = new LockManager({ clock, queuePushMs: 100 });
  locks.acquire('h', W);
  for (let i = 0; i < n; i++) locks.acquire(`w${i}`, W);
  locks.on('position', (e) => runs.at(-1)!.push(`${e.sessionId}@${e.positions[0]!.position}`));
  locks.on('granted', (e) => runs.at(-1)!.push(`granted ${e.sessionId}`));
  /** Hands over: the holder releases and queues again at the back. */
  const turn = (holder: string) => {
    runs.push([]);
    locks.release(holder, [fn]);
  };
  const pushes = () => runs.filter((r) => r.length > 0);
  return { clock, locks, turn, pushes, runs };
}

describe('coalesced position pushes, spread', () => {
  it('writes the coalesced push in slices, nearest the front first, each in its own timer run', () => {
    const { clock, turn, pushes } = queueOf(2 * PUSH_SLICE + 5);
    // Long after their acquire answers, so that every waiter is due at the next push, deep ones too.
    clock.advance(1000);
    turn('h');
    // Due 100 ms after the turn; the slices a millisecond apart.
    clock.advance(110);
    const [first, ...rest] = pushes();
    expect(first).toEqual(['granted w0', 'w1@1']);
    // Positions 2 to 2 * PUSH_SLICE + 4: one slice per run, in queue order.
    expect(rest.map((r) => r.length)).toEqual([PUSH_SLICE, PUSH_SLICE, 3]);
    expect(rest.flat()).toEqual(Array.from({ length: 2 * PUSH_SLICE + 3 }, (_, i) => `w${i + 2}@${i + 2}`));
  });

  it('never runs the coalesced push inside a lock call: a release past its due time grants first', () => {
    const { clock, turn, pushes } = queueOf(5);
    turn('h');
    // The push is due but its timer has not run (a busy event loop): the next release comes first.
    clock.jump(150);
    turn('w0');
    expect(pushes()).toEqual([
      ['granted w0', 'w1@1'],
      ['granted w1', 'w2@1'],
    ]);
    clock.advance(0);
    expect(pushes().at(-1)).toEqual(['w3@2', 'w4@3']);
  });

  it('tells a deeper ticket less often: once per interval per PUSH_SLICE places past position 1', () => {
    const n = 2 * PUSH_SLICE + 5;
    const { clock, locks, turn, pushes } = queueOf(n);
    clock.advance(1000);
    turn('h');
    // Everyone waiting was told at 1100 to 1102 ms (three slices); at 1150 ms everyone behind w2 moves up.
    clock.advance(150);
    const before = pushes().flat().length;
    locks.cancel('w2', locks.tickets('w2')[0]!.ticket);
    const until = (ms: number) => {
      clock.advance(T0 + ms - clock.now());
      return pushes()
        .flat()
        .slice(before)
        .map((p) => Number(p.split('@')[1]));
    };
    const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
    // Positions 2 to PUSH_SLICE + 1: one interval after they were told; the next PUSH_SLICE places
    // two intervals; past them three.
    expect(until(1299)).toEqual(range(2, PUSH_SLICE + 1));
    expect(until(1399)).toEqual(range(2, 2 * PUSH_SLICE + 1));
    expect(until(2000)).toEqual(range(2, n - 2));
  });

  it('counts the acquire answer as a telling: a ticket that moves soon after it waits out the interval', () => {
    const { clock, locks, turn, pushes } = queueOf(3);
    clock.advance(1000);
    // w2's move to 2 sets a coalesced push for 1100 ms; late is answered position 3 at 1050 ms.
    turn('h');
    clock.advance(50);
    const late = locks.acquire('late', W);
    expect(late).toMatchObject({ status: 'queued', positions: [{ position: 3 }] });
    clock.advance(10);
    turn('w0');
    clock.advance(40);
    // The push run at 1100 ms finds late moved to 2, but answered 50 ms ago: it is not told yet.
    expect(pushes()).toEqual([
      ['granted w0', 'w1@1'],
      ['granted w1', 'w2@1'],
    ]);
    clock.advance(49);
    expect(pushes().flat()).not.toContain('late@2');
    // A queuePushMs after its answer it is.
    clock.advance(1);
    expect(pushes().at(-1)).toEqual(['late@2']);
  });

  it('still tells every changed position in the end, deep ones included', () => {
    const n = 3 * PUSH_SLICE;
    const { clock, locks, turn, pushes } = queueOf(n);
    turn('h');
    clock.advance(10_000);
    const last = new Map(
      pushes()
        .flat()
        .filter((p) => p.includes('@'))
        .map((p) => p.split('@') as [string, string]),
    );
    const waiting = locks.status()[0]!.queue;
    expect(waiting).toHaveLength(n - 1);
    for (const q of waiting) expect(last.get(q.sessionId)).toBe(String(q.position));
  });
});
