import type pg from 'pg';

/**
 * The PostgreSQL schema, versioned like the SQLite one (its own list: the dialects differ). The
 * version lives in lockstep_meta; migrations run on start in one transaction under an advisory
 * lock, so two nodes starting together migrate once, and a node older than the schema refuses to
 * start.
 */
export interface PgMigration {
  version: number;
  up(client: pg.ClientBase, now: number): Promise<void>;
}

// Append only: a released migration is never edited, the next change is a new entry.
export const PG_MIGRATIONS: readonly PgMigration[] = [
  {
    version: 1,
    async up(client, now) {
      await client.query(`
        CREATE TABLE programs (
          name text PRIMARY KEY,
          revision integer NOT NULL CHECK (revision >= 0),
          next_function_id integer NOT NULL CHECK (next_function_id >= 1),
          created_at bigint NOT NULL
        );
        CREATE TABLE revisions (
          program text NOT NULL REFERENCES programs(name) ON DELETE CASCADE,
          revision integer NOT NULL CHECK (revision >= 1),
          at bigint NOT NULL,
          session_id text NOT NULL,
          session_name text NOT NULL,
          kind text NOT NULL CHECK (kind IN ('edit', 'undo', 'redo', 'restore')),
          ops text NOT NULL,
          op_count integer NOT NULL,
          undoes integer,
          redoes integer,
          checkpoint text,
          note text,
          PRIMARY KEY (program, revision)
        );
        CREATE TABLE function_versions (
          program text NOT NULL,
          function_id integer NOT NULL,
          version integer NOT NULL CHECK (version >= 1),
          revision integer NOT NULL,
          hash text NOT NULL,
          body text NOT NULL,
          PRIMARY KEY (program, function_id, version),
          FOREIGN KEY (program, revision) REFERENCES revisions(program, revision) ON DELETE CASCADE
        );
        CREATE INDEX function_versions_by_hash ON function_versions (program, function_id, hash, version);
        -- A row per function a revision changed; a NULL version means the function did not exist.
        CREATE TABLE revision_functions (
          program text NOT NULL,
          revision integer NOT NULL,
          function_id integer NOT NULL,
          before_version integer,
          after_version integer,
          PRIMARY KEY (program, revision, function_id),
          FOREIGN KEY (program, revision) REFERENCES revisions(program, revision) ON DELETE CASCADE
        );
        CREATE INDEX revision_functions_by_function ON revision_functions (program, function_id, revision);
        CREATE TABLE checkpoints (
          program text NOT NULL REFERENCES programs(name) ON DELETE CASCADE,
          name text NOT NULL,
          revision integer NOT NULL,
          at bigint NOT NULL,
          session_id text NOT NULL,
          session_name text NOT NULL,
          PRIMARY KEY (program, name)
        );
        -- No foreign key: a program deleted and created again must keep issuing higher tokens.
        CREATE TABLE fences (program text PRIMARY KEY, ceiling bigint NOT NULL);
      `);
      await client.query('INSERT INTO programs (name, revision, next_function_id, created_at) VALUES ($1, 0, 1, $2)', [
        'main',
        now,
      ]);
    },
  },
  {
    version: 2,
    async up(client) {
      // Per resource ('structure' or a function id), the fence of the last edit committed to it.
      await client.query(`CREATE TABLE resource_fences (
        program text NOT NULL,
        resource text NOT NULL,
        fence bigint NOT NULL,
        PRIMARY KEY (program, resource)
      )`);
    },
  },
  {
    version: 3,
    async up(client) {
      // An edit's idempotency key and the result it answered, so that a retry gets it again.
      await client.query(`ALTER TABLE revisions ADD COLUMN edit_key text, ADD COLUMN edit_result text;
        CREATE UNIQUE INDEX revisions_by_key ON revisions (program, edit_key) WHERE edit_key IS NOT NULL;`);
    },
  },
  {
    version: 4,
    async up(client) {
      // Cluster leadership (docs/cluster.md): one row. epoch 0 and an expiry at -infinity mean no
      // leader yet. The expiry is in the database's clock; pids are the holder's backends, which
      // a node taking over ends. src/cluster/lease.ts owns every statement on it.
      await client.query(`CREATE TABLE lockstep_lease (
          id smallint PRIMARY KEY CHECK (id = 1),
          epoch bigint NOT NULL,
          term text NOT NULL,
          node_id text NOT NULL,
          url text,
          expires_at timestamptz NOT NULL,
          pids integer[] NOT NULL,
          taken_at timestamptz
        );
        INSERT INTO lockstep_lease (id, epoch, term, node_id, url, expires_at, pids)
          VALUES (1, 0, '', '', NULL, '-infinity', '{}');`);
    },
  },
  {
    version: 5,
    async up(client) {
      // The leader's sessions and locks as of its last journal batch (src/cluster/journal.ts), for
      // the next leader to restore. A state, not a log: a batch upserts and deletes rows, and
      // cluster_journal_head.seq names the last record applied, so that batches written by
      // concurrent transactions (an edit's and the timer's) apply each record once and in order.
      // Times are epoch ms of the database's clock. Resources are keyed as in resource_fences.
      await client.query(`CREATE TABLE cluster_journal_head (
          id boolean PRIMARY KEY DEFAULT true CHECK (id),
          seq bigint NOT NULL
        );
        INSERT INTO cluster_journal_head (id, seq) VALUES (true, 0);
        CREATE TABLE cluster_sessions (
          session_id text PRIMARY KEY,
          name text NOT NULL,
          role text NOT NULL CHECK (role IN ('agent', 'observer')),
          secret_sha256 bytea NOT NULL
        );
        CREATE TABLE cluster_locks (
          session_id text NOT NULL,
          program text NOT NULL,
          resource text NOT NULL,
          mode text NOT NULL CHECK (mode IN ('read', 'write')),
          fence bigint NOT NULL,
          granted_at bigint NOT NULL,
          expires_at bigint NOT NULL,
          ttl_ms bigint,
          description text,
          PRIMARY KEY (session_id, program, resource)
        );`);
    },
  },
  {
    version: 6,
    async up(client) {
      // The start time of each backend in pids (pg_stat_activity.backend_start, same order), so
      // that a new leader ends only the backends recorded, never another that got a recorded pid
      // since (docs/cluster.md, rule 7). Pids recorded before this version have no start time to
      // match: they are dropped, and a leader taking over at this migration ends none of them.
      // The check also stops a node older than this version from leading on it: its takeover
      // writes pids alone.
      await client.query(`UPDATE lockstep_lease SET pids = '{}';
        ALTER TABLE lockstep_lease ADD COLUMN pid_starts timestamptz[] NOT NULL DEFAULT '{}',
          ADD CONSTRAINT lockstep_lease_backends CHECK (cardinality(pids) = cardinality(pid_starts));`);
    },
  },
  {
    version: 7,
    async up(client) {
      // Edit keys belong to the session that sent them (docs/protocol.md, edit.apply): unique per
      // session, so that two sessions' keys never answer each other's edits.
      await client.query(`DROP INDEX revisions_by_key;
        CREATE UNIQUE INDEX revisions_by_session_key ON revisions (program, session_id, edit_key)
          WHERE edit_key IS NOT NULL;`);
    },
  },
  {
    version: 8,
    async up(client) {
      // Per path, the content its last write lock holder recorded on release (docs/protocol.md,
      // lock.release `contents`), for paths.check to name a stale base.
      await client.query(`CREATE TABLE path_contents (
        program text NOT NULL REFERENCES programs(name) ON DELETE CASCADE,
        path text NOT NULL,
        blob text NOT NULL,
        commit_id text,
        session_id text NOT NULL,
        session_name text NOT NULL,
        at bigint NOT NULL,
        PRIMARY KEY (program, path)
      )`);
    },
  },
  {
    version: 9,
    async up(client) {
      // The journal's batch as one statement (src/cluster/journal-batch.ts): the lease check and
      // every row of the batch in one call, so that a lock change waits for one round trip and
      // the commit instead of six (BEGIN, check, three statements, COMMIT). The check is rule 3's
      // (docs/cluster.md): the lease row FOR KEY SHARE, epoch and term compared, in the
      // statement's own transaction; a mismatch raises SQLSTATE LSL01 (LEASE_MOVED_SQLSTATE),
      // which rolls the batch back. The statements run in the order the batch's rows must be applied. Times
      // come as offsets from the leader's clock and are stored on the database's.
      await client.query(`CREATE FUNCTION lockstep_journal_write(
          p_epoch bigint, p_term text, p_head bigint,
          j_ids text[], j_names text[], j_roles text[], j_digests text[],
          d_sessions text[], d_programs text[], d_resources text[],
          h_sessions text[], h_programs text[], h_resources text[], h_modes text[], h_fences bigint[],
          h_granted bigint[], h_expires bigint[], h_ttls bigint[], h_descriptions text[],
          left_ids text[]
        ) RETURNS void LANGUAGE plpgsql AS $fn$
        DECLARE
          lease record;
          now_ms bigint;
        BEGIN
          SELECT epoch, term INTO lease FROM lockstep_lease WHERE id = 1 FOR KEY SHARE;
          IF NOT FOUND OR lease.epoch IS DISTINCT FROM p_epoch OR lease.term IS DISTINCT FROM p_term THEN
            RAISE EXCEPTION 'the lease is no longer held by epoch % term %', p_epoch, p_term USING ERRCODE = 'LSL01';
          END IF;
          IF cardinality(j_ids) > 0 THEN
            INSERT INTO cluster_sessions (session_id, name, role, secret_sha256)
              SELECT t.id, t.name, t.role, decode(t.digest, 'hex')
              FROM unnest(j_ids, j_names, j_roles, j_digests) AS t(id, name, role, digest)
              ON CONFLICT (session_id) DO NOTHING;
          END IF;
          IF cardinality(d_sessions) > 0 THEN
            DELETE FROM cluster_locks l USING unnest(d_sessions, d_programs, d_resources) AS t(s, p, r)
              WHERE l.session_id = t.s AND l.program = t.p AND l.resource = t.r;
          END IF;
          IF cardinality(h_sessions) > 0 THEN
            now_ms := (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
            INSERT INTO cluster_locks AS l (session_id, program, resource, mode, fence, granted_at, expires_at, ttl_ms, description)
              SELECT t.s, t.p, t.r, t.mode, t.fence, now_ms + t.granted, now_ms + t.expires, t.ttl, t.description
              FROM unnest(h_sessions, h_programs, h_resources, h_modes, h_fences, h_granted, h_expires, h_ttls,
                          h_descriptions) AS t(s, p, r, mode, fence, granted, expires, ttl, description)
              ON CONFLICT (session_id, program, resource) DO UPDATE SET mode = excluded.mode, fence = excluded.fence,
                granted_at = excluded.granted_at, expires_at = excluded.expires_at,
                ttl_ms = coalesce(excluded.ttl_ms, l.ttl_ms), description = excluded.description;
          END IF;
          IF cardinality(left_ids) > 0 THEN
            DELETE FROM cluster_locks WHERE session_id = ANY(left_ids);
            DELETE FROM cluster_sessions WHERE session_id = ANY(left_ids);
          END IF;
          UPDATE cluster_journal_head SET seq = p_head;
        END
        $fn$`);
    },
  },
  {
    version: 10,
    async up(client) {
      // A blob may be null: the holder deleted the path (docs/protocol.md, lock.release `contents`).
      await client.query('ALTER TABLE path_contents ALTER COLUMN blob DROP NOT NULL');
    },
  },
];

