import type { Clock, LockManager, RestoredLock, Role, SessionRegistry } from '../concurrency/index.ts';
import { isPath, type LockMode, type Resource, resourceKey } from '../protocol/resource.ts';
import { claimedResource, type SharedDatabase } from '../service/index.ts';
import { resourceColumn } from './journal-batch.ts';

/**
 * How far a recorded time may be off on this leader's clock: the two leaders' clocks are compared
 * through the database's, each conversion off by a round trip at most. A recorded lease counts as
 * running until this long after its recorded expiry, by the later reckoning: nobody else is
 * granted its resource while its holder may still count on the lease it was told of, and its
 * holder is told that expiry, which this leader keeps (docs/cluster-failover.md, "What is
 * restored, exactly").
 */
export const SKEW_MARGIN_MS = 500;

export interface RecordedSession {
  id: string;
  name: string;
  role: Role;
  secretDigest: Buffer;
}

/** A row of cluster_locks, its times already on this leader's clock (see readJournal). */
export interface RecordedLock {
  sessionId: string;
  resource: Resource;
  mode: LockMode;
  fence: number;
  grantedAt: number;
  expiresAt: number;
  ttlMs: number | null;
  description: string | null;
}

/** What the previous leader left in the journal, read in one snapshot. */
export interface JournalState {
  /** The last record number written (cluster_journal_head). */
  head: number;
  /** This leader's clock when the state was read. */
  readAt: number;
  sessions: RecordedSession[];
  locks: RecordedLock[];
  /** Per resource, the fence of the last edit committed to it (resource_fences). */
  committedFence(resource: Resource): number | undefined;
}

export type DropReason = 'session-left' | 'superseded' | 'stale-fence' | 'resource-gone' | 'expired';

export interface RestorePlan {
  head: number;
  sessions: RecordedSession[];
  /** By session: the locks it gets back when it resumes (it holds them, absent, until then). */
  locks: Map<string, RestoredLock[]>;
  /** Recorded locks not restored, and why. */
  dropped: Array<{ lock: RecordedLock; reason: DropReason }>;
}

/**
 * Reads the journal in one REPEATABLE READ snapshot. Each recorded time is moved onto this
 * leader's clock: what was left of it by the database's clock, from this leader's clock when it
 * asked (taken before the query, so a time can only come out earlier). The skew margin is
 * planRestore's to apply.
 */
export async function readJournal(db: SharedDatabase, clock: Clock): Promise<JournalState> {
  const readAt = clock.now();
  return db.transaction(async (client) => {
    await client.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    const [head] = (
      await client.query<{ seq: number; now: number }>(
        'SELECT seq, (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now FROM cluster_journal_head',
      )
    ).rows;
    const dbNow = head?.now ?? 0;
    const toLocal = (dbTime: number) => readAt + (dbTime - dbNow);
    const sessions = await client.query<{ session_id: string; name: string; role: Role; secret_sha256: Buffer }>(
      'SELECT session_id, name, role, secret_sha256 FROM cluster_sessions ORDER BY session_id',
    );
    const locks = await client.query<{
      session_id: string;
      program: string;
      resource: string;
      mode: LockMode;
      fence: number;
      granted_at: number;
      expires_at: number;
      ttl_ms: number | null;
      description: string | null;
    }>(
      `SELECT session_id, program, resource, mode, fence, granted_at, expires_at, ttl_ms, description
       FROM cluster_locks ORDER BY program, resource, session_id`,
    );
    const fences = await client.query<{ program: string; resource: string; fence: number }>(
      `SELECT f.program, f.resource, f.fence FROM resource_fences f
       WHERE EXISTS (SELECT 1 FROM cluster_locks l WHERE l.program = f.program AND l.resource = f.resource)`,
    );
    const committed = new Map(fences.rows.map((f) => [`${f.program}\n${f.resource}`, f.fence]));
    return {
      head: head?.seq ?? 0,
      readAt,
      sessions: sessions.rows.map((s) => ({
        id: s.session_id,
        name: s.name,
        role: s.role,
        secretDigest: s.secret_sha256,
      })),
      locks: locks.rows.map((l) => ({
        sessionId: l.session_id,
        resource: claimedResource(l.program, l.resource),
        mode: l.mode,
        fence: l.fence,
        grantedAt: toLocal(l.granted_at),
        expiresAt: toLocal(l.expires_at),
        ttlMs: l.ttl_ms,
        description: l.description,
      })),
      committedFence: (r) => committed.get(`${r.program}\n${resourceColumn(r)}`),
    };
  });
}

