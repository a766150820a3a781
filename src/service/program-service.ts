import { LockstepError } from '../protocol/errors.ts';
import { FunctionBody, FunctionName } from '../protocol/program.ts';
import type { FunctionDiff } from '../protocol/program.ts';
import { normalizeResources, ProgramName } from '../protocol/resource.ts';
import type { Resource } from '../protocol/resource.ts';
import { applyOps } from './apply-edit.ts';
import { diffFunctions, emptied } from './diff.ts';
import { FenceCounter } from './fences.ts';
import type { FenceSource } from './fences.ts';
import { functionHash } from './hash.ts';
import { makeBody, newProgramState } from './model.ts';
import type { ProgramState, StoredFunction } from './model.ts';
import type { ServiceOp } from './ops.ts';
import { openSqliteStore } from './sqlite-store.ts';
import { StoreError } from './store.ts';
import type { LoadedProgram, ProgramStore, RevisionKind, RevisionRecord, VersionRecord } from './store.ts';
import { transitionOps } from './transition.ts';
import type { Transition } from './transition.ts';

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

const DEFAULT_HISTORY_LIMIT = 100;
const MAX_HISTORY_LIMIT = 1000;

/**
 * The shared programs and their history. State lives in memory and every change is written
 * through to the store in one transaction before the call returns, so reads never touch the disk
 * and an acknowledged edit is durable.
 */
export class ProgramService {
  private readonly programs = new Map<string, ProgramState>();
  private readonly fenceCounter: FenceCounter;

  /** Opens a SQLite store (file path or ':memory:'); throws StoreError when it cannot be used. */
  static open(opts: { path: string }): ProgramService {
    const store = openSqliteStore(opts.path);
    try {
      return new ProgramService(store, opts.path);
    } catch (err) {
      store.close();
      throw err instanceof StoreError ? err : new StoreError(opts.path, 'cannot be loaded', err);
    }
  }

  constructor(
    private readonly store: ProgramStore,
    location: string,
  ) {
    for (const loaded of store.load()) this.programs.set(loaded.name, restoreProgram(loaded, location));
    this.fenceCounter = new FenceCounter(store);
  }

  close(): void {
    this.store.close();
  }

  ping(): boolean {
    return this.store.ping();
  }

  fences(): FenceSource {
    return this.fenceCounter;
  }

  listPrograms(): Array<{ name: string; revision: number; functions: number }> {
    return [...this.programs.values()]
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((p) => ({ name: p.name, revision: p.revision, functions: p.functions.size }));
  }

  createProgram(name: string): { name: string; revision: number } {
    const valid = ProgramName.safeParse(name);
    if (!valid.success) {
      const reason = valid.error.issues[0]?.message ?? 'invalid program name';
      throw new LockstepError('INVALID_EDIT', `invalid program name: ${reason}`, { program: name, reason });
    }
    if (this.programs.has(name)) throw new LockstepError('CONFLICT', `program ${name} exists`, { program: name });
    this.store.createProgram(name, Date.now());
    this.programs.set(name, newProgramState(name, 0, 1));
    return { name, revision: 0 };
  }

  deleteProgram(name: string): void {
    this.program(name);
    this.store.deleteProgram(name);
    this.programs.delete(name);
  }

  hasProgram(name: string): boolean {
    return this.programs.has(name);
  }

  getProgram(name: string): { name: string; revision: number; functions: FunctionSummary[] } {
    const p = this.program(name);
    const functions = [...p.functions.values()].map(summary).sort((a, b) => a.id - b.id);
    return { name: p.name, revision: p.revision, functions };
  }

  getFunction(program: string, id: number): { function: FunctionBody; hash: string; version: number } {
    const fn = this.program(program).functions.get(id);
    if (fn === undefined) throw notFound(`function ${id} not found in program ${program}`, { program, function: id });
    return { function: fn.body, hash: fn.hash, version: fn.version };
  }

  hasFunction(program: string, id: number): boolean {
    return this.programs.get(program)?.functions.has(id) ?? false;
  }

