import type pg from 'pg';
import { staleFence } from './fence-claims.ts';
import { type CheckedStatement, PgConnection, redactUrl, type WriteFence } from './pg-connection.ts';
import { migrate } from './pg-schema.ts';
import type { ServiceClock } from './service-types.ts';
import { StoreError } from './store.ts';
import {
  PATH_CONTENT_COLUMNS,
  type PathContentRow,
  toPathContent,
  type CheckpointRow,
  type RevisionRow,
  toCheckpoint,
  toRevision,
  toVersion,
  type VersionRow,
} from './store-rows.ts';
import type {
  CheckpointRecord,
  PathContentRecord,
  LoadedProgram,
  ProgramStore,
  RevisionChange,
  RevisionCommit,
  RevisionRecord,
  VersionRecord,
} from './store.ts';

/**
 * Opens a PostgreSQL program store: connects, then creates or migrates the schema (in cluster mode
 * behind the fence's lease check, as every statement of a leader: the takeover has migrated it
 * already, docs/cluster.md rule 7). Everything that makes the database unusable stops start-up
 * here, with the URL's password masked.
 */
export async function openPostgresStore(url: string, clock: ServiceClock, fence?: WriteFence): Promise<PostgresStore> {
  const shown = redactUrl(url);
  const db = new PgConnection(url, () => clock.now(), fence);
  try {
    const problem = await db.write((client) => migrate(client, clock.now()), true);
    if (problem !== undefined) throw new StoreError(shown, problem);
    return new PostgresStore(db);
  } catch (err) {
    await db.close();
    if (err instanceof StoreError) throw err;
    const why = err instanceof Error ? err.message : String(err);
    throw new StoreError(shown, `cannot be used (${why.replaceAll(url, shown)})`);
  }
}

const REVISION_COLUMNS = `r.revision, r.at, r.session_id, r.session_name, r.kind, r.op_count, r.undoes, r.redoes,
  r.checkpoint, r.note,
  ARRAY(SELECT f.function_id FROM revision_functions f WHERE f.program = r.program AND f.revision = r.revision
        ORDER BY f.function_id) AS functions`;

const VERSION_COLUMNS = 'v.function_id, v.version, v.revision, v.hash, v.body';

// Per function, its last change at or before the revision (one backward index probe each), then
// that version by primary key. With no ids given, every id the program ever handed out (ids are
// dense: 1 .. next_function_id - 1), so the cost never depends on the length of the history.
// Both lookups are LATERAL with a LIMIT (which keeps PostgreSQL from flattening them into a join)
// so that the plan stays per function even without statistics: left free, the planner scanned
// every version of the program first.
const STATE_AT = `SELECT ${VERSION_COLUMNS}
  FROM unnest(coalesce($3::int[], ARRAY(SELECT generate_series(1, p.next_function_id - 1)
                                          FROM programs p WHERE p.name = $1))) AS ids(function_id)
  CROSS JOIN LATERAL (SELECT f.after_version FROM revision_functions f
    WHERE f.program = $1 AND f.function_id = ids.function_id AND f.revision <= $2
    ORDER BY f.revision DESC LIMIT 1) last
  CROSS JOIN LATERAL (SELECT * FROM function_versions fv
    WHERE fv.program = $1 AND fv.function_id = ids.function_id AND fv.version = last.after_version LIMIT 1) v
  ORDER BY v.function_id`;

