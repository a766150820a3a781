import type { Database } from 'better-sqlite3';

export interface Migration {
  /** The user_version the database has after this migration. */
  version: number;
  up(db: Database, now: number): void;
}

// Append only: a released migration is never edited, the next change is a new entry.
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    up(db, now) {
      db.exec(`
        CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;

        CREATE TABLE programs (
          name TEXT PRIMARY KEY,
          revision INTEGER NOT NULL CHECK (revision >= 0),
          next_function_id INTEGER NOT NULL CHECK (next_function_id >= 1),
          created_at INTEGER NOT NULL
        ) STRICT;

        CREATE TABLE revisions (
          program TEXT NOT NULL REFERENCES programs(name) ON DELETE CASCADE,
          revision INTEGER NOT NULL CHECK (revision >= 1),
          at INTEGER NOT NULL,
          session_id TEXT NOT NULL,
          session_name TEXT NOT NULL,
          kind TEXT NOT NULL CHECK (kind IN ('edit', 'undo', 'redo', 'restore')),
          ops TEXT NOT NULL,
          op_count INTEGER NOT NULL,
          undoes INTEGER,
          redoes INTEGER,
          checkpoint TEXT,
          note TEXT,
          PRIMARY KEY (program, revision)
        ) STRICT;

        CREATE TABLE function_versions (
          program TEXT NOT NULL,
          function_id INTEGER NOT NULL,
          version INTEGER NOT NULL CHECK (version >= 1),
          revision INTEGER NOT NULL,
          hash TEXT NOT NULL,
          body TEXT NOT NULL,
          PRIMARY KEY (program, function_id, version),
          FOREIGN KEY (program, revision) REFERENCES revisions(program, revision) ON DELETE CASCADE
        ) STRICT;
        CREATE INDEX function_versions_by_hash ON function_versions(program, function_id, hash);

        -- A row per function a revision changed; a NULL version means the function did not exist.
        CREATE TABLE revision_functions (
          program TEXT NOT NULL,
          revision INTEGER NOT NULL,
          function_id INTEGER NOT NULL,
          before_version INTEGER,
          after_version INTEGER,
          PRIMARY KEY (program, revision, function_id),
          FOREIGN KEY (program, revision) REFERENCES revisions(program, revision) ON DELETE CASCADE
        ) STRICT;
        CREATE INDEX revision_functions_by_function ON revision_functions(program, function_id, revision);

        CREATE TABLE checkpoints (
          program TEXT NOT NULL REFERENCES programs(name) ON DELETE CASCADE,
          name TEXT NOT NULL,
          revision INTEGER NOT NULL,
          at INTEGER NOT NULL,
          session_id TEXT NOT NULL,
          session_name TEXT NOT NULL,
          PRIMARY KEY (program, name)
        ) STRICT;

        -- No foreign key: a program deleted and created again must keep issuing higher tokens.
        CREATE TABLE fences (program TEXT PRIMARY KEY, ceiling INTEGER NOT NULL) STRICT;
      `);
      db.prepare('INSERT INTO programs (name, revision, next_function_id, created_at) VALUES (?, 0, 1, ?)').run(
        'main',
        now,
      );
    },
  },
  {
    version: 2,
    up(db) {
      // Per resource ('structure' or a function id), the fence of the last edit committed to it.
      db.exec(`CREATE TABLE resource_fences (
        program TEXT NOT NULL,
        resource TEXT NOT NULL,
        fence INTEGER NOT NULL,
        PRIMARY KEY (program, resource)
      ) STRICT;`);
    },
  },
  {
    version: 3,
    up(db) {
      // An edit's idempotency key and the result it answered, so that a retry gets it again.
      db.exec(`ALTER TABLE revisions ADD COLUMN edit_key TEXT;
        ALTER TABLE revisions ADD COLUMN edit_result TEXT;
        CREATE UNIQUE INDEX revisions_by_key ON revisions (program, edit_key) WHERE edit_key IS NOT NULL;`);
    },
  },
  {
    version: 4,
    up(db) {
      // Edit keys belong to the session that sent them (docs/protocol.md, edit.apply): unique per
      // session, so that two sessions' keys never answer each other's edits.
      db.exec(`DROP INDEX revisions_by_key;
        CREATE UNIQUE INDEX revisions_by_session_key ON revisions (program, session_id, edit_key)
          WHERE edit_key IS NOT NULL;`);
    },
  },
  {
    version: 5,
    up(db) {
      // Per path, the content its last write lock holder recorded on release (docs/protocol.md,
      // lock.release `contents`), for paths.check to name a stale base.
      db.exec(`CREATE TABLE path_contents (
        program TEXT NOT NULL REFERENCES programs(name) ON DELETE CASCADE,
        path TEXT NOT NULL,
        blob TEXT NOT NULL,
        commit_id TEXT,
        session_id TEXT NOT NULL,
        session_name TEXT NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (program, path)
      ) STRICT;`);
    },
  },
  {
    version: 6,
    up(db) {
      // A blob may be null: the holder deleted the path (docs/protocol.md, lock.release
      // `contents`). SQLite cannot drop a NOT NULL in place: the table is copied into a new one.
      db.exec(`CREATE TABLE path_contents_v6 (
        program TEXT NOT NULL REFERENCES programs(name) ON DELETE CASCADE,
        path TEXT NOT NULL,
        blob TEXT,
        commit_id TEXT,
        session_id TEXT NOT NULL,
        session_name TEXT NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (program, path)
      ) STRICT;
        INSERT INTO path_contents_v6 SELECT program, path, blob, commit_id, session_id, session_name, at FROM path_contents;
        DROP TABLE path_contents;
        ALTER TABLE path_contents_v6 RENAME TO path_contents;`);
    },
  },
];

export const SCHEMA_VERSION = MIGRATIONS.reduce((max, m) => Math.max(max, m.version), 0);
