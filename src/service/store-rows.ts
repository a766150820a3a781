import type { FunctionBody } from '../protocol/program.ts';
import type { CheckpointRecord, PathContentRecord, RevisionKind, RevisionRecord, VersionRecord } from './store.ts';

// Rows as both SQL stores read them (same column names), and the records they become.

export interface VersionRow {
  function_id: number;
  version: number;
  revision: number;
  hash: string;
  body: string;
}

export interface RevisionRow {
  revision: number;
  at: number;
  session_id: string;
  session_name: string;
  kind: RevisionKind;
  op_count: number;
  functions: number[];
  undoes: number | null;
  redoes: number | null;
  checkpoint: string | null;
  note: string | null;
}

export interface CheckpointRow {
  name: string;
  revision: number;
  at: number;
  session_id: string;
  session_name: string;
}

export function toVersion(row: VersionRow): VersionRecord {
  return {
    functionId: row.function_id,
    version: row.version,
    revision: row.revision,
    hash: row.hash,
    body: JSON.parse(row.body) as FunctionBody,
  };
}

export function toRevision(row: RevisionRow): RevisionRecord {
  return {
    revision: row.revision,
    at: row.at,
    sessionId: row.session_id,
    sessionName: row.session_name,
    kind: row.kind,
    ops: row.op_count,
    functions: row.functions,
    ...(row.undoes === null ? {} : { undoes: row.undoes }),
    ...(row.redoes === null ? {} : { redoes: row.redoes }),
    ...(row.checkpoint === null ? {} : { checkpoint: row.checkpoint }),
    ...(row.note === null ? {} : { note: row.note }),
  };
}

export function toCheckpoint(row: CheckpointRow): CheckpointRecord {
  return {
    name: row.name,
    revision: row.revision,
    at: row.at,
    sessionId: row.session_id,
    sessionName: row.session_name,
  };
}

export interface PathContentRow {
  path: string;
  blob: string | null;
  commit_id: string | null;
  session_id: string;
  session_name: string;
  at: number;
}

export const PATH_CONTENT_COLUMNS = 'path, blob, commit_id, session_id, session_name, at';

export function toPathContent(row: PathContentRow): PathContentRecord {
  return {
    path: row.path,
    blob: row.blob,
    ...(row.commit_id === null ? {} : { commit: row.commit_id }),
    sessionId: row.session_id,
    sessionName: row.session_name,
    at: row.at,
  };
}
