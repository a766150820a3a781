import type pg from 'pg';

// Every statement on the leadership lease (the one row of lockstep_lease, pg-schema.ts migration
// 4). Times are the database's: expiry is compared with clock_timestamp() there, never with a
// node's clock. Row locks, and why these modes:
//  - a leader's write transaction takes FOR KEY SHARE (checkWrite);
//  - a renewal or a pid registration is an UPDATE of non-key columns (FOR NO KEY UPDATE), which
//    does not conflict with FOR KEY SHARE: renewals never wait behind edits;
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
  pids: number[];
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
  pids: number[];
}

const COLUMNS = `epoch, term, node_id, url, pids,
  CASE WHEN expires_at > clock_timestamp()
       THEN ceil(extract(epoch FROM expires_at - clock_timestamp()) * 1000)::float8 ELSE 0 END AS remaining_ms`;

function toState(row: Row): LeaseState {
  return {
    epoch: Number(row.epoch),
    term: row.term,
    nodeId: row.node_id,
    url: row.url,
    remainingMs: Number(row.remaining_ms),
    pids: row.pids,
  };
}

/** The lease as committed, without locking it: what a standby watches. */
export async function readLease(client: pg.ClientBase): Promise<LeaseState> {
  const { rows } = await client.query<Row>(`SELECT ${COLUMNS} FROM lockstep_lease WHERE id = 1`);
  const row = rows[0];
  if (row === undefined) throw new Error('lockstep_lease has no row: the schema is not migrated');
  return toState(row);
}

export type TakeOver =
  | { kind: 'taken'; epoch: number; previous: LeaseState }
  /** The lease has not expired: someone leads. */
  | { kind: 'held'; lease: LeaseState }
  /** The row stayed locked for lockTimeoutMs: a transaction of the holder is stuck on it. */
  | { kind: 'blocked' };

/**
 * Cluster rule 1: takes the lease over if, and only if, it has expired by the database clock, in
 * one transaction that bumps the epoch and writes the new term, with this connection's pid as the
 * holder's first backend. `sending` is called just before the statement that sets the expiry goes
 * out: the lease runs from no earlier than that moment.
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
    sending();
    const updated = await client.query<{ epoch: number }>(
      `UPDATE lockstep_lease SET epoch = epoch + 1, term = $1, node_id = $2, url = $3,
         expires_at = clock_timestamp() + $4 * interval '1 millisecond', pids = ARRAY[pg_backend_pid()],
         taken_at = clock_timestamp()
       WHERE id = 1 RETURNING epoch`,
      [claim.term, claim.nodeId, claim.url, ttlMs],
    );
    await client.query('COMMIT');
    return { kind: 'taken', epoch: Number(updated.rows[0]?.epoch), previous };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    if (isLockTimeout(err)) return { kind: 'blocked' };
    throw err;
  }
}

/**
 * Ends backends of a holder whose lease has expired, so that none of its transactions can block
 * the next leader or outlive its lease (the lock it held is released with the backend). Never this
 * connection. Returns how many were ended.
 */
export async function terminate(client: pg.ClientBase, pids: readonly number[]): Promise<number> {
  if (pids.length === 0) return 0;
  const { rows } = await client.query<{ ended: number }>(
    `SELECT count(*) FILTER (WHERE pg_terminate_backend(p))::int AS ended
     FROM unnest($1::int[]) AS p WHERE p <> pg_backend_pid()`,
    [pids],
  );
  return rows[0]?.ended ?? 0;
}

/**
 * Extends the lease by ttlMs from now (database clock) if this node still holds it; false when
 * another term holds it. Drops pids of backends that are gone, so the list stays short.
 */
export async function renew(client: pg.ClientBase, epoch: number, term: string, ttlMs: number): Promise<boolean> {
  const { rowCount } = await client.query(
    `UPDATE lockstep_lease SET expires_at = clock_timestamp() + $3 * interval '1 millisecond',
       pids = ARRAY(SELECT p FROM unnest(pids) AS p WHERE p IN (SELECT pid FROM pg_stat_activity))
     WHERE id = 1 AND epoch = $1 AND term = $2`,
    [epoch, term, ttlMs],
  );
  return rowCount === 1;
}

/** Gives the lease up at once (a leader shutting down): a standby takes over at its next look. */
export async function resign(client: pg.ClientBase, epoch: number, term: string): Promise<void> {
  await client.query(
    `UPDATE lockstep_lease SET expires_at = '-infinity', pids = '{}' WHERE id = 1 AND epoch = $1 AND term = $2`,
    [epoch, term],
  );
}

/**
 * Adds this connection's backend to the holder's pids, so that the next leader can end it. Sent
 * on every new store connection of a leader before anything else (PgConnection's WriteFence).
 */
export function registerBackend(client: pg.ClientBase, epoch: number, term: string): Promise<unknown> {
  return client.query(
    `UPDATE lockstep_lease SET pids = array_append(pids, pg_backend_pid())
     WHERE id = 1 AND epoch = $1 AND term = $2`,
    [epoch, term],
  );
}

/**
 * Cluster rule 3: the first statement of every write transaction of a leader. Holds the lease row
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
