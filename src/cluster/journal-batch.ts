import type pg from 'pg';
import type { Role } from '../concurrency/index.ts';
import type { SharedDatabase } from '../service/index.ts';
import { isPath, isStructure, type LockMode, type Resource } from '../protocol/resource.ts';

/**
 * One change the leader made, numbered in the order it made them. Times are the leader's clock
 * (epoch ms); they become the database's clock when written (see applyBatch).
 */
export type JournalRecord =
  | { seq: number; kind: 'joined'; sessionId: string; name: string; role: Role; secretDigest: Buffer }
  | { seq: number; kind: 'left'; sessionId: string }
  | {
      seq: number;
      kind: 'held';
      sessionId: string;
      resource: Resource;
      mode: LockMode;
      fence: number;
      grantedAt: number;
      expiresAt: number;
      /** The lease a renewal without ttl gives; null: unchanged (a downgrade keeps the lease). */
      ttlMs: number | null;
      description: string | undefined;
    }
  | { seq: number; kind: 'dropped'; sessionId: string; resource: Resource };

type Held = Extract<JournalRecord, { kind: 'held' }>;
type Joined = Extract<JournalRecord, { kind: 'joined' }>;
type Left = Extract<JournalRecord, { kind: 'left' }>;
type Dropped = Extract<JournalRecord, { kind: 'dropped' }>;

/**
 * A resource as resource_fences and cluster_locks key it: 'structure', the function id in
 * decimal, or a path after a "/" (which no path starts with, docs/protocol.md "Paths").
 */
export function resourceColumn(r: Resource): string {
  if (isStructure(r)) return 'structure';
  return isPath(r) ? `/${r.path}` : String(r.function);
}

/**
 * What a run of records leaves behind: per session and per lock only the last change counts, so
 * a batch writes each row once however often it changed (a lock renewed every second while the
 * database was away is one row, not thousands). Applied in one transaction, the result is the
 * same as applying every record in order.
 */
export interface FoldedBatch {
  joined: Map<string, Joined>;
  left: Map<string, Left>;
  held: Map<string, Held>;
  dropped: Map<string, Dropped>;
}

export function fold(records: readonly JournalRecord[]): FoldedBatch {
  const out: FoldedBatch = { joined: new Map(), left: new Map(), held: new Map(), dropped: new Map() };
  for (const r of records) {
    if (r.kind === 'joined') {
      out.joined.set(r.sessionId, r);
    } else if (r.kind === 'left') {
      out.joined.delete(r.sessionId);
      out.left.set(r.sessionId, r);
    } else {
      const key = `${r.sessionId}\n${r.resource.program}\n${resourceColumn(r.resource)}`;
      if (r.kind === 'held') {
        const before = out.held.get(key);
        out.dropped.delete(key);
        out.held.set(key, { ...r, ttlMs: r.ttlMs ?? before?.ttlMs ?? null });
      } else {
        out.held.delete(key);
        out.dropped.set(key, r);
      }
    }
  }
  return out;
}

/**
 * The last record of each session and each lock, in order: what is waiting to be written while
 * the database is away stays as large as the state, not the traffic. Writing these instead of
 * all the records gives the same rows, also when the commit in flight at the compaction applies
 * some of them (the head then covers, per row, either its last record or none of its newer ones).
 */
export function compact(records: readonly JournalRecord[]): JournalRecord[] {
  const b = fold(records);
  return [...b.joined.values(), ...b.left.values(), ...b.held.values(), ...b.dropped.values()].sort(
    (x, y) => x.seq - y.seq,
  );
}

// The database's clock in epoch ms: every time the journal stores is on it, so that the next
// leader, on another machine, compares expiries with the same clock.
const DB_NOW = '(extract(epoch FROM clock_timestamp()) * 1000)::bigint';

/**
 * Writes a folded batch inside the caller's transaction. A lock's times are sent as offsets from
 * `localNow` and stored as offsets from the database's clock at the write: the conversion is off
 * by the write's own latency at most, which the restore's skew margin covers.
 */
export async function applyBatch(client: pg.PoolClient, b: FoldedBatch, localNow: number): Promise<void> {
  if (b.joined.size > 0) {
    const js = [...b.joined.values()];
    await client.query(
      `INSERT INTO cluster_sessions (session_id, name, role, secret_sha256)
       SELECT t.id, t.name, t.role, decode(t.digest, 'hex')
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS t(id, name, role, digest)
       ON CONFLICT (session_id) DO NOTHING`,
      [
        js.map((j) => j.sessionId),
        js.map((j) => j.name),
        js.map((j) => j.role),
        js.map((j) => j.secretDigest.toString('hex')),
      ],
    );
  }
  if (b.dropped.size > 0) {
    const ds = [...b.dropped.values()];
    await client.query(
      `DELETE FROM cluster_locks l USING unnest($1::text[], $2::text[], $3::text[]) AS t(s, p, r)
       WHERE l.session_id = t.s AND l.program = t.p AND l.resource = t.r`,
      [ds.map((d) => d.sessionId), ds.map((d) => d.resource.program), ds.map((d) => resourceColumn(d.resource))],
    );
  }
  if (b.held.size > 0) {
    const hs = [...b.held.values()];
    await client.query(
      `INSERT INTO cluster_locks AS l (session_id, program, resource, mode, fence, granted_at, expires_at, ttl_ms, description)
       SELECT t.s, t.p, t.r, t.mode, t.fence, ${DB_NOW} + t.granted, ${DB_NOW} + t.expires, t.ttl, t.description
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[],
                   $8::bigint[], $9::text[]) AS t(s, p, r, mode, fence, granted, expires, ttl, description)
       ON CONFLICT (session_id, program, resource) DO UPDATE SET mode = excluded.mode, fence = excluded.fence,
         granted_at = excluded.granted_at, expires_at = excluded.expires_at,
         ttl_ms = coalesce(excluded.ttl_ms, l.ttl_ms), description = excluded.description`,
      [
        hs.map((h) => h.sessionId),
        hs.map((h) => h.resource.program),
        hs.map((h) => resourceColumn(h.resource)),
        hs.map((h) => h.mode),
        hs.map((h) => h.fence),
        hs.map((h) => h.grantedAt - localNow),
        hs.map((h) => h.expiresAt - localNow),
        hs.map((h) => h.ttlMs),
        hs.map((h) => h.description ?? null),
      ],
    );
  }
  if (b.left.size > 0) {
    const ids = [...b.left.keys()];
    await client.query('DELETE FROM cluster_locks WHERE session_id = ANY($1::text[])', [ids]);
    await client.query('DELETE FROM cluster_sessions WHERE session_id = ANY($1::text[])', [ids]);
  }
}

/** Where the journal's commits go: one transaction per batch (a fake in the unit tests). */
export interface JournalStore {
  /** Applies `records` and sets the head to `upTo`, in one transaction. */
  write(records: readonly JournalRecord[], upTo: number): Promise<void>;
}

/** The journal's tables in PostgreSQL, written behind the leader's lease check as every write. */
export function journalTables(db: SharedDatabase, now: () => number): JournalStore {
  return {
    write: (records, upTo) =>
      db.write(async (client) => {
        if (records.length > 0) await applyBatch(client, fold(records), now());
        await client.query('UPDATE cluster_journal_head SET seq = $1', [upTo]);
      }),
  };
}
