import type pg from 'pg';
import { migrate } from '../service/index.ts';

// Every statement on the leadership lease (the one row of lockstep_lease, pg-schema.ts migration
// 4). Times are the database's: expiry is compared with clock_timestamp() there, never with a
// node's clock. Row locks, and why these modes:
//  - a leader's write transaction takes FOR KEY SHARE (checkWrite);
//  - a renewal or a backend's registration is an UPDATE of non-key columns (FOR NO KEY UPDATE),
//    which does not conflict with FOR KEY SHARE: renewals never wait behind edits;
//  - a takeover takes FOR UPDATE, which conflicts with both: it waits for every write transaction
//    of the old leader that had passed its check, and every later one sees the new epoch.

export interface LeaseState {
  epoch: number;
  term: string;
  nodeId: string;
  /** The holder's advertised URL; null before anyone led. */
  url: string | null;
  /** Left of the lease by the database clock, in ms; 0 once expired. */
  remainingMs: number;
}

/**
 * A backend of the holder as the lease row records it: its pid and its start time
 * (pg_stat_activity.backend_start, as PostgreSQL prints it), which together name one backend
 * even once the pid is reused.
 */
export interface Backend {
  pid: number;
  started: string;
}

/** This node's claim: who it is and the term it holds (or asks for). */
export interface Claim {
  nodeId: string;
  url: string;
  term: string;
}

interface Row {
  epoch: number;
  term: string;
  node_id: string;
  url: string | null;
  remaining_ms: number;
}

// Columns every schema version since the lease's has: a node reads the lease before its takeover
// migrates the schema (lockstep_lease's later columns are read only after that).
const COLUMNS = `epoch, term, node_id, url,
  CASE WHEN expires_at > clock_timestamp()
       THEN ceil(extract(epoch FROM expires_at - clock_timestamp()) * 1000)::float8 ELSE 0 END AS remaining_ms`;

function toState(row: Row): LeaseState {
  return {
    epoch: Number(row.epoch),
    term: row.term,
    nodeId: row.node_id,
    url: row.url,
    remainingMs: Number(row.remaining_ms),
  };
}

/** This backend as the lease row records it. */
const THIS_BACKEND = `(SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid())`;

/** The lease as committed, without locking it: what a standby watches. */
export async function readLease(client: pg.ClientBase): Promise<LeaseState> {
  const { rows } = await client.query<Row>(`SELECT ${COLUMNS} FROM lockstep_lease WHERE id = 1`);
  const row = rows[0];
  if (row === undefined) throw new Error('lockstep_lease has no row: the schema is not migrated');
  return toState(row);
}

export type TakeOver =
  | { kind: 'taken'; epoch: number; previous: LeaseState; backends: Backend[] }
  /** The lease has not expired: someone leads. */
  | { kind: 'held'; lease: LeaseState }
  /** The row stayed locked for lockTimeoutMs: a transaction of the holder is stuck on it. */
  | { kind: 'blocked' }
  /** The schema is newer than this node's: it may not lead (the problem says why). */
  | { kind: 'outdated'; problem: string };

/**
 * docs/cluster.md rule 1: takes the lease over if, and only if, it has expired by the database clock, in
 * one transaction that migrates the schema if it is older than this node's (rule 7: under the
 * lease row's lock, with no leader running), bumps the epoch and writes the new term, with this
 * connection's backend as the holder's first. `backends` are the previous holder's, to end once
 * this commits. `sending` is called just before the statement that sets the expiry goes out: the
 * lease runs from no earlier than that moment.
 */