  /**
   * The write locks an edit needs, in canonical order. Ops on a function the same edit adds
   * (a string reference) need only the structure lock: nobody else can lock it yet. A function id
   * that does not exist needs no lock (none can be taken on it): the ops check then refuses the
   * edit with INVALID_EDIT naming the op, which tells the agent what is wrong, where a
   * LOCK_REQUIRED for an unlockable function would send it round in circles.
   */
  requiredLocks(program: string, ops: readonly ServiceOp[]): LockNeed[] {
    const p = this.program(program);
    const fn = (id: number): Resource[] => (p.functions.has(id) ? [{ program, function: id }] : []);
    const structure: Resource = { program, structure: true };
    const needed: Resource[] = [];
    for (const op of ops) {
      switch (op.op) {
        case 'addFunction':
        case 'restoreFunction':
          needed.push(structure);
          break;
        case 'removeFunction':
        case 'renameFunction':
          needed.push(structure);
          if (typeof op.function === 'number') needed.push(...fn(op.function));
          break;
        default:
          if (typeof op.function === 'number') needed.push(...fn(op.function));
          else needed.push(structure);
      }
    }
    return normalizeResources(needed).map((resource) => ({ resource, mode: 'write' }));
  }

  checkExpected(program: string, expected: Readonly<Record<string, string>>): ConflictDetail[] {
    const p = this.program(program);
    const conflicts: ConflictDetail[] = [];
    const entries = Object.entries(expected).map(([key, hash]) => [parseFunctionKey(key), hash] as const);
    for (const [functionId, expectedHash] of entries.sort(([a], [b]) => a - b)) {
      const current = p.functions.get(functionId);
      if (current?.hash === expectedHash) continue;
      const old = this.store.latestWithHash(program, functionId, expectedHash);
      conflicts.push({
        functionId,
        expectedHash,
        currentHash: current?.hash ?? null,
        diff: old === undefined ? null : diffFunctions(old.body, current?.body ?? emptied(old.body)),
      });
    }
    return conflicts;
  }

  /**
   * Applies the ops all or none and commits them as the next revision. A function's version is
   * bumped only when its hash changes: an edit op that leaves the content as it was (updateNode to
   * the same value) still makes a revision, but no new version and no entry in `functions`. An
   * undo, redo or restore that changes nothing (its effect is already there) makes no revision.
   */
  applyEdit(program: string, ops: readonly ServiceOp[], meta: EditMeta): EditResult {
    const p = this.program(program);
    const applied = applyOps(p, ops);
    const at = Date.now();
    if (applied.changes.length === 0 && (meta.kind ?? 'edit') !== 'edit') {
      return { revision: p.revision, functions: [], created: [], removed: [], at, committed: false };
    }
    const revision = p.revision + 1;
    const changes = applied.changes.map((change) => {
      const after: VersionRecord | null =
        change.after === null
          ? null
          : {
              functionId: change.id,
              version: (change.before?.version ?? this.store.lastVersion(program, change.id)) + 1,
              revision,
              hash: change.after.hash,
              body: change.after.body,
            };
      return { functionId: change.id, before: change.before, beforeVersion: change.before?.version ?? null, after };
    });
    this.store.commit({
      program,
      record: {
        revision,
        at,
        sessionId: meta.sessionId,
        sessionName: meta.name,
        kind: meta.kind ?? 'edit',
        ...(meta.undoes === undefined ? {} : { undoes: meta.undoes }),
        ...(meta.redoes === undefined ? {} : { redoes: meta.redoes }),
        ...(meta.checkpoint === undefined ? {} : { checkpoint: meta.checkpoint }),
        ...(meta.note === undefined ? {} : { note: meta.note }),
      },
      ops: applied.ops,
      nextFunctionId: applied.nextFunctionId,
      changes,
    });

    p.revision = revision;
    p.nextFunctionId = applied.nextFunctionId;
    for (const { functionId, before } of changes) {
      if (before !== null && p.idsByName.get(before.body.name) === functionId) p.idsByName.delete(before.body.name);
    }
    const functions: FunctionSummary[] = [];
    const removed: number[] = [];
    for (const { functionId, after } of changes) {
      if (after === null) {
        p.functions.delete(functionId);
        removed.push(functionId);
        continue;
      }
      const stored: StoredFunction = { body: after.body, hash: after.hash, version: after.version };
      p.functions.set(functionId, stored);
      p.idsByName.set(after.body.name, functionId);
      functions.push(summary(stored));
    }
    return { revision, functions, created: applied.created, removed, at, committed: true };
  }

