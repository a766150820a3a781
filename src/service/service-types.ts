import type { FunctionDiff } from '../protocol/program.ts';
import type { Resource } from '../protocol/resource.ts';
import type { FenceClaim } from './fence-claims.ts';
import type { RevisionKind, RevisionRecord } from './store.ts';

/**
 * Where the service reads the time (revision and checkpoint stamps). Structurally the lock core's
 * Clock, which the service may not import; the server hands both the same one.
 */
export interface ServiceClock {
  /** Epoch milliseconds. */
  now(): number;
}

export interface EditMeta {
  sessionId: string;
  name: string;
  kind?: RevisionKind;
  note?: string;
  /** For kind 'undo': the revision undone. */
  undoes?: number;
  /** For kind 'redo': the undo revision whose effect is re-applied. */
  redoes?: number;
  /** For kind 'restore': the checkpoint restored. */
  checkpoint?: string;
  /** The fences of the grants the edit is made under, checked by the store as it commits. */
  fences?: readonly FenceClaim[];
  /** Idempotency key: the result is stored with the revision (see keyedResult). */
  key?: string;
}

export interface FunctionSummary {
  id: number;
  name: string;
  hash: string;
  version: number;
}

export interface EditResult {
  revision: number;
  /** Every function the edit created or whose content it changed, in its new state, by id. */
  functions: FunctionSummary[];
  created: Array<{ name: string; id: number }>;
  removed: number[];
  at: number;
  /** False for an undo, redo or restore that changed nothing: no revision was made. */
  committed: boolean;
}

export interface ConflictDetail {
  functionId: number;
  expectedHash: string;
  /** null when the function does not exist (any more). */
  currentHash: string | null;
  /** From the latest version that had the expected hash; null when no version ever had it. */
  diff: FunctionDiff | null;
}

export interface LockNeed {
  resource: Resource;
  mode: 'write';
}

/** A revision as callers see it: the stored record, its author as one `by`. */
export type RevisionInfo = Omit<RevisionRecord, 'sessionId' | 'sessionName'> & {
  by: { sessionId: string; name: string };
};

export interface RevisionDiff {
  from: number;
  to: number;
  functions: Array<{ id: number; name: string; status: 'added' | 'removed' | 'modified'; diff: FunctionDiff }>;
}

export interface CheckpointInfo {
  name: string;
  revision: number;
  at: number;
  by: { sessionId: string; name: string };
}
