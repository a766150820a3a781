import type { FunctionBody } from '../protocol/program.ts';
import type { FenceClaim } from './fence-claims.ts';
import type { ServiceOp } from './ops.ts';

// The persistence boundary. The model (ops, hashes, diffs, history ops) never sees SQL; a backend
// only stores and returns these records. Every method is asynchronous so that a networked backend
// (PostgreSQL) fits behind it; a promise resolves once the change is durable.

export type RevisionKind = 'edit' | 'undo' | 'redo' | 'restore';

/** One version of one function. */
export interface VersionRecord {
  functionId: number;
  version: number;
  /** The revision that produced this version. */
  revision: number;
  hash: string;
  body: FunctionBody;
}

export interface RevisionRecord {
  revision: number;
  at: number;
  sessionId: string;
  sessionName: string;
  kind: RevisionKind;
  ops: number;
  /** Functions whose content or existence the revision changed, by id. */
  functions: number[];
  undoes?: number;
  redoes?: number;
  checkpoint?: string;
  note?: string;
}

/** A function before and after one revision; null where it did not exist. */
export interface RevisionChange {
  functionId: number;
  before: VersionRecord | null;
  after: VersionRecord | null;
}

export interface RevisionCommit {
  program: string;
  record: Omit<RevisionRecord, 'functions' | 'ops'>;
  ops: readonly ServiceOp[];
  nextFunctionId: number;
  changes: ReadonlyArray<{ functionId: number; beforeVersion: number | null; after: VersionRecord | null }>;
  /** Checked and recorded inside the transaction: STALE_FENCE when a resource has a higher one. */
  fences: readonly FenceClaim[];
  /** The edit's idempotency key and its result, kept with the revision for retries. */
  keyed?: { key: string; result: unknown };
}

export interface LoadedProgram {
  name: string;
  revision: number;
  nextFunctionId: number;
  /** The functions that exist at the current revision. */
  functions: VersionRecord[];
}

export interface CheckpointRecord {
  name: string;
  revision: number;
  at: number;
  sessionId: string;
  sessionName: string;
}

/**
 * The content a path had when a holder of a write lock covering it released (docs/protocol.md,
 * lock.release `contents`): its git blob id and, if given, the commit that has it.
 */
export interface PathContentRecord {
  path: string;
  /** null: the path was deleted. */
  blob: string | null;
  commit?: string;
  sessionId: string;
  sessionName: string;
  at: number;
}

export interface ProgramStore {
  /** Every program with its current functions. */
  load(): Promise<LoadedProgram[]>;
  createProgram(name: string, at: number): Promise<void>;
  deleteProgram(name: string): Promise<void>;
  /** One revision, atomically and durably; refused unless the program is at the revision before. */
  commit(commit: RevisionCommit): Promise<void>;
  revisions(program: string, after: number, limit: number): Promise<RevisionRecord[]>;
  revision(program: string, revision: number): Promise<RevisionRecord | undefined>;
  revisionChanges(program: string, revision: number): Promise<RevisionChange[]>;
  version(program: string, functionId: number, version: number): Promise<VersionRecord | undefined>;
  /** Highest version the function ever had, 0 if none. */
  lastVersion(program: string, functionId: number): Promise<number>;
  latestWithHash(program: string, functionId: number, hash: string): Promise<VersionRecord | undefined>;
  /** Ids of the functions changed by revisions in (from, to]. */
  changedBetween(program: string, from: number, to: number): Promise<number[]>;
  /** The given functions (all when omitted) that existed at `revision`, by id. */
  stateAt(program: string, revision: number, functionIds?: readonly number[]): Promise<Map<number, VersionRecord>>;
  /** The result recorded with the revision this session committed under this idempotency key, if any. */
  keyedResult(program: string, sessionId: string, key: string): Promise<unknown>;
  /** False when a checkpoint of that name exists. */
  addCheckpoint(program: string, checkpoint: CheckpointRecord): Promise<boolean>;
  checkpoints(program: string): Promise<CheckpointRecord[]>;
  checkpoint(program: string, name: string): Promise<CheckpointRecord | undefined>;
  /** Replaces each path's last recorded content. */
  recordContents(program: string, records: readonly PathContentRecord[]): Promise<void>;
  /** The last recorded content of each of these paths that has one, by path. */
  contents(program: string, paths: readonly string[]): Promise<Map<string, PathContentRecord>>;
  /** Highest fence token reserved or committed per program. Outlives the program on purpose. */
  fenceCeilings(): Promise<Map<string, number>>;
  /** Raises the program's ceiling (never lowers it). */
  saveFenceCeiling(program: string, ceiling: number): Promise<void>;
  ping(): Promise<boolean>;
  /**
   * A consistent copy of the whole store, taken while it serves (SQLite: the online backup API),
   * written to `to` only once complete. A PostgreSQL store refuses: pg_dump does it (docs/operations.md).
   */
  backup(to: string): Promise<void>;
  close(): Promise<void>;
}

/** The store cannot be used: start-up must stop with this message. */
export class StoreError extends Error {
  readonly path: string;

  constructor(path: string, problem: string, cause?: unknown) {
    const why = cause instanceof Error ? `: ${cause.message}` : cause === undefined ? '' : `: ${String(cause)}`;
    super(`program store ${path}: ${problem}${why}`, cause === undefined ? undefined : { cause });
    this.name = 'StoreError';
    this.path = path;
  }
}
