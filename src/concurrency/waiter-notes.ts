import type { Clock } from './clock.ts';
import { CoalescedTimer } from './coalesced-timer.ts';
import type { HolderWaiters } from './lock-types.ts';
import { resourceKey } from '../protocol/resource.ts';

/**
 * Holders told that others queue behind their locks (lock.waiters), so that an agent can finish
 * or hand over: a holder is marked when a ticket starts or stops waiting for one of its locks,
 * and told, at most once per `intervalMs`, how many wait on each lock and for how long the oldest
 * has; the first time at once. A lock it was told others wait for is told again with 0 once none
 * does (they gave up or went away), so that what a holder was told is never left standing. Its
 * own timer, like the position pushes: none while nobody waits.
 */
export class WaiterNotes {
  private readonly marked = new Set<string>();
  private readonly toldAt = new Map<string, number>();
  /** Per session, the keys of its locks it was last told someone waits for. */
  private readonly waitedFor = new Map<string, Set<string>>();
  private readonly timer: CoalescedTimer;

  constructor(
    private readonly intervalMs: number,
    private readonly clock: Clock,
    /** What waits now for each of the session's locks, 0 included. */
    private readonly survey: (sessionId: string) => HolderWaiters[],
    private readonly tell: (sessionId: string, locks: HolderWaiters[]) => void,
    private readonly flush: () => void,
  ) {
    this.timer = new CoalescedTimer(clock, () => this.run());
  }

  get scheduled(): number {
    return this.timer.scheduled;
  }

  close(): void {
    this.timer.close();
  }

  /** Whether holders are told at all (an interval of 0: never). */
  get enabled(): boolean {
    return this.intervalMs > 0;
  }

  /** These sessions hold locks a ticket now waits for, or waited for until now. */
  mark(sessionIds: Iterable<string>): void {
    if (this.intervalMs === 0) return;
    for (const id of sessionIds) this.marked.add(id);
    this.schedule();
  }

  /** The session ended: nothing more is told to it. */
  forget(sessionId: string): void {
    this.marked.delete(sessionId);
    this.toldAt.delete(sessionId);
    this.waitedFor.delete(sessionId);
  }

  private schedule(): void {
    if (this.marked.size === 0) return;
    const now = this.clock.now();
    let at = Number.POSITIVE_INFINITY;
    for (const id of this.marked)
      at = Math.min(at, Math.max(now, (this.toldAt.get(id) ?? -Infinity) + this.intervalMs));
    this.timer.runBy(at);
  }

  private run(): void {
    const now = this.clock.now();
    for (const id of [...this.marked]) {
      if ((this.toldAt.get(id) ?? -Infinity) + this.intervalMs > now) continue;
      this.marked.delete(id);
      const before = this.waitedFor.get(id);
      const locks = this.survey(id).filter((l) => l.waiting > 0 || before?.has(resourceKey(l.resource)));
      if (locks.length === 0) continue;
      const waited = new Set(locks.filter((l) => l.waiting > 0).map((l) => resourceKey(l.resource)));
      if (waited.size === 0) this.waitedFor.delete(id);
      else this.waitedFor.set(id, waited);
      this.toldAt.set(id, now);
      this.tell(id, locks);
    }
    this.flush();
    this.schedule();
  }
}
