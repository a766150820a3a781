import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/concurrency/fake-clock.ts';
import { LockManager, PUSH_SLICE } from '../../src/concurrency/index.ts';
import type { AcquireResult } from '../../src/concurrency/index.ts';

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
  const ticketOf = (r: AcquireResult) => (r.status === 'queued' ? r.ticket : '');
  locks.acquire('h', W);
  const tickets = Array.from({ length: n }, (_, i) => ticketOf(locks.acquire(`w${i}`, W)));
  const name = new Map(tickets.map((t, i) => [t, `w${i}`]));
  locks.on('position', (e) => runs.at(-1)!.push(`${name.get(e.ticket)}@${e.positions[0]!.position}`));
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
    turn('h');
    // Due at 100 ms; the slices a millisecond apart.
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
    turn('h');
    // Everyone waiting was told at 100 to 102 ms (three slices); at 150 ms everyone behind w2 moves up.
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
    expect(until(299)).toEqual(range(2, PUSH_SLICE + 1));
    expect(until(399)).toEqual(range(2, 2 * PUSH_SLICE + 1));
    expect(until(1000)).toEqual(range(2, n - 2));
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