  history(program: string, opts: { after?: number; limit?: number } = {}): RevisionInfo[] {
    this.program(program);
    const limit = Math.min(Math.max(1, Math.trunc(opts.limit ?? DEFAULT_HISTORY_LIMIT)), MAX_HISTORY_LIMIT);
    return this.store.revisions(program, opts.after ?? 0, limit).map(revisionInfo);
  }

  diffRevisions(program: string, from: number, to: number): RevisionDiff {
    this.revisionNumber(program, from);
    this.revisionNumber(program, to);
    const ids = this.store.changedBetween(program, Math.min(from, to), Math.max(from, to));
    const before = this.store.stateAt(program, from, ids);
    const after = this.store.stateAt(program, to, ids);
    const functions: RevisionDiff['functions'] = [];
    for (const id of ids) {
      const a = before.get(id);
      const b = after.get(id);
      if (a !== undefined && b !== undefined) {
        if (a.hash !== b.hash)
          functions.push({ id, name: b.body.name, status: 'modified', diff: diffFunctions(a.body, b.body) });
      } else if (b !== undefined) {
        functions.push({ id, name: b.body.name, status: 'added', diff: diffFunctions(emptied(b.body), b.body) });
      } else if (a !== undefined) {
        functions.push({ id, name: a.body.name, status: 'removed', diff: diffFunctions(a.body, emptied(a.body)) });
      }
    }
    return { from, to, functions };
  }

  diffFunction(program: string, id: number, fromVersion: number, toVersion: number): FunctionDiff {
    this.program(program);
    const load = (version: number): VersionRecord =>
      this.store.version(program, id, version) ??
      notFoundThrow(`function ${id} of program ${program} has no version ${version}`, {
        program,
        function: id,
        version,
      });
    return diffFunctions(load(fromVersion).body, load(toVersion).body);
  }

  /**
   * The ops that revert what `revision` changed, applied to the current state (like `git revert`):
   * later changes elsewhere survive, a function the revision added is removed with whatever it
   * has gained since, and a function it removed comes back under its own id.
   */
  undoOps(program: string, revision: number): ServiceOp[] {
    const p = this.program(program);
    this.revisionRecord(program, revision);
    return this.revertOps(p, revision);
  }

  /** The ops that re-apply what the undo revision `revision` reverted. */
  redoOps(program: string, revision: number): ServiceOp[] {
    const p = this.program(program);
    const record = this.revisionRecord(program, revision);
    if (record.kind !== 'undo') {
      const reason = `revision ${revision} is not an undo (it is a ${record.kind})`;
      throw new LockstepError('INVALID_EDIT', reason, { program, revision, reason });
    }
    return this.revertOps(p, revision);
  }

  /**
   * Labels the current revision. Creating a checkpoint changes no function, so it makes no
   * revision of its own (a restore does).
   */
  createCheckpoint(program: string, name: string, meta: EditMeta): { name: string; revision: number; at: number } {
    const p = this.program(program);
    const valid = FunctionName.safeParse(name);
    if (!valid.success) {
      const reason = valid.error.issues[0]?.message ?? 'invalid checkpoint name';
      throw new LockstepError('INVALID_EDIT', `invalid checkpoint name: ${reason}`, {
        program,
        checkpoint: name,
        reason,
      });
    }
    const at = Date.now();
    const added = this.store.addCheckpoint(program, {
      name,
      revision: p.revision,
      at,
      sessionId: meta.sessionId,
      sessionName: meta.name,
    });
    if (!added)
      throw new LockstepError('CONFLICT', `checkpoint ${name} exists in program ${program}`, {
        program,
        checkpoint: name,
      });
    return { name, revision: p.revision, at };
  }

