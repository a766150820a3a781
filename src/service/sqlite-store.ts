import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { staleFence } from './fence-claims.ts';
import { MIGRATIONS, SCHEMA_VERSION } from './migrations.ts';
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

const SQLITE_PROBLEMS: Record<string, string> = {
  SQLITE_NOTADB: 'is not a database, or is corrupt',
  SQLITE_CORRUPT: 'is corrupt',
  SQLITE_CANTOPEN: 'cannot be opened (missing, unreadable, or a directory)',
  SQLITE_READONLY: 'is read-only',
  SQLITE_PERM: 'cannot be accessed (permission denied)',
  SQLITE_AUTH: 'cannot be accessed (permission denied)',
  SQLITE_BUSY: 'is held by another server (a store has one owner; stop that server or use another file)',
  SQLITE_IOERR: 'cannot be read or written (I/O error)',
  SQLITE_FULL: 'cannot be written (disk full)',
};

function problemOf(err: unknown): string {
  const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : '';
  const base = Object.keys(SQLITE_PROBLEMS).find((k) => code === k || code.startsWith(`${k}_`));
  return base === undefined ? 'cannot be opened' : (SQLITE_PROBLEMS[base] as string);
}

/**
 * Opens (creating when needed) and checks a SQLite program store. Everything that can make the
 * store unusable is tried here, including a write, so that a bad database stops start-up instead
 * of failing at the first edit.
 */
export function openSqliteStore(path: string, clock: ServiceClock): SqliteStore {
  if (path !== ':memory:') {
    try {
      mkdirSync(dirname(resolve(path)), { recursive: true });
    } catch (err) {
      throw new StoreError(path, 'its directory cannot be created', err);
    }
  }
  let db: Database.Database | undefined;
  try {
    // No busy wait: the only contender for the file is another server, and it never lets go.
    db = new Database(path, { timeout: 0 });
    // One store, one owner. The connection takes the file's exclusive lock now and keeps it for its
    // life (also in WAL mode, where the wal-index then lives in this process's memory); the OS drops
    // it when the process dies, so even a kill -9 leaves the file free for the next server.
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE; COMMIT');
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new StoreError(
        path,
        `its schema version ${version} is newer than this server supports (${SCHEMA_VERSION}); use a newer Lockstep`,
      );
    }
    const tables = db.prepare("SELECT count(*) FROM sqlite_schema WHERE type = 'table'").pluck().get() as number;
    if (version === 0 && tables > 0) {
      throw new StoreError(path, 'holds tables but no Lockstep schema version: not a Lockstep store');
    }
    const check = db.pragma('quick_check', { simple: true }) as string;
    if (check !== 'ok') throw new StoreError(path, `is corrupt (integrity check: ${check})`);
    const mode = db.pragma('journal_mode = WAL', { simple: true }) as string;
    if (path !== ':memory:' && mode !== 'wal')
      throw new StoreError(path, `cannot use write-ahead logging (journal mode ${mode})`);
    // FULL: an acknowledged edit must survive power loss, not only a crash of the process.
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    const now = clock.now();
    for (const migration of MIGRATIONS) {
      if (migration.version <= version) continue;
      const open = db;
      open.transaction(() => {
        migration.up(open, now);
        open.pragma(`user_version = ${migration.version}`);
      })();
    }
    db.prepare(
      "INSERT INTO store_meta (key, value) VALUES ('opened_at', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    ).run(String(now));
    return new SqliteStore(db);
  } catch (err) {
    db?.close();
    if (err instanceof StoreError) throw err;
    throw new StoreError(path, problemOf(err), err);
  }
}

/** SQLite hands the functions of a revision over as a JSON array. */
type SqliteRevisionRow = Omit<RevisionRow, 'functions'> & { functions: string };

function fromSqlite(row: SqliteRevisionRow): RevisionRecord {
  return toRevision({ ...row, functions: JSON.parse(row.functions) as number[] });
}

const REVISION_COLUMNS = `r.revision, r.at, r.session_id, r.session_name, r.kind, r.op_count, r.undoes, r.redoes,
  r.checkpoint, r.note,
  (SELECT json_group_array(function_id) FROM
    (SELECT function_id FROM revision_functions f WHERE f.program = r.program AND f.revision = r.revision
     ORDER BY function_id)) AS functions`;