/**
 * The checks of docs/cluster.md failover rule 3 (docs/cluster-failover.md), pure: a recorded lock is restored only if its session had
 * not left, it is its resource's newest state (of conflicting records the highest fence wins, so
 * two conflicting locks are never restored), its fence is at least the last one committed on the
 * resource, the resource still exists, and its lease could still be running (its recorded expiry
 * plus the skew margin has not passed). It keeps what was left of its lease by that reckoning.
 */
export function planRestore(state: JournalState, exists: (r: Resource) => boolean): RestorePlan {
  const live = new Set(state.sessions.map((s) => s.id));
  const plan: RestorePlan = { head: state.head, sessions: state.sessions, locks: new Map(), dropped: [] };
  const byResource = new Map<string, RecordedLock[]>();
  for (const lock of state.locks) {
    if (!live.has(lock.sessionId)) {
      plan.dropped.push({ lock, reason: 'session-left' });
      continue;
    }
    const key = resourceKey(lock.resource);
    const list = byResource.get(key) ?? [];
    list.push(lock);
    byResource.set(key, list);
  }
  for (const records of byResource.values()) {
    for (const { lock, newest } of newestState(records)) {
      const reason = !newest
        ? 'superseded'
        : !exists(lock.resource)
          ? 'resource-gone'
          : lock.fence < (state.committedFence(lock.resource) ?? 0)
            ? 'stale-fence'
            : lock.expiresAt + SKEW_MARGIN_MS <= state.readAt
              ? 'expired'
              : undefined;
      if (reason !== undefined) {
        plan.dropped.push({ lock, reason });
        continue;
      }
      const list = plan.locks.get(lock.sessionId) ?? [];
      list.push({
        resource: lock.resource,
        mode: lock.mode,
        fence: lock.fence,
        grantedAt: lock.grantedAt,
        expiresAt: lock.expiresAt + SKEW_MARGIN_MS,
        // Renewing without a ttl gives the lock's own lease; unknown, what was left of it.
        ttlMs: lock.ttlMs ?? lock.expiresAt + SKEW_MARGIN_MS - state.readAt,
        ...(lock.description === null ? {} : { description: lock.description }),
      });
      plan.locks.set(lock.sessionId, list);
    }
  }
  dropCrossedPaths(plan, state.locks);
  return plan;
}

/**
 * The same guard across the path hierarchy: two path locks of different sessions that conflict
 * (one path on or below the other, not both read) are never both restored; the higher fence wins.
 */
function dropCrossedPaths(plan: RestorePlan, recorded: readonly RecordedLock[]): void {
  const paths = [...plan.locks].flatMap(([sessionId, locks]) =>
    locks.flatMap((lock) => (isPath(lock.resource) ? [{ sessionId, lock, path: lock.resource.path }] : [])),
  );
  if (paths.length < 2) return;
  const kept: typeof paths = [];
  for (const p of paths.sort((a, b) => b.lock.fence - a.lock.fence)) {
    const crossed = kept.some(
      (k) =>
        k.sessionId !== p.sessionId &&
        k.lock.resource.program === p.lock.resource.program &&
        (k.lock.mode === 'write' || p.lock.mode === 'write') &&
        (k.path === p.path || k.path.startsWith(`${p.path}/`) || p.path.startsWith(`${k.path}/`)),
    );
    if (!crossed) {
      kept.push(p);
      continue;
    }
    const list = plan.locks.get(p.sessionId)!.filter((l) => l !== p.lock);
    if (list.length > 0) plan.locks.set(p.sessionId, list);
    else plan.locks.delete(p.sessionId);
    const record = recorded.find((r) => r.sessionId === p.sessionId && r.fence === p.lock.fence);
    if (record !== undefined) plan.dropped.push({ lock: record, reason: 'superseded' });
  }
}

/**
 * The records of one resource that make its newest state: the one with the highest fence and,
 * when that is a read lock, the other read locks (readers share); every other record is
 * superseded. A consistent journal has nothing to drop here; this is the guard against one that
 * is not (records that crossed), so that two conflicting locks are never restored.
 */
function newestState(records: RecordedLock[]): Array<{ lock: RecordedLock; newest: boolean }> {
  const top = records.reduce((a, b) => (b.fence > a.fence ? b : a));
  return records.map((lock) => ({
    lock,
    newest: lock === top || (top.mode === 'read' && lock.mode === 'read'),
  }));
}

/**
 * Puts the plan into a new leader's state before it serves: every recorded session as a dropped
 * one within its resume grace, holding (absent) the locks it gets back. Returns the sessions
 * that may resume, each to be told once what it got back.
 */
export function applyRestore(plan: RestorePlan, locks: LockManager, sessions: SessionRegistry): Set<string> {
  for (const s of plan.sessions) {
    sessions.adopt(s);
    const held = plan.locks.get(s.id);
    if (held !== undefined) locks.restore(s.id, held);
  }
  return new Set(plan.sessions.map((s) => s.id));
}
