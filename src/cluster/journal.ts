import type pg from 'pg';
import type { Logger } from 'pino';
import type { Clock, Grant, LockManager, SessionRegistry } from '../concurrency/index.ts';
import { LockstepError } from '../protocol/errors.ts';
import type { Resource } from '../protocol/resource.ts';
import type { SharedDatabase } from '../service/index.ts';
import { applyBatch, compact, fold, type JournalRecord } from './journal-batch.ts';

/** Queued records beyond which only the last of each session and lock is kept (see compact). */
const COMPACT_AT = 10_000;

/** Wait before writing again after a failed batch when the store names no time. */
const RETRY_MS = 1_000;

type Unnumbered = JournalRecord extends infer R ? (R extends JournalRecord ? Omit<R, 'seq'> : never) : never;

export interface JournalOptions {
  clock: Clock;
  logger: Logger;
  /** A change reaches the database within this many ms (docs/cluster-failover.md: default 50). */
  batchMs: number;
  /** The last record number in the database (cluster_journal_head): this leader numbers on from it. */
  head: number;
}

/**
 * The leader's record of its sessions and locks in PostgreSQL, for the next leader to restore.
 * The lock core stays synchronous and never waits for it: its events are numbered and queued
 * here, and written in the background within `batchMs`, each batch in one transaction. Every
 * revision's transaction writes what is queued first (SharedDatabase.beforeEveryCommit), so an
 * edit never becomes durable ahead of the lock changes before it. Session records are waited for
 * (sync) before a hello is answered: a session an agent was told of exists for the next leader.
 *
 * Batches may be written by two transactions at once (the timer's and an edit's). Each takes the
 * head row first (FOR UPDATE), so they run one after the other, and writes only the records after
 * the head: every record is applied once and in order, whichever commits first.
 */
export class LockJournal {
  private seq: number;
  /** Every record up to this number is in the database. */
  private confirmed: number;
  /** Records after `confirmed`, in order. */
  private pending: JournalRecord[] = [];
  private timer: unknown;
  private writing: Promise<void> | undefined;
  private closed = false;
  /** Queued records beyond which they are compacted (the database is slow or away). */
  private compactAt = COMPACT_AT;

  constructor(
    private readonly db: SharedDatabase,
    private readonly opts: JournalOptions,
  ) {
    this.seq = opts.head;
    this.confirmed = opts.head;
    db.beforeEveryCommit((client) => this.writeIn(client));
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
    locks.on('released', ({ sessionId, locks: gs }) => {
      for (const g of gs) this.drop(sessionId, g.resource);
    });
  }

  /** A recorded lock this leader did not restore: gone from the record too. */
  drop(sessionId: string, resource: Resource): void {
    this.add({ kind: 'dropped', sessionId, resource });
  }

  /** Resolves once everything recorded so far is in the database; rejects if a write fails. */
  async sync(): Promise<void> {
    const target = this.seq;
    while (this.confirmed < target) {
      this.writing ??= this.write().finally(() => {
        this.writing = undefined;
      });
      await this.writing;
    }
  }

  /** Writes what is queued (best effort: the database may be gone), stops the timer, leaves the edits' commits. */
  async close(): Promise<void> {
    this.closed = true;
    this.opts.clock.clearTimeout(this.timer);
    this.timer = undefined;
    await this.sync().catch((err: unknown) => this.opts.logger.warn({ err }, 'lock journal: last batch not written'));
    this.db.beforeEveryCommit(undefined);
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
    this.schedule(this.opts.batchMs);
  }

  private schedule(ms: number): void {
    if (this.timer !== undefined || this.closed) return;
    this.timer = this.opts.clock.setTimeout(() => {
      this.timer = undefined;
      this.sync().catch((err: unknown) => {
        this.opts.logger.warn({ err }, 'lock journal: batch not written, retrying');
        const retry = err instanceof LockstepError ? err.retryAfterMs : undefined;
        this.schedule(Math.max(this.opts.batchMs, retry ?? RETRY_MS));
      });
    }, ms);
  }

  private async write(): Promise<void> {
    const committed = await this.db.write((client) => this.writeIn(client));
    committed();
  }

  /** Writes the queued records not yet in the database; the returned function is for after the commit. */
  private async writeIn(client: pg.PoolClient): Promise<() => void> {
    const upTo = this.seq;
    const batch = this.pending.slice();
    if (batch.length === 0) return () => undefined;
    const [row] = (await client.query<{ seq: number }>('SELECT seq FROM cluster_journal_head FOR UPDATE')).rows;
    const head = row?.seq ?? 0;
    const todo = batch.filter((r) => r.seq > head);
    if (todo.length > 0) {
      await applyBatch(client, fold(todo), this.opts.clock.now());
      await client.query('UPDATE cluster_journal_head SET seq = $1', [upTo]);
    }
    return () => this.confirm(upTo);
  }

  private confirm(upTo: number): void {
    if (upTo <= this.confirmed) return;
    this.confirmed = upTo;
    let n = 0;
    while (n < this.pending.length && this.pending[n]!.seq <= upTo) n++;
    this.pending.splice(0, n);
  }
}