// A revision in one statement (one round trip inside its transaction): the program row advanced
// from the revision the service saw (and locked), the fences claimed (each stored fence comes
// back: one above the claim refuses the commit), the revision, its versions and changes. Nothing
// is inserted unless the program advanced.
const COMMIT = `WITH advanced AS (
    UPDATE programs SET revision = $2::int, next_function_id = $3::int
    WHERE name = $1 AND revision = $2::int - 1 RETURNING name
  ), claims AS (
    INSERT INTO resource_fences AS f (program, resource, fence)
    SELECT $1, t.resource, t.fence FROM unnest($4::text[], $5::bigint[]) AS t(resource, fence), advanced
    ON CONFLICT (program, resource) DO UPDATE SET fence = greatest(f.fence, excluded.fence)
    RETURNING f.resource, f.fence
  ), rev AS (
    INSERT INTO revisions (program, revision, at, session_id, session_name, kind, ops, op_count, undoes, redoes,
      checkpoint, note, edit_key, edit_result)
    SELECT $1, $2::int, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17 FROM advanced RETURNING revision
  ), versions AS (
    INSERT INTO function_versions (program, function_id, version, revision, hash, body)
    SELECT $1, t.id, t.version, $2::int, t.hash, t.body
    FROM unnest($18::int[], $19::int[], $20::text[], $21::text[]) AS t(id, version, hash, body), rev
    RETURNING 1
  ), changes AS (
    INSERT INTO revision_functions (program, revision, function_id, before_version, after_version)
    SELECT $1, $2::int, t.id, t.before, t.after FROM unnest($22::int[], $23::int[], $24::int[]) AS t(id, before, after), rev
    RETURNING 1
  )
  SELECT (SELECT count(*) FROM advanced)::int AS advanced,
    (SELECT coalesce(json_agg(json_build_object('resource', resource, 'fence', fence)), '[]'::json) FROM claims) AS fences`;

/**
 * The database of a PostgreSQL store as the cluster journal (src/cluster) uses it: transactions of
 * its own. Edits never write the journal: a lock change is committed before anyone hears of it,
 * so before any edit can be made under it (docs/cluster.md, "What is durable when").
 */
export interface SharedDatabase {
  transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T>;
  /** A transaction behind the leader's lease check in cluster mode, as every store write is. */
  write<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T>;
  /** One statement that makes the lease check itself (PgConnection.writeChecked): cluster mode. */
  writeChecked(statement: CheckedStatement, values: () => unknown[]): Promise<void>;
}

export class PostgresStore implements ProgramStore, SharedDatabase {
  constructor(private readonly db: PgConnection) {}

