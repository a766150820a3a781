import type { Logger } from 'pino';
import type { Clock, Grant, LockManager, SessionRegistry } from '../concurrency/index.ts';
import { LockstepError } from '../protocol/errors.ts';
import type { Resource } from '../protocol/resource.ts';
import { compact, type JournalRecord, type JournalStore } from './journal-batch.ts';

/** Queued records beyond which only the last of each session and lock is kept (see compact). */
const COMPACT_AT = 10_000;

/** Wait before writing again after a failed commit when the store names no time. */
const RETRY_MS = 1_000;

/** What a refused lock change tells its caller to wait before asking again. */
const REFUSED_RETRY_MS = 1_000;

type Unnumbered = JournalRecord extends infer R ? (R extends JournalRecord ? Omit<R, 'seq'> : never) : never;

export interface JournalOptions {
  clock: Clock;
  logger: Logger;
  /** The last record number in the database (cluster_journal_head): this leader numbers on from it. */
  head: number;
  /** How long a reply waits for its record before it is refused (docs/cluster.md: the lease ttl). */
  waitMs: number;
}

interface Waiter {
  seq: number;
  deadline: number;
  resolve: () => void;
  reject: (err: LockstepError) => void;
}

/**
 * The leader's record of its sessions and locks in PostgreSQL, for the next leader to restore,
 * written by group commit (docs/cluster.md, "What is durable when"): the lock core stays
 * synchronous and numbers its changes here; whenever records are pending and no commit is in
 * flight, one starts with everything pending (the changes of the same turn of the event loop go
 * together), and what is recorded while it is in flight goes into the next. Committed records
 * are always a prefix in number order: `committed` is the last of it. Whoever tells of a change
 * waits for its number first (`durable`), so that nothing is announced that a crash can undo.
 *
 * A commit that fails is tried again (the database away: after its backoff); one PostgreSQL
 * refuses for its data (SQLSTATE classes 22 and 23) is written again record by record, and a
 * record that cannot be written becomes the end of that lock in the record, so that one bad
 * record never stops the journal and a lock that was not recorded is never restored.
 */
export class LockJournal {
  private seq: number;
  private confirmed: number;
  /** Records after `confirmed`, in order. */
  private pending: JournalRecord[] = [];
  /** The commit in flight, if any. */
  private writing: Promise<void> | undefined;
  private starting = false;
  private retry: unknown;
  private closed = false;
  /** Queued records beyond which they are compacted (the database is slow or away). */
  private compactAt = COMPACT_AT;
  /** Replies waiting for their records, in the order they came (so with growing seq and deadline). */
  private readonly waiters: Waiter[] = [];
  private waitTimer: unknown;
  private readonly listeners: Array<() => void> = [];

  constructor(
    private readonly store: JournalStore,
    private readonly opts: JournalOptions,
  ) {
    this.seq = opts.head;
    this.confirmed = opts.head;
  }

  /** The number of the last change recorded. */
  get head(): number {
    return this.seq;
  }

  /** Every change up to this number is committed. */
  get committed(): number {
    return this.confirmed;
  }

  /** Records from now on every session that joins or leaves and every change of a lock. */
  attach(locks: LockManager, sessions: SessionRegistry): void {
    sessions.on('joined', (s) => {
      const secretDigest = sessions.secretDigestOf(s.id);
      // Only a session with a resume secret can take anything back; the journal runs with grace on.
      if (secretDigest !== undefined)
        this.add({ kind: 'joined', sessionId: s.id, name: s.name, role: s.role, secretDigest });
    });
    sessions.on('left', ({ session }) => this.add({ kind: 'left', sessionId: session.id }));
    const lease = (sessionId: string, gs: readonly Grant[]) => {
      for (const g of gs) this.held(sessionId, g, locks.leaseOf(sessionId, g.resource) ?? null);
    };
    locks.on('granted', ({ sessionId, grants }) => lease(sessionId, grants));
    locks.on('renewed', ({ sessionId, locks: gs }) => lease(sessionId, gs));
    locks.on('downgraded', ({ sessionId, locks: gs }) => {
      for (const g of gs) this.held(sessionId, g, null);
    });
    // An expiry is recorded as it is announced: its `expired` comes before its `released`, and
    // the lock.expired push waits for the number current when it is made.
    locks.on('expired', ({ sessionId, locks: gs }) => {
      for (const g of gs) this.drop(sessionId, g.resource);
    });
    locks.on('released', ({ sessionId, locks: gs, reason }) => {
      if (reason !== 'expired') for (const g of gs) this.drop(sessionId, g.resource);
    });
  }

  /** A recorded lock this leader did not restore: gone from the record too. */
  drop(sessionId: string, resource: Resource): void {
    this.add({ kind: 'dropped', sessionId, resource });
  }

  /**
   * Undefined when every change up to `seq` is committed; otherwise a promise that resolves once
   * it is, or rejects with STORE_UNAVAILABLE when that takes longer than the wait allowed.
   */
  durable(seq = this.seq): Promise<void> | undefined {
    if (seq <= this.confirmed) return undefined;
    return new Promise((resolve, reject) => {
      this.waiters.push({ seq, deadline: this.opts.clock.now() + this.opts.waitMs, resolve, reject });
      this.armWaitTimer();
    });
  }

  /** `fn` runs after every commit, with `committed` moved on. */
  onCommitted(fn: () => void): void {
    this.listeners.push(fn);
  }

