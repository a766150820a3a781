import type { Failover } from '../cluster/index.ts';
import type { LockstepError } from '../protocol/errors.ts';
import type { NotificationName, NotificationParams } from '../protocol/notifications.ts';
import type { Sink } from './sink.ts';

type Journal = Failover['journal'];

/**
 * Pushes one session may have waiting for the journal; past it the session is dropped as a slow
 * consumer would be (its sink could never catch up on a journal stuck this long).
 */
const MAX_WAITING = 10_000;

interface Push {
  /** The journal number this push waits for; 0: none of its own, only the pushes before it. */
  seq: number;
  method: NotificationName;
  params: unknown;
}

/**
 * Cluster mode (docs/cluster.md, "What is durable when"): no frame that tells of a lock change
 * leaves before the journal has committed that change and every one before it. A reply waits for
 * the journal number current when its call made its change, within the journal's wait, and is
 * refused past it (STORE_UNAVAILABLE) once what the call left is undone; a push that tells of a
 * change (lock.granted, lock.expired) waits in its session's queue, and every later push to that
 * session queues behind it, so that a session hears of its locks in the order they changed. So a
 * grant passed on can only be told once the release before it is durable.
 */
export class JournalGate {
  private readonly waiting = new Map<string, Push[]>();

  constructor(
    private readonly journal: Journal,
    private readonly sinkOf: (sessionId: string) => Sink | undefined,
    /** A session whose waiting pushes passed MAX_WAITING: the coordinator drops it. */
    private readonly overflow: (sessionId: string) => void,
  ) {
    journal.onCommitted(() => this.flush());
  }

  /**
   * The reply to a call that changed locks: as it is when the journal has everything already;
   * otherwise a promise of it once the journal does, or, past the wait, of STORE_UNAVAILABLE,
   * after `undo` (what a refusal leaves, per method: docs/protocol.md).
   */
  reply<T>(result: T, undo?: () => unknown): T | Promise<T> {
    const durable = this.journal.durable();
    if (durable === undefined) return result;
    return durable.then(
      () => result,
      async (err: LockstepError) => {
        await undo?.();
        throw err;
      },
    );
  }

  /** Whether everything the journal was told so far is committed (a reply need not wait). */
  get settled(): boolean {
    return this.journal.committed >= this.journal.head;
  }

  /** A push to a session; `change`: it tells of a lock change, and waits for the journal. */
  push<N extends NotificationName>(sessionId: string, method: N, params: NotificationParams<N>, change: boolean): void {
    const queue = this.waiting.get(sessionId);
    const seq = change ? this.journal.head : 0;
    if (queue === undefined) {
      if (seq <= this.journal.committed) {
        this.sinkOf(sessionId)?.notify(method, params);
        return;
      }
      this.waiting.set(sessionId, [{ seq, method, params }]);
      return;
    }
    if (queue.length >= MAX_WAITING) {
      this.forget(sessionId);
      this.overflow(sessionId);
      return;
    }
    queue.push({ seq, method, params });
  }

  /** The session's sink is gone or replaced: what waited for it goes as a push to a gone socket does. */
  forget(sessionId: string): void {
    this.waiting.delete(sessionId);
  }

  private flush(): void {
    const committed = this.journal.committed;
    for (const [sessionId, queue] of this.waiting) {
      let n = 0;
      while (n < queue.length && queue[n]!.seq <= committed) n++;
      if (n === 0) continue;
      const due = n === queue.length ? queue : queue.splice(0, n);
      if (due === queue) this.waiting.delete(sessionId);
      const sink = this.sinkOf(sessionId);
      for (const p of due) sink?.notify(p.method, p.params as never);
    }
  }
}
