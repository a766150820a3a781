import type { Clock } from './clock.ts';
import { Deadlines } from './deadlines.ts';
import type { Deadline } from './deadlines.ts';

/**
 * One run of a coalesced push (position-pushes.ts, waiter-notes.ts), set for no later than the
 * soonest time asked. Its own timer, apart from the lock manager's deadlines: those run first
 * thing in every lock call (its catch-up), which would put a whole push's frames ahead of that
 * call's own grant.
 */
export class CoalescedTimer {
  private readonly timer: Deadlines;
  private runAt: Deadline | undefined;

  constructor(
    clock: Clock,
    private readonly run: () => void,
  ) {
    this.timer = new Deadlines(clock);
  }

  /** 1 while a run is set. */
  get scheduled(): number {
    return this.timer.size;
  }

  /** Runs at `at` at the latest: a run set for earlier stands, a later one is brought forward. */
  runBy(at: number): void {
    if (this.runAt !== undefined && this.runAt.at <= at) return;
    this.timer.cancel(this.runAt);
    this.runAt = this.timer.add(at, this.fire);
  }

  close(): void {
    this.timer.close();
  }

  private readonly fire = (): void => {
    this.runAt = undefined;
    this.run();
  };
}
