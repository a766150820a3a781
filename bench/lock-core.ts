// Lock core micro-benchmark: node --import tsx bench/lock-core.ts
// Uncontended acquire+release throughput, and the cost of one release with 1,000 waiters queued.
// Real clock and timers, a no-op listener on every event (as the server has); about 18 s in all.
import { performance } from 'node:perf_hooks';
import { systemClock } from '../src/concurrency/clock.ts';
import { LockManager } from '../src/concurrency/index.ts';
import type { LockEvents } from '../src/concurrency/index.ts';
import type { Resource } from '../src/protocol/resource.ts';

const WAITERS = 1000;
const EVENTS: Array<keyof LockEvents> = [
  'granted',
  'queued',
  'position',
  'released',
  'downgraded',
  'renewed',
  'denied',
  'expiring',
  'expired',
  'waitTimeout',
  'cancelled',
  'deadlock',
];
const fn = (n: number): Resource => ({ program: 'bench', function: n });

/** Position pushes (`position` events) since the run began, across managers. */
let pushes = 0;

function manager(queuePushMs = 0): LockManager {
  const locks = new LockManager({ clock: systemClock, queuePushMs });
  for (const e of EVENTS) locks.on(e, () => {});
  locks.on('position', () => pushes++);
  return locks;
}

function uncontended(ms: number): { rate: number; pairs: number } {
  const locks = manager();
  const r = [fn(1)];
  const run = (until: number) => {
    let pairs = 0;
    while (performance.now() < until) {
      for (let i = 0; i < 1000; i++) {
        locks.acquire('a', { resources: r, mode: 'write' });
        locks.release('a', r);
      }
      pairs += 1000;
    }
    return pairs;
  };
  run(performance.now() + 300);
  const start = performance.now();
  const pairs = run(start + ms);
  const rate = pairs / ((performance.now() - start) / 1000);
  locks.close();
  return { rate, pairs };
}

/**
 * A writer holds; 1,000 writers wait. Each release grants the next one and moves 999 up a place,
 * each of them told at once, or (coalesced) only the new first one at once and the rest together
 * once per queuePushMs.
 */
function writersBehindWriter(ms: number, queuePushMs = 0): { samples: number[]; pushesPerRelease: number } {
  const locks = manager(queuePushMs);
  const r = [fn(1)];
  locks.acquire('w0', { resources: r, mode: 'write' });
  for (let i = 1; i <= WAITERS; i++) locks.acquire(`w${i}`, { resources: r, mode: 'write', wait: true });
  const samples: number[] = [];
  let holder = 0;
  const before = pushes;
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const t = performance.now();
    locks.release(`w${holder}`, r);
    samples.push(performance.now() - t);
    // The released session queues again at the back, so 1,000 stay waiting.
    locks.acquire(`w${holder}`, { resources: r, mode: 'write', wait: true });
    holder = (holder + 1) % (WAITERS + 1);
  }
  locks.close();
  return { samples, pushesPerRelease: (pushes - before) / samples.length };
}

/**
 * The time of one release, each on a fresh manager where a writer holds `fn(1)` and `queue` has
 * put its waiters behind it (granting a thousand readers cannot be undone cheaply to repeat).
 */
function releaseAfter(ms: number, queue: (locks: LockManager, r: Resource[]) => void): number[] {
  const samples: number[] = [];
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const locks = manager();
    const r = [fn(1)];
    locks.acquire('w', { resources: r, mode: 'write' });
    queue(locks, r);
    const t = performance.now();
    locks.release('w', r);
    samples.push(performance.now() - t);
    locks.close();
  }
  return samples;
}

const readers = (locks: LockManager, r: Resource[]) => {
  for (let i = 0; i < WAITERS; i++) locks.acquire(`r${i}`, { resources: r, mode: 'read', wait: true });
};

/** A writer holds; 1,000 readers wait. One release grants them all. */
const readersBehindWriter = (ms: number) => releaseAfter(ms, readers);

/** A writer holds; a writer then 1,000 readers wait. One release grants the writer; the readers move up. */
const readersBehindTwoWriters = (ms: number) =>
  releaseAfter(ms, (locks, r) => {
    locks.acquire('w2', { resources: r, mode: 'write', wait: true });
    readers(locks, r);
  });

function stats(ms: number[]): { n: number; median: number; p99: number; mean: number } {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]! * 1000;
  return { n: s.length, median: at(0.5), p99: at(0.99), mean: (s.reduce((a, b) => a + b, 0) / s.length) * 1000 };
}

const un = uncontended(3000);
const handOver = writersBehindWriter(3000);
const coalesced = writersBehindWriter(3000, 100);
const rows = [
  ['1,000 writers queued behind a writer (grants 1)', stats(handOver.samples)],
  ['the same, queue pushes coalesced (queuePushMs 100)', stats(coalesced.samples)],
  ['1,000 readers queued behind a writer (grants 1,000)', stats(readersBehindWriter(4000))],
  ['writer + 1,000 readers queued behind a writer (grants 1)', stats(readersBehindTwoWriters(4000))],
] as const;

const us = (n: number) => n.toFixed(1).padStart(9);
console.log(`node ${process.version}, ${process.arch}`);
console.log(
  `uncontended acquire+release: ${Math.round(un.rate).toLocaleString('en-US')} pairs/s (${un.pairs.toLocaleString('en-US')} pairs)`,
);
console.log('');
console.log(
  `${'one release with'.padEnd(58)} ${'samples'.padStart(7)} ${'median µs'.padStart(9)} ${'p99 µs'.padStart(9)} ${'mean µs'.padStart(9)}`,
);
for (const [name, s] of rows)
  console.log(`${name.padEnd(58)} ${String(s.n).padStart(7)} ${us(s.median)} ${us(s.p99)} ${us(s.mean)}`);
console.log('');
console.log(
  `position pushes per hand-over: ${handOver.pushesPerRelease.toFixed(1)} at once, ${coalesced.pushesPerRelease.toFixed(1)} coalesced`,
);
