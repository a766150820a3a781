import type { Clock } from './clock.ts';

interface FakeTimer {
  id: number;
  at: number;
  fn: () => void;
}

/** A manual clock: time moves only through advance() and jump(), so timer-driven behaviour is deterministic. */
export class FakeClock implements Clock {
  private time: number;
  private nextId = 1;
  private readonly timers = new Map<number, FakeTimer>();

  constructor(start = Date.UTC(2025, 0, 1)) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { id, at: this.time + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Fires every timer due within `ms`, earliest first (ties in creation order), each at its own deadline (or now, if that has passed). */
  advance(ms: number): void {
    const target = this.time + Math.max(0, ms);
    for (;;) {
      let due: FakeTimer | undefined;
      for (const t of this.timers.values()) {
        if (t.at <= target && (due === undefined || t.at < due.at || (t.at === due.at && t.id < due.id))) due = t;
      }
      if (due === undefined) break;
      this.timers.delete(due.id);
      this.time = Math.max(this.time, due.at);
      due.fn();
    }
    this.time = target;
  }

  /**
   * Moves time on without firing anything, as a busy event loop does: timers due meanwhile fire
   * late, at the next advance(), and see the late time as now.
   */
  jump(ms: number): void {
    this.time += Math.max(0, ms);
  }

  pending(): number {
    return this.timers.size;
  }
}
