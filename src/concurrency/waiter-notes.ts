import type { Clock } from './clock.ts';
import { Deadlines } from './deadlines.ts';
import type { Deadline } from './deadlines.ts';
import type { HolderWaiters } from './lock-types.ts';

/**
 * Holders told that others queue behind their locks (lock.waiters), so that an agent can finish
 * or hand over: a holder is marked when a ticket starts waiting for one of its locks, and told,
 * at most once per `intervalMs`, how many wait on each lock and for how long the oldest has; the
 * first time at once. Its own timer, like the position pushes: none while nobody waits.
 */
export class WaiterNotes {
  private readonly marked = new Set<string>();
  private readonly toldAt = new Map<string, number>();
  private readonly timer: Deadlines;
  private runAt: Deadline | undefined;

  constructor(
    private readonly intervalMs: number,
    private readonly clock: Clock,
    /** What waits now for each of the session's locks that anyone waits for. */
    private readonly survey: (sessionId: string) => HolderWaiters[],
    private readonly tell: (sessionId: string, locks: HolderWaiters[]) => void,
    private readonly flush: () => void,
  ) {
    this.timer = new Deadlines(clock);
  }

  get scheduled(): number {
    return this.timer.size;
  }

  close(): void {
    this.timer.close();
  }

  /** These sessions hold locks a ticket now waits for. Off with an interval of 0. */
  mark(sessionIds: Iterable<string>): void {
    if (this.intervalMs === 0) return;
    for (const id of sessionIds) this.marked.add(id);
    this.schedule();
  }

  /** The session ended: nothing more is told to it. */
  forget(sessionId: string): void {
    this.marked.delete(sessionId);
    this.toldAt.delete(sessionId);
  }

  private schedule(): void {
    if (this.marked.size === 0) return;
    const now = this.clock.now();
    let at = Number.POSITIVE_INFINITY;
    for (const id of this.marked)
      at = Math.min(at, Math.max(now, (this.toldAt.get(id) ?? -Infinity) + this.intervalMs));
    if (this.runAt !== undefined && this.runAt.at <= at) return;
    this.timer.cancel(this.runAt);
    this.runAt = this.timer.add(at, () => this.run());
  }

  private run(): void {
    this.runAt = undefined;
    const now = this.clock.now();
    for (const id of [...this.marked]) {
      if ((this.toldAt.get(id) ?? -Infinity) + this.intervalMs > now) continue;
      this.marked.delete(id);
      const locks = this.survey(id);
      if (locks.length === 0) continue;
      this.toldAt.set(id, now);
      this.tell(id, locks);
    }
    this.flush();
    this.schedule();
  }
}