  /**
   * Writes what is pending (best effort: the database may be gone), then stops: a reply still
   * waiting is refused, and nothing more is written.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.opts.clock.clearTimeout(this.retry);
    this.retry = undefined;
    await this.writing;
    if (this.pending.length > 0) {
      try {
        await this.store.write(this.pending, this.seq);
        this.confirm(this.seq);
      } catch (err) {
        this.opts.logger.warn({ err }, 'lock journal: last batch not written');
      }
    }
    this.opts.clock.clearTimeout(this.waitTimer);
    for (const w of this.waiters.splice(0)) w.reject(refused());
  }

  private held(sessionId: string, g: Grant, ttlMs: number | null): void {
    this.add({
      kind: 'held',
      sessionId,
      resource: g.resource,
      mode: g.mode,
      fence: g.fence,
      grantedAt: g.grantedAt,
      expiresAt: g.expiresAt,
      ttlMs,
      description: g.description,
    });
  }

  private add(record: Unnumbered): void {
    this.pending.push({ ...record, seq: ++this.seq } as JournalRecord);
    if (this.pending.length >= this.compactAt) {
      this.pending = compact(this.pending);
      // Compacted again only once it has doubled: amortized, however large the state is.
      this.compactAt = Math.max(COMPACT_AT, 2 * this.pending.length);
    }
    this.start();
  }

  /**
   * A commit starts at the end of this turn of the event loop, so that every change made in it
   * goes into one; not while one is in flight (its end starts the next) or a retry is waiting.
   */
  private start(): void {
    if (this.writing !== undefined || this.starting || this.retry !== undefined || this.closed) return;
    this.starting = true;
    setImmediate(() => {
      this.starting = false;
      this.commit();
    });
  }

  private commit(): void {
    if (this.writing !== undefined || this.closed || this.pending.length === 0) return;
    this.writing = this.write().finally(() => {
      this.writing = undefined;
      // Recorded after the loop's last look: start() refused while this commit was in flight.
      if (this.pending.length > 0) this.start();
    });
  }

  /**
   * Commits everything pending, then what was recorded meanwhile, until nothing is pending; after
   * a failure, tries again once the store's backoff (or RETRY_MS) has passed.
   */
  private async write(): Promise<void> {
    while (this.pending.length > 0 && !this.closed) {
      const batch = this.pending.slice();
      const upTo = this.seq;
      try {
        await this.store.write(batch, upTo);
        this.confirm(upTo);
      } catch (err) {
        const failed = isDataError(err) ? await this.oneByOne(batch).catch((e: unknown) => e) : err;
        if (failed === undefined) continue;
        this.opts.logger.warn({ err: failed }, 'lock journal: commit failed, trying again');
        if (this.closed) return;
        const after = failed instanceof LockstepError ? failed.retryAfterMs : undefined;
        this.retry = this.opts.clock.setTimeout(
          () => {
            this.retry = undefined;
            this.commit();
          },
          Math.max(1, after ?? RETRY_MS),
        );
        return;
      }
    }
  }

  /**
   * The batch again, one record per transaction: a record refused for its data is logged and
   * written as what it ends (a lock's hold becomes its drop: that lock will not be restored; a
   * session that cannot be recorded cannot be resumed), so that the journal goes on.
   */
  private async oneByOne(batch: readonly JournalRecord[]): Promise<undefined> {
    for (const record of batch) {
      if (record.seq <= this.confirmed) continue;
      try {
        await this.store.write([record], record.seq);
      } catch (err) {
        if (!isDataError(err)) throw err;
        this.opts.logger.error(
          { err, record: { kind: record.kind, sessionId: record.sessionId } },
          'lock journal: a record PostgreSQL refuses was left out; that lock or session will not be restored',
        );
        const instead: JournalRecord[] =
          record.kind === 'held'
            ? [{ seq: record.seq, kind: 'dropped', sessionId: record.sessionId, resource: record.resource }]
            : [];
        await this.store.write(instead, record.seq);
      }
      this.confirm(record.seq);
    }
    return undefined;
  }

  private confirm(upTo: number): void {
    if (upTo <= this.confirmed) return;
    this.confirmed = upTo;
    let n = 0;
    while (n < this.pending.length && this.pending[n]!.seq <= upTo) n++;
    this.pending.splice(0, n);
    let w = 0;
    while (w < this.waiters.length && this.waiters[w]!.seq <= upTo) this.waiters[w++]!.resolve();
    this.waiters.splice(0, w);
    for (const fn of this.listeners) fn();
  }

  /** One timer, for the first waiter's deadline: the later ones have later deadlines. */
  private armWaitTimer(): void {
    if (this.waitTimer !== undefined || this.waiters.length === 0) return;
    const { clock } = this.opts;
    this.waitTimer = clock.setTimeout(() => {
      this.waitTimer = undefined;
      const now = clock.now();
      while (this.waiters.length > 0 && this.waiters[0]!.deadline <= now) this.waiters.shift()!.reject(refused());
      this.armWaitTimer();
    }, this.waiters[0]!.deadline - clock.now());
  }
}

/** SQLSTATE classes 22 (data exception) and 23 (integrity constraint violation): the record, not the database. */
function isDataError(err: unknown): boolean {
  if (typeof err !== 'object' || err === null || !('code' in err)) return false;
  const code = String(err.code);
  return code.startsWith('22') || code.startsWith('23');
}

function refused(): LockstepError {
  return new LockstepError(
    'STORE_UNAVAILABLE',
    'the lock journal could not be written in time: the change was not made durable; retry later',
    {},
    REFUSED_RETRY_MS,
  );
}
