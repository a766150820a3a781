import pg from 'pg';
import { LockstepError } from '../protocol/errors.ts';

/** First and longest wait between attempts to reach a PostgreSQL that went away. */
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5_000;
/** A statement that takes longer holds an edit's locks pinned; bound it (docs/cluster.md, rule 5: the statement timeout). */
const STATEMENT_TIMEOUT_MS = 10_000;

// int8 (epoch milliseconds, counts) as numbers: every value the store keeps is far below 2^53.
const types = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === pg.types.builtins.INT8 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as never,
};

/**
 * Cluster mode (src/cluster sets it on the leader's store): every write transaction runs
 * `checkWrite` first, which throws to refuse the write when this node no longer leads; every new
 * connection waits for `connected` before its first use, and is not used if that fails (its
 * backend is recorded for the next leader to end, docs/cluster.md rule 7); `settings` (server
 * settings such as `-c tcp_user_timeout=5000`) and the client timeouts bound how long a dead peer
 * goes unnoticed.
 */
export interface WriteFence {
  checkWrite(client: pg.ClientBase): Promise<void>;
  /**
   * For a write that makes the check itself, in its one statement (writeChecked): the epoch and
   * term the lease row must hold, once this node's own deadline allows the write; throws when it
   * does not.
   */
  claim(): { epoch: number; term: string };
  /** That statement found the lease held by another term: the error it ends with (the node steps down). */
  moved(): Error;
  connected(client: pg.ClientBase): Promise<void>;
  settings: string;
  keepAliveInitialDelayMillis: number;
  queryTimeoutMs: number;
}

/**
 * SQLSTATE of a statement that checked the lease itself and found another term there
 * (lockstep_journal_write, pg-schema.ts migration 9): the write was rolled back.
 */
export const LEASE_MOVED_SQLSTATE = 'LSL01';

/**
 * The statement of a writeChecked: named, so that each connection parses and plans it once and
 * then only binds it. The journal runs it for every lock change, and an unnamed statement is
 * parsed again each time: measured alone on a durable local PostgreSQL (1,000 two-row batches,
 * three alternating rounds), the named one took p50 692-711 µs against 763-796 µs.
 */
export interface CheckedStatement {
  name: string;
  text: string;
}

/** The URL with its password masked, for messages and logs: credentials are never printed. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

/**
 * Errors that mean the database cannot be reached (rather than that a statement is wrong). The
 * client's read timeout (query_timeout: no answer in time) is one: the connection is in an unknown
 * state and is dropped, and the caller may ask again (with its key, for an edit).
 */
function isConnectionLoss(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const code = 'code' in err ? String(err.code) : '';
  if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03') return true;
  if (['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND'].includes(code)) return true;
  const message = err instanceof Error ? err.message : '';
  return /Connection terminated|connection timeout|Client has encountered a connection error|Query read timeout/i.test(
    message,
  );
}

/**
 * A pool of connections to one database that notices when the database goes away: requests then
 * fail at once with STORE_UNAVAILABLE (retryable) instead of piling up, until the next attempt,
 * spaced out with exponential backoff. Nothing here is about locks, which never wait on it.
 */
export class PgConnection {
  private readonly pool: pg.Pool;
  private failures = 0;
  private retryAt = 0;
  private closed = false;

  constructor(
    url: string,
    private readonly now: () => number,
    private readonly fence?: WriteFence,
  ) {
    this.pool = new pg.Pool({
      connectionString: url,
      max: 4,
      types,
      keepAlive: true,
      connectionTimeoutMillis: BACKOFF_MAX_MS,
      statement_timeout: STATEMENT_TIMEOUT_MS,
      // Durable on acknowledgement whatever the database's default; no transaction left open.
      // A fence's settings come last: the later of two equal settings wins.
      options: `-c synchronous_commit=on -c idle_in_transaction_session_timeout=${STATEMENT_TIMEOUT_MS}${
        fence === undefined ? '' : ` ${fence.settings}`
      }`,
      ...(fence === undefined
        ? {}
        : {
            keepAliveInitialDelayMillis: fence.keepAliveInitialDelayMillis,
            query_timeout: fence.queryTimeoutMs,
            // Awaited before the client is handed out; a failure ends it and fails the connect.
            onConnect: (client: pg.ClientBase) => fence.connected(client),
          }),
    });
    // An idle connection dying (server restart) is seen at its next use; do not crash on it here.
    this.pool.on('error', () => this.noteLoss());
  }

  async query<R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<R[]> {
    return this.use(async (client) => (await client.query<R>(text, values)).rows);
  }

  /** Runs `work` in one transaction; it commits only if `work` resolves. */
  async transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.use(async (client) => {
      await client.query('BEGIN');
      try {
        const result = await work(client);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  }

  /**
   * A change to the store: in one transaction behind the fence's check when there is a fence
   * (cluster mode), otherwise exactly `work` (a single statement needs no transaction of its own).
   */
  async write<T>(work: (client: pg.PoolClient) => Promise<T>, transaction = false): Promise<T> {
    const fence = this.fence;
    if (fence === undefined) return transaction ? this.transaction(work) : this.use(work);
    return this.transaction(async (client) => {
      await fence.checkWrite(client);
      return work(client);
    });
  }

  /**
   * One statement that checks the lease itself (rule 3 inside the statement's own transaction):
   * `text` takes the fence's epoch and term as $1 and $2, `values()` from $3 on, and raises
   * LEASE_MOVED_SQLSTATE when the row holds another term. One round trip where write() takes
   * four or more; cluster mode only, since the check is what it is for. The local check and the
   * values are taken once a connection is in hand, as write()'s are: a wait for one (all busy, or
   * a new one registering its backend) comes before them, not between them and the statement.
   */
  async writeChecked(statement: CheckedStatement, values: () => unknown[]): Promise<void> {
    const fence = this.fence;
    if (fence === undefined) throw new Error('writeChecked needs a write fence (cluster mode)');
    try {
      await this.use((client) => {
        const { epoch, term } = fence.claim();
        return client.query({ ...statement, values: [epoch, term, ...values()] });
      });
    } catch (err) {
      if (typeof err === 'object' && err !== null && 'code' in err && err.code === LEASE_MOVED_SQLSTATE)
        throw fence.moved();
      throw err;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  private async use<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const wait = this.retryAt - this.now();
    if (wait > 0) throw unavailable(wait);
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch {
      // Refused, unreachable, or not accepting connections: all the same to a caller.
      this.noteLoss();
      throw unavailable(this.retryAt - this.now());
    }
    let broken = false;
    // A backend ended under a checked-out client (a database restart) makes the client emit
    // 'error'; the pool listens only to idle clients, and an unheard 'error' ends the process.
    const lost = () => {
      broken = true;
    };
    client.on('error', lost);
    try {
      const result = await work(client);
      this.failures = 0;
      return result;
    } catch (err) {
      if (!isConnectionLoss(err)) throw err;
      broken = true;
      this.noteLoss();
      throw unavailable(this.retryAt - this.now());
    } finally {
      client.off('error', lost);
      client.release(broken);
    }
  }

  private noteLoss(): void {
    const backoff = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.failures);
    this.failures += 1;
    this.retryAt = this.now() + backoff;
  }
}

function unavailable(retryAfterMs: number): LockstepError {
  return new LockstepError('STORE_UNAVAILABLE', 'the program store cannot be reached; retry later', {}, retryAfterMs);
}
