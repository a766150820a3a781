import type { Clock } from './clock.ts';

/** A scheduled callback; pass it back to Deadlines.cancel(). */
export interface Deadline {
  readonly at: number;
}

interface Entry extends Deadline {
  seq: number;
  fn: () => void;
  /** Position in the heap, -1 once fired or cancelled, so cancel() is O(log n) and idempotent. */
  index: number;
}

// Node's setTimeout overflows above 2^31-1 ms and fires at once; longer waits re-arm on wake-up.
const MAX_TIMER_MS = 2_147_483_647;

/**
 * Every lease, warning, wait timeout and idle deadline lives in one min-heap behind a single
 * clock timer armed for the earliest entry: no periodic scan, and thousands of leases cost one
 * timer. Entries due at the same instant run in scheduling order.
 */
export class Deadlines {
  private readonly heap: Entry[] = [];
  private seq = 0;
  private timer: unknown;
  private armedAt: number | undefined;

  constructor(private readonly clock: Clock) {}

  get size(): number {
    return this.heap.length;
  }

  add(at: number, fn: () => void): Deadline {
    const entry: Entry = { at, seq: this.seq++, fn, index: this.heap.length };
    this.heap.push(entry);
    this.up(entry.index);
    this.arm();
    return entry;
  }

  cancel(deadline: Deadline | undefined): void {
    const entry = deadline as Entry | undefined;
    if (entry === undefined || entry.index < 0) return;
    this.removeAt(entry.index);
    this.arm();
  }

  /** Drops every deadline and the timer. */
  close(): void {
    for (const e of this.heap) e.index = -1;
    this.heap.length = 0;
    this.arm();
  }

  /**
   * Runs every callback already due, in deadline order. The timer does this when it fires, but a
   * busy event loop fires it late: callers that must not act on a deadline that has passed (a
   * lease checked after its end) run what is due first.
   */
  runDue(): void {
    // Called before every lock operation: when nothing is due, touch nothing.
    const top = this.heap[0];
    if (top !== undefined && top.at <= this.clock.now()) this.runDueAndArm();
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.armedAt = undefined;
    this.runDueAndArm();
  };

  private runDueAndArm(): void {
    try {
      for (;;) {
        const top = this.heap[0];
        if (top === undefined || top.at > this.clock.now()) break;
        this.removeAt(0);
        top.fn();
      }
    } finally {
      this.arm();
    }
  }

  private arm(): void {
    const top = this.heap[0];
    if (top?.at === this.armedAt) return;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.armedAt = undefined;
    if (top === undefined) return;
    this.armedAt = top.at;
    this.timer = this.clock.setTimeout(this.fire, Math.min(MAX_TIMER_MS, Math.max(0, top.at - this.clock.now())));
  }

  private removeAt(i: number): void {
    const heap = this.heap;
    const removed = heap[i]!;
    const last = heap.pop()!;
    removed.index = -1;
    if (last === removed) return;
    heap[i] = last;
    last.index = i;
    this.down(i);
    this.up(last.index);
  }

  private less(a: Entry, b: Entry): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private up(i: number): void {
    const heap = this.heap;
    const entry = heap[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = heap[p]!;
      if (!this.less(entry, parent)) break;
      heap[i] = parent;
      parent.index = i;
      i = p;
    }
    heap[i] = entry;
    entry.index = i;
  }

  private down(i: number): void {
    const heap = this.heap;
    const n = heap.length;
    const entry = heap[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const child = r < n && this.less(heap[r]!, heap[l]!) ? r : l;
      const c = heap[child]!;
      if (!this.less(c, entry)) break;
      heap[i] = c;
      c.index = i;
      i = child;
    }
    heap[i] = entry;
    entry.index = i;
  }
}
