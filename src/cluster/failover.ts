import type { Logger } from 'pino';
import type { Clock, LockManager, SessionRegistry } from '../concurrency/index.ts';
import type { Resource } from '../protocol/resource.ts';
import type { NotRestored } from '../protocol/wire.ts';
import type { SharedDatabase } from '../service/index.ts';
import { journalTables } from './journal-batch.ts';
import { LockJournal } from './journal.ts';
import { applyRestore, type DropReason, planRestore, readJournal, type RestorePlan, settleResumed } from './restore.ts';

// Failover as a resume (docs/cluster.md, failover rules; docs/cluster-failover.md): the leader journals its sessions and locks in
// PostgreSQL; a new leader restores them to the sessions that resume, within a grace window.

export interface FailoverOptions {
  clock: Clock;
  logger: Logger;
  /** How long a lock change's reply waits for its journal record before it is refused. */
  waitMs: number;
  /** Whether a recorded lock's resource still exists on this leader. */
  exists(resource: Resource): boolean;
}

/**
 * A leader's part of failover, created with its coordinator (the whole leader state) and
 * discarded with it: the plan of what the previous leader left, put into the lock core and the
 * session registry when the coordinator starts, and the journal of what this leader does.
 */
export class Failover {
  /** Recorded sessions that have not resumed yet: each is told once what it got back. */
  private unresumed = new Set<string>();
  /** The lock core the plan was put into (start). */
  private locks: LockManager | undefined;

  private constructor(
    /** What this leader does, committed before anything tells of it (docs/cluster.md). */
    readonly journal: LockJournal,
    private readonly plan: RestorePlan,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  /** Reads what the previous leader recorded and decides what is restored. */
  static async open(db: SharedDatabase, opts: FailoverOptions): Promise<Failover> {
    const plan = planRestore(await readJournal(db, opts.clock), opts.exists);
    const journal = new LockJournal(
      journalTables(db, () => opts.clock.now()),
      { clock: opts.clock, logger: opts.logger, waitMs: opts.waitMs, head: plan.head },
    );
    return new Failover(journal, plan, opts.clock, opts.logger);
  }

  /**
   * What a new leader does with the previous one's record (docs/cluster.md, failover rules 1 and 3): with resume
   * grace, restores from it and journals in turn; without (`graceMs` 0), nothing can be resumed,
   * so the record is cleared (clearJournal) and nothing is journaled: undefined.
   */
  static async forLeader(db: SharedDatabase, graceMs: number, opts: FailoverOptions): Promise<Failover | undefined> {
    if (graceMs === 0) {
      await clearJournal(db);
      return undefined;
    }
    return Failover.open(db, opts);
  }

  /**
   * The new leader's lock core and sessions, before anyone is served: recorded sessions become
   * dropped ones within their resume grace (the grace window starts here), their restorable
   * locks held for them; what is not restored leaves the record; journaling starts.
   */
  start(locks: LockManager, sessions: SessionRegistry): void {
    this.locks = locks;
    this.unresumed = applyRestore(this.plan, locks, sessions);
    for (const { lock } of this.plan.dropped) this.journal.drop(lock.sessionId, lock.resource);
    this.journal.attach(locks, sessions);
    const restored = [...this.plan.locks.values()].reduce((n, ls) => n + ls.length, 0);
    if (this.plan.sessions.length > 0 || this.plan.dropped.length > 0) {
      const dropped: Record<string, number> = {};
      for (const { reason } of this.plan.dropped) dropped[reason] = (dropped[reason] ?? 0) + 1;
      this.logger.info(
        { sessions: this.plan.sessions.length, restored, dropped },
        'failover: recorded sessions may resume; their locks are held for them meanwhile',
      );
    }
  }

  /**
   * A resume: the first time for a session the previous leader had (its hello lists `restored`,
   * what the session holds once this returns), the locks recorded for it that were not given
   * back, and why (`notRestored`); else undefined. Those whose lease ended while they were held
   * for it are released here (restore.ts, settleResumed).
   */
  takeBack(sessionId: string): NotRestored[] | undefined {
    if (!this.unresumed.delete(sessionId)) return undefined;
    const locks = this.locks;
    const planned = this.plan.locks.get(sessionId);
    if (locks !== undefined && planned !== undefined) {
      const { givenBack, expired } = settleResumed(planned, locks.holding(sessionId), this.clock.now());
      for (const p of givenBack) locks.endLeaseAt(sessionId, p.resource, p.givenBackBefore);
      const release = expired.filter((p) => locks.grantOf(sessionId, p.resource)?.fence === p.fence);
      if (release.length > 0)
        locks.release(
          sessionId,
          release.map((p) => p.resource),
        );
      this.plan.locks.set(sessionId, givenBack);
      this.plan.dropped.push(...expired.map((p) => ({ lock: p.recorded, reason: 'expired' as const })));
    }
    return this.plan.dropped.flatMap(({ lock, reason }) =>
      lock.sessionId === sessionId && reason !== 'session-left'
        ? [{ resource: lock.resource, mode: lock.mode, fence: lock.fence, reason: WIRE_REASON[reason] }]
        : [],
    );
  }

  /** A resume that was refused after takeBack: the session's next resume is told what it got back. */
  putBack(sessionId: string): void {
    this.unresumed.add(sessionId);
  }

  /** Writes what is left to write; the leader is stopping. */
  close(): Promise<void> {
    return this.journal.close();
  }
}

/**
 * Why a lock was not restored, as its holder is told (docs/cluster-failover.md, "What is restored,
 * exactly"): a record that lost to a newer one and one older than the last committed edit both
 * mean another grant came after it. A session that left never resumes to hear of it.
 */
const WIRE_REASON: Record<Exclude<DropReason, 'session-left'>, NotRestored['reason']> = {
  expired: 'expired',
  superseded: 'fence-moved',
  'stale-fence': 'fence-moved',
  'resource-gone': 'resource-gone',
};

/**
 * Cluster mode with resume grace off: nothing can be resumed, so nothing is journaled; a record
 * left from an earlier run must not be restored by a later leader, after this one granted locks
 * it never recorded. Behind the lease check like every write of a leader (docs/cluster.md, rule 7):
 * a deposed leader clears nothing its successor recorded.
 */
export async function clearJournal(db: SharedDatabase): Promise<void> {
  await db.write(async (client) => {
    await client.query('DELETE FROM cluster_locks');
    await client.query('DELETE FROM cluster_sessions');
  });
}