export async function takeOver(
  client: pg.ClientBase,
  claim: Claim,
  ttlMs: number,
  lockTimeoutMs: number,
  sending: () => void,
): Promise<TakeOver> {
  await client.query('BEGIN');
  try {
    await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.round(lockTimeoutMs))}`);
    const { rows } = await client.query<Row>(`SELECT ${COLUMNS} FROM lockstep_lease WHERE id = 1 FOR UPDATE`);
    const previous = toState(rows[0] as Row);
    if (previous.remainingMs > 0) {
      await client.query('ROLLBACK');
      return { kind: 'held', lease: previous };
    }
    const problem = await migrate(client, Date.now());
    if (problem !== undefined) {
      await client.query('ROLLBACK');
      return { kind: 'outdated', problem };
    }
    const backends = await recordedBackends(client);
    sending();
    const updated = await client.query<{ epoch: number }>(
      `UPDATE lockstep_lease SET epoch = epoch + 1, term = $1, node_id = $2, url = $3,
         expires_at = clock_timestamp() + $4 * interval '1 millisecond',
         pids = ARRAY[pg_backend_pid()], pid_starts = ARRAY[${THIS_BACKEND}], taken_at = clock_timestamp()
       WHERE id = 1 RETURNING epoch`,
      [claim.term, claim.nodeId, claim.url, ttlMs],
    );
    await client.query('COMMIT');
    return { kind: 'taken', epoch: Number(updated.rows[0]?.epoch), previous, backends };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    if (isLockTimeout(err)) return { kind: 'blocked' };
    throw err;
  }
}

/** The holder's backends as the lease row records them (a schema of this node's version). */
export async function recordedBackends(client: pg.ClientBase): Promise<Backend[]> {
  const { rows } = await client.query<Backend>(
    `SELECT b.pid, b.started::text AS started FROM lockstep_lease l,
       unnest(l.pids, l.pid_starts) WITH ORDINALITY AS b(pid, started, n)
     WHERE l.id = 1 ORDER BY b.n`,
  );
  return rows;
}

/**
 * Ends backends of a holder whose lease has expired, so that none of its transactions can block
 * the next leader or outlive its lease (the lock it held is released with the backend). Only those
 * that are still the ones recorded (pid and start time), never a backend that got a recorded pid
 * since, and never this connection. Returns how many were ended.
 */
export async function terminate(client: pg.ClientBase, backends: readonly Backend[]): Promise<number> {
  if (backends.length === 0) return 0;
  const { rows } = await client.query<{ ended: number }>(
    `SELECT count(*) FILTER (WHERE pg_terminate_backend(a.pid))::int AS ended
     FROM pg_stat_activity a JOIN unnest($1::int[], $2::timestamptz[]) AS b(pid, started)
       ON a.pid = b.pid AND a.backend_start = b.started
     WHERE a.pid <> pg_backend_pid()`,
    [backends.map((b) => b.pid), backends.map((b) => b.started)],
  );
  return rows[0]?.ended ?? 0;
}

/**
 * Extends the lease by ttlMs from now (database clock) if this node still holds it; false when
 * another term holds it. The backends are left alone: a registration (below) is what prunes them.
 */
export async function renew(client: pg.ClientBase, epoch: number, term: string, ttlMs: number): Promise<boolean> {
  const { rowCount } = await client.query(
    `UPDATE lockstep_lease SET expires_at = clock_timestamp() + $3 * interval '1 millisecond'
     WHERE id = 1 AND epoch = $1 AND term = $2`,
    [epoch, term, ttlMs],
  );
  return rowCount === 1;
}

/** Gives the lease up at once (a leader shutting down): a standby takes over at its next look. */
export async function resign(client: pg.ClientBase, epoch: number, term: string): Promise<void> {
  await client.query(
    `UPDATE lockstep_lease SET expires_at = '-infinity', pids = '{}', pid_starts = '{}'
     WHERE id = 1 AND epoch = $1 AND term = $2`,
    [epoch, term],
  );
}

/**
 * Rule 7: records this connection's backend (pid and start time) among the holder's, so that the
 * next leader can end it; awaited on every new connection of a leader before its first statement
 * (a failure is a failed connection). Throws when `term` no longer holds the lease. Backends that
 * have ended since are dropped here, and only here: the row is locked before pg_stat_activity is
 * read, so every backend registered before is already running (a statement that read it first
 * and then waited for the row could drop one registered meanwhile).
 */
export async function registerBackend(client: pg.ClientBase, epoch: number, term: string): Promise<void> {
  await client.query('BEGIN');
  try {
    const held = await client.query(
      'SELECT 1 FROM lockstep_lease WHERE id = 1 AND epoch = $1 AND term = $2 FOR NO KEY UPDATE',
      [epoch, term],
    );
    if (held.rowCount !== 1) throw new Error(`the lease is no longer held by epoch ${epoch}: backend not registered`);
    await client.query(
      `WITH kept AS (
         SELECT b.pid, b.started, b.n FROM lockstep_lease l,
           unnest(l.pids, l.pid_starts) WITH ORDINALITY AS b(pid, started, n)
         WHERE l.id = 1 AND b.pid <> pg_backend_pid()
           AND EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = b.pid AND a.backend_start = b.started)
         UNION ALL SELECT pg_backend_pid(), ${THIS_BACKEND}, 9223372036854775807
       )
       UPDATE lockstep_lease SET (pids, pid_starts) =
         (SELECT array_agg(pid ORDER BY n), array_agg(started ORDER BY n) FROM kept)
       WHERE id = 1`,
    );
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/**
 * docs/cluster.md rule 3: the first statement of every write transaction of a leader. Holds the lease row
 * FOR KEY SHARE until the transaction ends, so no takeover can commit between this check and the
 * write's commit. True when this node's term still holds it.
 */
export async function holdsLease(client: pg.ClientBase, epoch: number, term: string): Promise<boolean> {
  const { rows } = await client.query<{ epoch: number; term: string }>(
    'SELECT epoch, term FROM lockstep_lease WHERE id = 1 FOR KEY SHARE',
  );
  const row = rows[0];
  return row !== undefined && Number(row.epoch) === epoch && row.term === term;
}

function isLockTimeout(err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'code' in err && err.code === '55P03';
}
