import pg from 'pg';

/**
 * Settings of every connection a node uses for leadership, and of the leader's store connections
 * (docs/cluster.md, rule 1): a dead peer, in either direction, is noticed in about a lease, not in the
 * hours of the operating system's defaults.
 *  - keepalives and tcp_user_timeout: the database drops a connection whose client went silent;
 *  - idle_in_transaction_session_timeout: a transaction left open (a leader paused mid-edit)
 *    ends and lets go of the lease row;
 *  - statement_timeout and the client's query timeout: a statement never waits longer;
 *  - synchronous_commit: a takeover, a renewal or a registration is durable (and, with synchronous
 *    replication, on the replica) before the node acts on it, whatever the database's default
 *    (rule 7).
 */
export function connectionTuning(ttlMs: number): {
  settings: string;
  keepAliveInitialDelayMillis: number;
  queryTimeoutMs: number;
} {
  const seconds = Math.max(1, Math.ceil(ttlMs / 3000));
  const settings = [
    'synchronous_commit=on',
    `tcp_keepalives_idle=${seconds}`,
    `tcp_keepalives_interval=${seconds}`,
    'tcp_keepalives_count=3',
    `tcp_user_timeout=${Math.max(1000, ttlMs)}`,
    `idle_in_transaction_session_timeout=${Math.max(1000, 2 * ttlMs)}`,
  ];
  return {
    settings: settings.map((s) => `-c ${s}`).join(' '),
    keepAliveInitialDelayMillis: seconds * 1000,
    // Above the store's statement timeout (10 s): an edit's statement is bounded by that one.
    queryTimeoutMs: 15_000,
  };
}

/**
 * The one connection a node watches or renews its lease on, opened again after any failure. Its
 * statements are bounded by the lease: an answer later than that is worthless anyway.
 */
export class LeaseConnection {
  private client: pg.Client | undefined;
  private connecting: Promise<pg.Client> | undefined;

  constructor(
    private readonly url: string,
    private readonly ttlMs: number,
    /** Runs on each new connection before its first use; a failure is a failed connection. */
    private readonly connected: (client: pg.Client) => Promise<void>,
  ) {}

  /** Runs `work` on the connection; on failure the connection is dropped and the error thrown. */
  async use<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = await this.connect();
    try {
      return await work(client);
    } catch (err) {
      if (!isStatementError(err)) this.drop(client);
      throw err;
    }
  }

  async close(): Promise<void> {
    const client = this.client ?? (await this.connecting?.catch(() => undefined));
    this.client = undefined;
    this.connecting = undefined;
    await client?.end().catch(() => undefined);
  }

  private connect(): Promise<pg.Client> {
    if (this.client !== undefined) return Promise.resolve(this.client);
    this.connecting ??= (async () => {
      const tuning = connectionTuning(this.ttlMs);
      const client = new pg.Client({
        connectionString: this.url,
        keepAlive: true,
        keepAliveInitialDelayMillis: tuning.keepAliveInitialDelayMillis,
        connectionTimeoutMillis: this.ttlMs,
        query_timeout: this.ttlMs,
        statement_timeout: this.ttlMs,
        options: tuning.settings,
      });
      client.on('error', () => this.drop(client));
      try {
        await client.connect();
        await this.connected(client);
      } catch (err) {
        await client.end().catch(() => undefined);
        throw err;
      }
      this.client = client;
      return client;
    })().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private drop(client: pg.Client): void {
    if (this.client === client) this.client = undefined;
    void client.end().catch(() => undefined);
  }
}

/** The database refused a statement (its connection is still good), as opposed to a lost connection. */
function isStatementError(err: unknown): boolean {
  const code = sqlState(err);
  return code !== undefined && !code.startsWith('08') && !code.startsWith('57P');
}

/** The SQLSTATE of a database error, or undefined (a socket error's code is not one). */
function sqlState(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('code' in err)) return undefined;
  const code = String(err.code);
  return /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * What the log says of a lease statement that failed after `tookMs`: a connection ended by the
 * database (57P01, what a new leader does to the backends of the leader it took over from, rule 1),
 * an answer later than the lease, a refused statement, or a database that could not be reached.
 */
export function leaseFailure(err: unknown, tookMs: number, ttlMs: number): string {
  const code = sqlState(err);
  if (code === '57P01')
    return "lease: the database ended this node's connection (57P01, an administrator command: a new leader ends the connections of the one it took over from)";
  if (code === '57014' || tookMs >= ttlMs) return `lease: the database did not answer within the lease (${ttlMs} ms)`;
  if (code !== undefined) return `lease: the database refused the statement (${code})`;
  return 'lease: the database could not be reached';
}