export const PG_SCHEMA_VERSION = PG_MIGRATIONS.reduce((max, m) => Math.max(max, m.version), 0);

/** Any constant shared by every Lockstep node: the key of the migration advisory lock. */
const MIGRATION_LOCK = 0x4c6f636b;

/** The version whose migration creates the leadership lease (lockstep_lease). */
const LEASE_VERSION = 4;
/** The version from which the lease records its holder's backends with their start times (pid_starts). */
const BACKEND_STARTS_VERSION = 6;

/**
 * Takes the migration lock and reads the schema's version (0: none yet), or the problem to refuse
 * start-up with. Inside the caller's transaction.
 */
async function lockedVersion(client: pg.ClientBase): Promise<{ version: number } | { problem: string }> {
  await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
  await client.query('CREATE TABLE IF NOT EXISTS lockstep_meta (key text PRIMARY KEY, value text NOT NULL)');
  const row = await client.query<{ value: string }>("SELECT value FROM lockstep_meta WHERE key = 'schema_version'");
  const version = row.rows[0] === undefined ? 0 : Number(row.rows[0].value);
  if (version > PG_SCHEMA_VERSION) {
    return {
      problem: `its schema version ${version} is newer than this server supports (${PG_SCHEMA_VERSION}); use a newer Lockstep`,
    };
  }
  if (version === 0) {
    const tables = await client.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'lockstep_meta'",
    );
    if ((tables.rows[0]?.n ?? 0) > 0)
      return { problem: 'holds tables but no Lockstep schema version: not a Lockstep store' };
  }
  return { version };
}