export class SqliteStore implements ProgramStore {
  private readonly stmt;
  private readonly commitTx;

  constructor(private readonly db: Database.Database) {
    this.stmt = {
      programs: db.prepare('SELECT name, revision, next_function_id FROM programs ORDER BY name'),
      insertProgram: db.prepare(
        'INSERT INTO programs (name, revision, next_function_id, created_at) VALUES (?, 0, 1, ?)',
      ),
      deleteProgram: db.prepare('DELETE FROM programs WHERE name = ?'),
      advanceProgram: db.prepare(
        'UPDATE programs SET revision = ?, next_function_id = ? WHERE name = ? AND revision = ?',
      ),
      insertRevision: db.prepare(`INSERT INTO revisions
        (program, revision, at, session_id, session_name, kind, ops, op_count, undoes, redoes, checkpoint, note,
         edit_key, edit_result)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      keyedResult: db
        .prepare('SELECT edit_result FROM revisions WHERE program = ? AND session_id = ? AND edit_key = ?')
        .pluck(),
      insertVersion: db.prepare(
        'INSERT INTO function_versions (program, function_id, version, revision, hash, body) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      insertChange: db.prepare(
        'INSERT INTO revision_functions (program, revision, function_id, before_version, after_version) VALUES (?, ?, ?, ?, ?)',
      ),
      revisions: db.prepare(`SELECT ${REVISION_COLUMNS} FROM revisions r WHERE r.program = ? AND r.revision > ?
        ORDER BY r.revision LIMIT ?`),
      revision: db.prepare(`SELECT ${REVISION_COLUMNS} FROM revisions r WHERE r.program = ? AND r.revision = ?`),
      revisionChanges: db.prepare(`SELECT f.function_id, f.before_version, f.after_version FROM revision_functions f
        WHERE f.program = ? AND f.revision = ? ORDER BY f.function_id`),
      version: db.prepare(`SELECT function_id, version, revision, hash, body FROM function_versions
        WHERE program = ? AND function_id = ? AND version = ?`),
      lastVersion: db
        .prepare('SELECT max(version) FROM function_versions WHERE program = ? AND function_id = ?')
        .pluck(),
      latestWithHash: db.prepare(`SELECT function_id, version, revision, hash, body FROM function_versions
        WHERE program = ? AND function_id = ? AND hash = ? ORDER BY version DESC LIMIT 1`),
      changedBetween: db
        .prepare(`SELECT DISTINCT function_id FROM revision_functions
        WHERE program = ? AND revision > ? AND revision <= ? ORDER BY function_id`)
        .pluck(),
      // CROSS JOIN fixes the join order (SQLite never reorders it): left to itself the planner
      // scanned every stored version of the program, making each lookup grow with the history.
      stateAt: db.prepare(`WITH latest AS (
          SELECT function_id, max(revision) AS revision FROM revision_functions
          WHERE program = :program AND revision <= :revision
            AND (:ids IS NULL OR function_id IN (SELECT value FROM json_each(:ids)))
          GROUP BY function_id)
        SELECT v.function_id, v.version, v.revision, v.hash, v.body
        FROM latest l
        CROSS JOIN revision_functions f ON f.program = :program AND f.revision = l.revision AND f.function_id = l.function_id
        CROSS JOIN function_versions v ON v.program = :program AND v.function_id = f.function_id AND v.version = f.after_version
        ORDER BY v.function_id`),
      addCheckpoint:
        db.prepare(`INSERT OR IGNORE INTO checkpoints (program, name, revision, at, session_id, session_name)
        VALUES (?, ?, ?, ?, ?, ?)`),
      checkpoints: db.prepare(
        'SELECT name, revision, at, session_id, session_name FROM checkpoints WHERE program = ? ORDER BY revision, at, name',
      ),
      checkpoint: db.prepare(
        'SELECT name, revision, at, session_id, session_name FROM checkpoints WHERE program = ? AND name = ?',
      ),
      recordContent:
        db.prepare(`INSERT INTO path_contents (program, path, blob, commit_id, session_id, session_name, at)
        VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (program, path) DO UPDATE SET blob = excluded.blob,
        commit_id = excluded.commit_id, session_id = excluded.session_id, session_name = excluded.session_name,
        at = excluded.at`),
      contents: db.prepare(`SELECT ${PATH_CONTENT_COLUMNS} FROM path_contents
        WHERE program = ? AND path IN (SELECT value FROM json_each(?))`),
      fenceCeilings: db.prepare(`SELECT program, max(ceiling) AS ceiling FROM
        (SELECT program, ceiling FROM fences UNION ALL SELECT program, fence FROM resource_fences) GROUP BY program`),
      claimFence: db.prepare(`INSERT INTO resource_fences (program, resource, fence) VALUES (?, ?, ?)
        ON CONFLICT (program, resource) DO UPDATE SET fence = excluded.fence WHERE excluded.fence >= fence`),
      committedFence: db.prepare('SELECT fence FROM resource_fences WHERE program = ? AND resource = ?').pluck(),
      saveFenceCeiling: db.prepare(`INSERT INTO fences (program, ceiling) VALUES (?, ?)
        ON CONFLICT (program) DO UPDATE SET ceiling = max(ceiling, excluded.ceiling)`),
      ping: db.prepare('SELECT 1').pluck(),
    };
    this.commitTx = db.transaction((c: RevisionCommit) => {
      const r = c.record;
      const stale = c.fences
        .filter((claim) => this.stmt.claimFence.run(c.program, claim.resource, claim.fence).changes === 0)
        .map((claim) => ({ claim, current: this.stmt.committedFence.get(c.program, claim.resource) as number }));
      if (stale.length > 0) throw staleFence(c.program, stale);
      this.stmt.insertRevision.run(
        c.program,
        r.revision,
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
      );
      for (const change of c.changes) {
        const after = change.after;
        if (after !== null) {
          this.stmt.insertVersion.run(
            c.program,
            change.functionId,
            after.version,
            r.revision,
            after.hash,
            JSON.stringify(after.body),
          );
        }
        this.stmt.insertChange.run(
          c.program,
          r.revision,
          change.functionId,
          change.beforeVersion,
          after?.version ?? null,
        );
      }
      const advanced = this.stmt.advanceProgram.run(r.revision, c.nextFunctionId, c.program, r.revision - 1);
      // Guards against a second writer on the same file: memory and disk must agree on the base.
      if (advanced.changes !== 1)
        throw new Error(`program ${c.program} is not at revision ${r.revision - 1} in the store`);
    });
  }

  async load(): Promise<LoadedProgram[]> {
    const rows = this.stmt.programs.all() as Array<{ name: string; revision: number; next_function_id: number }>;
    return rows.map((row) => ({
      name: row.name,
      revision: row.revision,
      nextFunctionId: row.next_function_id,
      functions: [...this.readState(row.name, row.revision).values()],
    }));
  }

  async createProgram(name: string, at: number): Promise<void> {
    this.stmt.insertProgram.run(name, at);
  }

  async deleteProgram(name: string): Promise<void> {
    this.stmt.deleteProgram.run(name);
  }

  async commit(commit: RevisionCommit): Promise<void> {
    this.commitTx.immediate(commit);
  }

  async revisions(program: string, after: number, limit: number): Promise<RevisionRecord[]> {
    return (this.stmt.revisions.all(program, after, limit) as SqliteRevisionRow[]).map(fromSqlite);
  }

  async revision(program: string, revision: number): Promise<RevisionRecord | undefined> {
    const row = this.stmt.revision.get(program, revision) as SqliteRevisionRow | undefined;
    return row === undefined ? undefined : fromSqlite(row);
  }

  async revisionChanges(program: string, revision: number): Promise<RevisionChange[]> {
    const rows = this.stmt.revisionChanges.all(program, revision) as Array<{
      function_id: number;
      before_version: number | null;
      after_version: number | null;
    }>;
    const load = (id: number, version: number | null): VersionRecord | null =>
      version === null ? null : (this.readVersion(program, id, version) ?? null);
    return rows.map((row) => ({
      functionId: row.function_id,
      before: load(row.function_id, row.before_version),
      after: load(row.function_id, row.after_version),
    }));
  }

  async version(program: string, functionId: number, version: number): Promise<VersionRecord | undefined> {
    return this.readVersion(program, functionId, version);
  }

  private readVersion(program: string, functionId: number, version: number): VersionRecord | undefined {
    const row = this.stmt.version.get(program, functionId, version) as VersionRow | undefined;
    return row === undefined ? undefined : toVersion(row);
  }

  async lastVersion(program: string, functionId: number): Promise<number> {
    return (this.stmt.lastVersion.get(program, functionId) as number | null) ?? 0;
  }

  async latestWithHash(program: string, functionId: number, hash: string): Promise<VersionRecord | undefined> {
    const row = this.stmt.latestWithHash.get(program, functionId, hash) as VersionRow | undefined;
    return row === undefined ? undefined : toVersion(row);
  }

  async changedBetween(program: string, from: number, to: number): Promise<number[]> {
    return this.stmt.changedBetween.all(program, from, to) as number[];
  }

  async stateAt(
    program: string,
    revision: number,
    functionIds?: readonly number[],
  ): Promise<Map<number, VersionRecord>> {
    return this.readState(program, revision, functionIds);
  }

  private readState(program: string, revision: number, functionIds?: readonly number[]): Map<number, VersionRecord> {
    const ids = functionIds === undefined ? null : JSON.stringify(functionIds);
    const rows = this.stmt.stateAt.all({ program, revision, ids }) as VersionRow[];
    return new Map(rows.map((row) => [row.function_id, toVersion(row)]));
  }

  async keyedResult(program: string, sessionId: string, key: string): Promise<unknown> {
    const text = this.stmt.keyedResult.get(program, sessionId, key) as string | undefined;
    return text === undefined ? undefined : JSON.parse(text);
  }

  async addCheckpoint(program: string, cp: CheckpointRecord): Promise<boolean> {
    return (
      this.stmt.addCheckpoint.run(program, cp.name, cp.revision, cp.at, cp.sessionId, cp.sessionName).changes === 1
    );
  }

  async checkpoints(program: string): Promise<CheckpointRecord[]> {
    return (this.stmt.checkpoints.all(program) as CheckpointRow[]).map(toCheckpoint);
  }

  async checkpoint(program: string, name: string): Promise<CheckpointRecord | undefined> {
    const row = this.stmt.checkpoint.get(program, name) as CheckpointRow | undefined;
    return row === undefined ? undefined : toCheckpoint(row);
  }

  async recordContents(program: string, records: readonly PathContentRecord[]): Promise<void> {
    this.db.transaction(() => {
      for (const r of records) {
        this.stmt.recordContent.run(program, r.path, r.blob, r.commit ?? null, r.sessionId, r.sessionName, r.at);
      }
    })();
  }

  async contents(program: string, paths: readonly string[]): Promise<Map<string, PathContentRecord>> {
    const rows = this.stmt.contents.all(program, JSON.stringify(paths)) as PathContentRow[];
    return new Map(rows.map((r) => [r.path, toPathContent(r)]));
  }

  async fenceCeilings(): Promise<Map<string, number>> {
    const rows = this.stmt.fenceCeilings.all() as Array<{ program: string; ceiling: number }>;
    return new Map(rows.map((r) => [r.program, r.ceiling]));
  }

  async saveFenceCeiling(program: string, ceiling: number): Promise<void> {
    this.stmt.saveFenceCeiling.run(program, ceiling);
  }

  async ping(): Promise<boolean> {
    try {
      return this.stmt.ping.get() === 1;
    } catch {
      return false;
    }
  }

  /**
   * The server holds the file's exclusive lock, so no other process can copy it while it runs:
   * the owning connection copies it with SQLite's online backup API (edits go on meanwhile), to
   * a file beside the target first, renamed once complete, so `to` is never a partial copy.
   */
  async backup(to: string): Promise<void> {
    const partial = `${to}.partial`;
    try {
      await this.db.backup(partial);
      renameSync(partial, to);
    } catch (err) {
      rmSync(partial, { force: true });
      throw err;
    }
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