  listCheckpoints(program: string): CheckpointInfo[] {
    this.program(program);
    return this.store.checkpoints(program).map((cp) => ({
      name: cp.name,
      revision: cp.revision,
      at: cp.at,
      by: { sessionId: cp.sessionId, name: cp.sessionName },
    }));
  }

  /** Ops that turn the current state into the checkpoint's state (empty when they are equal). */
  restoreOps(program: string, checkpoint: string): ServiceOp[] {
    const p = this.program(program);
    const cp =
      this.store.checkpoint(program, checkpoint) ??
      notFoundThrow(`checkpoint ${checkpoint} not found in program ${program}`, { program, checkpoint });
    const ids = this.store.changedBetween(program, cp.revision, p.revision);
    const target = this.store.stateAt(program, cp.revision, ids);
    const transitions: Transition[] = ids.map((id) => ({
      id,
      from: p.functions.get(id)?.body ?? null,
      to: target.get(id)?.body ?? null,
    }));
    return transitionOps(transitions, new Set(p.idsByName.keys()));
  }

  private revertOps(p: ProgramState, revision: number): ServiceOp[] {
    const transitions: Transition[] = this.store.revisionChanges(p.name, revision).map((c) => ({
      id: c.functionId,
      from: c.after?.body ?? null,
      to: c.before?.body ?? null,
    }));
    return transitionOps(transitions, new Set(p.idsByName.keys()));
  }

  private program(name: string): ProgramState {
    return this.programs.get(name) ?? notFoundThrow(`program ${name} not found`, { program: name });
  }

  private revisionNumber(program: string, revision: number): void {
    const p = this.program(program);
    if (!Number.isSafeInteger(revision) || revision < 0 || revision > p.revision) {
      throw notFound(`revision ${revision} not found in program ${program}`, { program, revision });
    }
  }

  private revisionRecord(program: string, revision: number): RevisionRecord {
    return (
      this.store.revision(program, revision) ??
      notFoundThrow(`revision ${revision} not found in program ${program}`, { program, revision })
    );
  }
}

function summary(fn: StoredFunction): FunctionSummary {
  return { id: fn.body.id, name: fn.body.name, hash: fn.hash, version: fn.version };
}

function revisionInfo(r: RevisionRecord): RevisionInfo {
  const { sessionId, sessionName, ...rest } = r;
  return { ...rest, by: { sessionId, name: sessionName } };
}

function notFound(message: string, details: Record<string, unknown>): LockstepError {
  return new LockstepError('NOT_FOUND', message, details);
}

function notFoundThrow(message: string, details: Record<string, unknown>): never {
  throw notFound(message, details);
}

function parseFunctionKey(key: string): number {
  const id = /^[1-9][0-9]*$/.test(key) ? Number(key) : Number.NaN;
  if (!Number.isSafeInteger(id)) {
    const reason = `expected hash key "${key}" is not a function id`;
    throw new LockstepError('INVALID_EDIT', reason, { reason });
  }
  return id;
}

/** Rebuilds a program from the store, refusing anything that does not check out. */
function restoreProgram(loaded: LoadedProgram, location: string): ProgramState {
  const state = newProgramState(loaded.name, loaded.revision, loaded.nextFunctionId);
  for (const v of loaded.functions) {
    const where = `program ${loaded.name}, function ${v.functionId} version ${v.version}`;
    const parsed = FunctionBody.safeParse(v.body);
    if (!parsed.success || parsed.data.id !== v.functionId || v.functionId >= loaded.nextFunctionId) {
      throw new StoreError(location, `is corrupt: ${where} has a malformed body`);
    }
    const body = makeBody(
      parsed.data.id,
      parsed.data.name,
      parsed.data.signature,
      parsed.data.nodes,
      parsed.data.edges,
    );
    if (functionHash(body) !== v.hash)
      throw new StoreError(location, `is corrupt: ${where} does not match its stored hash`);
    if (state.idsByName.has(body.name)) throw new StoreError(location, `is corrupt: ${where} has a duplicate name`);
    state.functions.set(v.functionId, { body, hash: v.hash, version: v.version });
    state.idsByName.set(body.name, v.functionId);
  }
  return state;
}