/**
 * A cluster node's start: creates the schema when there is none, or migrates one from before the
 * lease existed (no leader can be running on it). A later migration waits for this node to take
 * the lease over, which runs it under the lease row's lock (src/cluster/lease.ts): a standby never
 * migrates the schema under a running leader (docs/cluster.md, rule 7). Returns a problem to
 * refuse start-up with, or whether the lease records its holder's backends with their start times
 * (so that a stuck holder's can be ended). Inside the caller's transaction.
 */
export async function migrateBeforeLease(
  client: pg.ClientBase,
  now: number,
): Promise<{ problem: string } | { backendStarts: boolean }> {
  const found = await lockedVersion(client);
  if ('problem' in found) return found;
  if (found.version >= LEASE_VERSION) return { backendStarts: found.version >= BACKEND_STARTS_VERSION };
  const problem = await migrate(client, now);
  return problem === undefined ? { backendStarts: true } : { problem };
}

/**
 * Creates or migrates the schema. Returns a problem to refuse start-up with, or undefined.
 * Runs inside the caller's transaction.
 */
export async function migrate(client: pg.ClientBase, now: number): Promise<string | undefined> {
  const found = await lockedVersion(client);
  if ('problem' in found) return found.problem;
  const version = found.version;
  for (const migration of PG_MIGRATIONS) {
    if (migration.version <= version) continue;
    await migration.up(client, now);
  }
  await client.query(
    `INSERT INTO lockstep_meta (key, value) VALUES ('schema_version', $1), ('opened_at', $2)
     ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
    [String(PG_SCHEMA_VERSION), String(now)],
  );
  return undefined;
}
