import type { Role } from '../concurrency/index.ts';
import type { CheckedStatement, SharedDatabase } from '../service/index.ts';
import { isPath, isStructure, type LockMode, type Resource } from '../protocol/resource.ts';

/**
 * One change the leader made, numbered in the order it made them. Times are the leader's clock
 * (epoch ms); they become the database's clock when written (see batchParams).
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

/**
 * A folded batch as the parameters of lockstep_journal_write (pg-schema.ts migration 9), after the
 * epoch and term the statement checks: the upTo head, then per kind of row one array per column.
 * A lock's times are sent as offsets from `localNow` and stored as offsets from the database's
 * clock at the write: the conversion is off by the write's own latency at most, which the
 * restore's skew margin covers.
 */
export function batchParams(b: FoldedBatch, upTo: number, localNow: number): unknown[] {
  const js = [...b.joined.values()];
  const ds = [...b.dropped.values()];
  const hs = [...b.held.values()];
  return [
    upTo,
    js.map((j) => j.sessionId),
    js.map((j) => j.name),
    js.map((j) => j.role),
    js.map((j) => j.secretDigest.toString('hex')),
    ds.map((d) => d.sessionId),
    ds.map((d) => d.resource.program),
    ds.map((d) => resourceColumn(d.resource)),
    hs.map((h) => h.sessionId),
    hs.map((h) => h.resource.program),
    hs.map((h) => resourceColumn(h.resource)),
    hs.map((h) => h.mode),
    hs.map((h) => h.fence),
    hs.map((h) => h.grantedAt - localNow),
    hs.map((h) => h.expiresAt - localNow),
    hs.map((h) => h.ttlMs),
    hs.map((h) => h.description ?? null),
    [...b.left.keys()],
  ];
}

/**
 * The call: the epoch and term ($1, $2) come from the write fence (PgConnection.writeChecked). Typed,
 * so that it names one function whatever else of that name the search path may hold.
 */
const JOURNAL_WRITE: CheckedStatement = {
  name: 'lockstep_journal_write',
  text: `SELECT lockstep_journal_write($1::bigint, $2::text, $3::bigint,
  $4::text[], $5::text[], $6::text[], $7::text[],
  $8::text[], $9::text[], $10::text[],
  $11::text[], $12::text[], $13::text[], $14::text[], $15::bigint[], $16::bigint[], $17::bigint[], $18::bigint[], $19::text[],
  $20::text[])`,
};

/** Where the journal's commits go: one transaction per batch (a fake in the unit tests). */
export interface JournalStore {
  /** Applies `records` and sets the head to `upTo`, in one transaction. */
  write(records: readonly JournalRecord[], upTo: number): Promise<void>;
}

/**
 * The journal's tables in PostgreSQL: each batch is one statement that checks the leader's lease
 * and writes every row in its own transaction (docs/cluster.md, rule 3), one round trip.
 */
export function journalTables(db: SharedDatabase, now: () => number): JournalStore {
  return {
    write: (records, upTo) => db.writeChecked(JOURNAL_WRITE, () => batchParams(fold(records), upTo, now())),
  };
}