  /** Without the lease check: the new leader's reads of the journal while it opens its state. */
  transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.db.transaction(work);
  }

  /** A journal write: behind the leader's lease check in cluster mode, like every other write. */
  write<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.db.write(work, true);
  }

  writeChecked(statement: CheckedStatement, values: () => unknown[]): Promise<void> {
    return this.db.writeChecked(statement, values);
  }

  async load(): Promise<LoadedProgram[]> {
    const rows = await this.db.query<{ name: string; revision: number; next_function_id: number }>(
      'SELECT name, revision, next_function_id FROM programs ORDER BY name',
    );
    return Promise.all(
      rows.map(async (row) => ({
        name: row.name,
        revision: row.revision,
        nextFunctionId: row.next_function_id,
        functions: [...(await this.stateAt(row.name, row.revision)).values()],
      })),
    );
  }

  async createProgram(name: string, at: number): Promise<void> {
    await this.db.write((client) =>
      client.query('INSERT INTO programs (name, revision, next_function_id, created_at) VALUES ($1, 0, 1, $2)', [
        name,
        at,
      ]),
    );
  }

  async deleteProgram(name: string): Promise<void> {
    await this.db.write((client) => client.query('DELETE FROM programs WHERE name = $1', [name]));
  }

  async commit(c: RevisionCommit): Promise<void> {
    const r = c.record;
    const versions = c.changes.flatMap((ch) => (ch.after === null ? [] : [ch.after]));
    await this.db.write(async (client) => {
      const [row] = (
        await client.query<{ advanced: number; fences: Array<{ resource: string; fence: number }> }>(COMMIT, [
          c.program,
          r.revision,
          c.nextFunctionId,
          c.fences.map((f) => f.resource),
          c.fences.map((f) => f.fence),
          r.at,
          r.sessionId,
          r.sessionName,
          r.kind,
          JSON.stringify(c.ops),
          c.ops.length,
          r.undoes ?? null,
          r.redoes ?? null,
          r.checkpoint ?? null,
          r.note ?? null,
          c.keyed?.key ?? null,
          c.keyed === undefined ? null : JSON.stringify(c.keyed.result),
          versions.map((v) => v.functionId),
          versions.map((v) => v.version),
          versions.map((v) => v.hash),
          versions.map((v) => JSON.stringify(v.body)),
          c.changes.map((ch) => ch.functionId),
          c.changes.map((ch) => ch.beforeVersion),
          c.changes.map((ch) => ch.after?.version ?? null),
        ])
      ).rows;
      // Memory and the database must agree on the base revision (the row is locked from here on).
      if (row?.advanced !== 1)
        throw new Error(`program ${c.program} is not at revision ${r.revision - 1} in the store`);
      const stored = new Map(row.fences.map((f) => [f.resource, f.fence]));
      const stale = c.fences
        .map((claim) => ({ claim, current: stored.get(claim.resource) ?? claim.fence }))
        .filter(({ claim, current }) => current > claim.fence);
      if (stale.length > 0) throw staleFence(c.program, stale);
    }, true);
  }

  async revisions(program: string, after: number, limit: number): Promise<RevisionRecord[]> {
    const rows = await this.db.query<RevisionRow>(
      `SELECT ${REVISION_COLUMNS} FROM revisions r WHERE r.program = $1 AND r.revision > $2 ORDER BY r.revision LIMIT $3`,
      [program, after, limit],
    );
    return rows.map(toRevision);
  }

  async revision(program: string, revision: number): Promise<RevisionRecord | undefined> {
    const [row] = await this.db.query<RevisionRow>(
      `SELECT ${REVISION_COLUMNS} FROM revisions r WHERE r.program = $1 AND r.revision = $2`,
      [program, revision],
    );
    return row === undefined ? undefined : toRevision(row);
  }

  async revisionChanges(program: string, revision: number): Promise<RevisionChange[]> {
    const rows = await this.db.query<{
      function_id: number;
      before: VersionRow | null;
      after: VersionRow | null;
    }>(
      `SELECT f.function_id,
         (SELECT row_to_json(v) FROM function_versions v
           WHERE v.program = f.program AND v.function_id = f.function_id AND v.version = f.before_version) AS before,
         (SELECT row_to_json(v) FROM function_versions v
           WHERE v.program = f.program AND v.function_id = f.function_id AND v.version = f.after_version) AS after
       FROM revision_functions f WHERE f.program = $1 AND f.revision = $2 ORDER BY f.function_id`,
      [program, revision],
    );
    return rows.map((row) => ({
      functionId: row.function_id,
      before: row.before === null ? null : toVersion(row.before),
      after: row.after === null ? null : toVersion(row.after),
    }));
  }

  async version(program: string, functionId: number, version: number): Promise<VersionRecord | undefined> {
    const [row] = await this.db.query<VersionRow>(
      `SELECT ${VERSION_COLUMNS} FROM function_versions v WHERE v.program = $1 AND v.function_id = $2 AND v.version = $3`,
      [program, functionId, version],
    );
    return row === undefined ? undefined : toVersion(row);
  }

  async lastVersion(program: string, functionId: number): Promise<number> {
    const [row] = await this.db.query<{ last: number | null }>(
      'SELECT max(version) AS last FROM function_versions WHERE program = $1 AND function_id = $2',
      [program, functionId],
    );
    return row?.last ?? 0;
  }

  async latestWithHash(program: string, functionId: number, hash: string): Promise<VersionRecord | undefined> {
    const [row] = await this.db.query<VersionRow>(
      `SELECT ${VERSION_COLUMNS} FROM function_versions v WHERE v.program = $1 AND v.function_id = $2 AND v.hash = $3
       ORDER BY v.version DESC LIMIT 1`,
      [program, functionId, hash],
    );
    return row === undefined ? undefined : toVersion(row);
  }

  async changedBetween(program: string, from: number, to: number): Promise<number[]> {
    const rows = await this.db.query<{ function_id: number }>(
      `SELECT DISTINCT function_id FROM revision_functions WHERE program = $1 AND revision > $2 AND revision <= $3
       ORDER BY function_id`,
      [program, from, to],
    );
    return rows.map((row) => row.function_id);
  }

  async stateAt(
    program: string,
    revision: number,
    functionIds?: readonly number[],
  ): Promise<Map<number, VersionRecord>> {
    const rows = await this.db.query<VersionRow>(STATE_AT, [program, revision, functionIds ?? null]);
    return new Map(rows.map((row) => [row.function_id, toVersion(row)]));
  }

  async keyedResult(program: string, sessionId: string, key: string): Promise<unknown> {
    const [row] = await this.db.query<{ edit_result: string }>(
      'SELECT edit_result FROM revisions WHERE program = $1 AND session_id = $2 AND edit_key = $3',
      [program, sessionId, key],
    );
    return row === undefined ? undefined : JSON.parse(row.edit_result);
  }

  async addCheckpoint(program: string, cp: CheckpointRecord): Promise<boolean> {
    const { rows } = await this.db.write((client) =>
      client.query(
        `INSERT INTO checkpoints (program, name, revision, at, session_id, session_name) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT DO NOTHING RETURNING name`,
        [program, cp.name, cp.revision, cp.at, cp.sessionId, cp.sessionName],
      ),
    );
    return rows.length === 1;
  }

  async checkpoints(program: string): Promise<CheckpointRecord[]> {
    const rows = await this.db.query<CheckpointRow>(
      `SELECT name, revision, at, session_id, session_name FROM checkpoints WHERE program = $1
       ORDER BY revision, at, name COLLATE "C"`,
      [program],
    );
    return rows.map(toCheckpoint);
  }

  async checkpoint(program: string, name: string): Promise<CheckpointRecord | undefined> {
    const [row] = await this.db.query<CheckpointRow>(
      'SELECT name, revision, at, session_id, session_name FROM checkpoints WHERE program = $1 AND name = $2',
      [program, name],
    );
    return row === undefined ? undefined : toCheckpoint(row);
  }

  async recordContents(program: string, records: readonly PathContentRecord[]): Promise<void> {
    await this.db.write((client) =>
      client.query(
        `INSERT INTO path_contents (program, path, blob, commit_id, session_id, session_name, at)
         SELECT $1, t.path, t.blob, t.commit_id, t.session_id, t.session_name, t.at
         FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[])
           AS t(path, blob, commit_id, session_id, session_name, at)
         ON CONFLICT (program, path) DO UPDATE SET blob = excluded.blob, commit_id = excluded.commit_id,
           session_id = excluded.session_id, session_name = excluded.session_name, at = excluded.at`,
        [
          program,
          records.map((r) => r.path),
          records.map((r) => r.blob),
          records.map((r) => r.commit ?? null),
          records.map((r) => r.sessionId),
          records.map((r) => r.sessionName),
          records.map((r) => r.at),
        ],
      ),
    );
  }

  async contents(program: string, paths: readonly string[]): Promise<Map<string, PathContentRecord>> {
    const rows = await this.db.query<PathContentRow>(
      `SELECT ${PATH_CONTENT_COLUMNS} FROM path_contents WHERE program = $1 AND path = ANY($2::text[])`,
      [program, paths],
    );
    return new Map(rows.map((r) => [r.path, toPathContent(r)]));
  }

  /**
   * A new leader counts on above every fence anyone may hold: a block reserved by the previous
   * one is written asynchronously, so its journal's fences (cluster_locks) can be above it.
   */
  async fenceCeilings(): Promise<Map<string, number>> {
    const rows = await this.db.query<{ program: string; ceiling: number }>(
      `SELECT program, max(ceiling) AS ceiling FROM
        (SELECT program, ceiling FROM fences UNION ALL SELECT program, fence FROM resource_fences
         UNION ALL SELECT program, fence FROM cluster_locks) AS all_fences
       GROUP BY program`,
    );
    return new Map(rows.map((r) => [r.program, r.ceiling]));
  }

  async saveFenceCeiling(program: string, ceiling: number): Promise<void> {
    await this.db.write((client) =>
      client.query(
        `INSERT INTO fences (program, ceiling) VALUES ($1, $2)
         ON CONFLICT (program) DO UPDATE SET ceiling = greatest(fences.ceiling, excluded.ceiling)`,
        [program, ceiling],
      ),
    );
  }

  async backup(): Promise<void> {
    throw new Error('a PostgreSQL store is backed up with pg_dump (docs/operations.md), not by the server');
  }

  async ping(): Promise<boolean> {
    try {
      const [row] = await this.db.query<{ one: number }>('SELECT 1 AS one');
      return row?.one === 1;
    } catch {
      return false;
    }
  }

  close(): Promise<void> {
    return this.db.close();
  }
}
