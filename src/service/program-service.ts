import { LockstepError } from '../protocol/errors.ts';
import { FunctionName } from '../protocol/program.ts';
import type { FunctionBody, FunctionDiff } from '../protocol/program.ts';
import { ProgramName } from '../protocol/resource.ts';
import { applyOps } from './apply-edit.ts';
import { diffFunctions, emptied } from './diff.ts';
import { FenceCounter } from './fences.ts';
import type { FenceSource, ReservedFences } from './fences.ts';
import { HistoryQueries } from './history-queries.ts';
import { restoreProgram } from './load-program.ts';
import { notFound, notFoundThrow, parseFunctionKey } from './lookup-errors.ts';
import { newProgramState } from './model.ts';
import type { ProgramState, StoredFunction } from './model.ts';
import { openStore, shownLocation } from './open-store.ts';
import { PostgresStore, type SharedDatabase } from './pg-store.ts';
import type { WriteFence } from './pg-connection.ts';
import type { ServiceOp } from './ops.ts';
import { requiredLocks } from './required-locks.ts';
import type {
  CheckpointInfo,
  ConflictDetail,
  EditMeta,
  EditResult,
  FunctionSummary,
  LockNeed,
  RevisionDiff,
  RevisionInfo,
  ServiceClock,
} from './service-types.ts';
import { StoreError } from './store.ts';
import type { PathContentRecord, ProgramStore, VersionRecord } from './store.ts';

/**
 * The shared programs and their history. State lives in memory and every change is written
 * through to the store in one transaction before the call returns, so reads never touch the disk
 * and an acknowledged edit is durable.
 */
export class ProgramService {
  private readonly programs = new Map<string, ProgramState>();
  private readonly fenceCounter: FenceCounter;
  private readonly queries: HistoryQueries;
  /**
   * Programs whose last commit failed without a clear answer (the connection dropped during it):
   * it may have landed, so memory is reloaded from the store before the next edit.
   */
  private readonly unsure = new Set<string>();
  /** Per program, the tail of the work running in order on it (see inOrder). */
  private readonly queues = new Map<string, Promise<unknown>>();

  /**
   * Opens the store at `path` (see openStore); throws StoreError when it cannot be used. `leader`
   * is cluster mode: this node's writes are fenced by its lease, and every program has a reserved
   * block of fencing tokens before it is served (see ReservedFences).
   */
  static async open(opts: {
    path: string;
    clock: ServiceClock;
    leader?: { writes: WriteFence; fences: ReservedFences };
  }): Promise<ProgramService> {
    const store = await openStore(opts.path, opts.clock, opts.leader?.writes);
    const shown = shownLocation(opts.path);
    try {
      const loaded = await store.load();
      const programs = loaded.map((program) => restoreProgram(program, shown));
      const service = new ProgramService(
        store,
        shown,
        programs,
        await store.fenceCeilings(),
        opts.clock,
        opts.leader?.fences,
      );
      if (opts.leader !== undefined) await Promise.all(programs.map((p) => service.fenceCounter.prepare(p.name)));
      return service;
    } catch (err) {
      await store.close();
      throw err instanceof StoreError ? err : new StoreError(shown, 'cannot be loaded', err);
    }
  }

  private constructor(
    private readonly store: ProgramStore,
    /** The store's location as messages may show it. */
    private readonly location: string,
    programs: readonly ProgramState[],
    ceilings: ReadonlyMap<string, number>,
    private readonly clock: ServiceClock,
    private readonly reservedFences?: ReservedFences,
  ) {
    for (const program of programs) this.programs.set(program.name, program);
    this.fenceCounter = new FenceCounter(store, ceilings, reservedFences);
    this.queries = new HistoryQueries(store);
  }

  close(): Promise<void> {
    return this.store.close();
  }

  /** The PostgreSQL database behind the store (cluster mode), or undefined for SQLite. */
  database(): SharedDatabase | undefined {
    return this.store instanceof PostgresStore ? this.store : undefined;
  }

  ping(): Promise<boolean> {
    return this.store.ping();
  }

  /** A consistent copy of the whole store to `to`, taken while it serves (see ProgramStore.backup). */
  backup(to: string): Promise<void> {
    return this.store.backup(to);
  }

  /**
   * Runs `work` after everything queued before it on the same program has settled, so that work
   * which reads the program, awaits the store and then changes the program (an edit's checks and
   * commit) sees no other change to it in between. Edits to one program commit in call order.
   */
  inOrder<T>(program: string, work: () => T | Promise<T>): Promise<T> {
    const before = this.queues.get(program) ?? Promise.resolve();
    // A program whose last commit ended without a clear answer is reloaded first, so that the
    // work's checks see what the store holds.
    const run = before
      .then(
        () => this.settle(program),
        () => this.settle(program),
      )
      .then(work);
    const tail = run.catch(() => undefined);
    this.queues.set(program, tail);
    void tail.then(() => {
      if (this.queues.get(program) === tail) this.queues.delete(program);
    });
    return run;
  }

  fences(): FenceSource {
    return this.fenceCounter;
  }

  listPrograms(): Array<{ name: string; revision: number; functions: number }> {
    return [...this.programs.values()]
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((p) => ({ name: p.name, revision: p.revision, functions: p.functions.size }));
  }

  async createProgram(name: string): Promise<{ name: string; revision: number }> {
    const valid = ProgramName.safeParse(name);
    if (!valid.success) {
      const reason = valid.error.issues[0]?.message ?? 'invalid program name';
      throw new LockstepError('INVALID_EDIT', `invalid program name: ${reason}`, { program: name, reason });
    }
    if (this.programs.has(name)) throw new LockstepError('CONFLICT', `program ${name} exists`, { program: name });
    await this.store.createProgram(name, this.clock.now());
    if (this.reservedFences !== undefined) await this.fenceCounter.prepare(name);
    this.programs.set(name, newProgramState(name, 0, 1));
    return { name, revision: 0 };
  }

  async deleteProgram(name: string): Promise<void> {
    this.program(name);
    await this.store.deleteProgram(name);
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

  requiredLocks(program: string, ops: readonly ServiceOp[]): LockNeed[] {
    return requiredLocks(this.program(program), ops);
  }

  async checkExpected(program: string, expected: Readonly<Record<string, string>>): Promise<ConflictDetail[]> {
    const p = this.program(program);
    const conflicts: ConflictDetail[] = [];
    const entries = Object.entries(expected).map(([key, hash]) => [parseFunctionKey(key), hash] as const);
    for (const [functionId, expectedHash] of entries.sort(([a], [b]) => a - b)) {
      const current = p.functions.get(functionId);
      if (current?.hash === expectedHash) continue;
      const old = await this.store.latestWithHash(program, functionId, expectedHash);
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
   *
   * Memory changes only once the store has committed: a failed commit leaves no trace. Callers
   * that may edit one program concurrently run their edits through inOrder().
   */
  async applyEdit(program: string, ops: readonly ServiceOp[], meta: EditMeta): Promise<EditResult> {
    await this.settle(program);
    const p = this.program(program);
    const applied = applyOps(p, ops);
    const at = this.clock.now();
    if (applied.changes.length === 0 && (meta.kind ?? 'edit') !== 'edit') {
      return { revision: p.revision, functions: [], created: [], removed: [], at, committed: false };
    }
    const revision = p.revision + 1;
    const changes = await Promise.all(
      applied.changes.map(async (change) => {
        const after: VersionRecord | null =
          change.after === null
            ? null
            : {
                functionId: change.id,
                version: (change.before?.version ?? (await this.store.lastVersion(program, change.id))) + 1,
                revision,
                hash: change.after.hash,
                body: change.after.body,
              };
        return { functionId: change.id, before: change.before, beforeVersion: change.before?.version ?? null, after };
      }),
    );
    const result: EditResult = {
      revision,
      functions: changes.flatMap(({ after }) => (after === null ? [] : [summary(after)])),
      created: applied.created,
      removed: changes.flatMap(({ functionId, after }) => (after === null ? [functionId] : [])),
      at,
      committed: true,
    };
    const committed = this.store.commit({
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
      fences: meta.fences ?? [],
      ...(meta.key === undefined ? {} : { keyed: { key: meta.key, result } }),
    });
    try {
      await committed;
    } catch (err) {
      // A refusal is a clear answer; anything else may have happened after the commit landed.
      if (!(err instanceof LockstepError && err.type === 'STALE_FENCE')) this.unsure.add(program);
      throw err;
    }

    p.revision = revision;
    p.nextFunctionId = applied.nextFunctionId;
    for (const { functionId, before } of changes) {
      if (before !== null && p.idsByName.get(before.body.name) === functionId) p.idsByName.delete(before.body.name);
    }
    for (const { functionId, after } of changes) {
      if (after === null) {
        p.functions.delete(functionId);
        continue;
      }
      p.functions.set(functionId, { body: after.body, hash: after.hash, version: after.version });
      p.idsByName.set(after.body.name, functionId);
    }
    return result;
  }

  /**
   * The result of the revision the session committed under an idempotency key, for its retry;
   * undefined if none. Keys are the session's own: another session's same key is another edit.
   */
  async keyedResult(program: string, sessionId: string, key: string): Promise<EditResult | undefined> {
    this.program(program);
    return (await this.store.keyedResult(program, sessionId, key)) as EditResult | undefined;
  }

  /** Records what the releasing holder says these paths now contain (lock.release `contents`). */
  recordContents(program: string, records: readonly PathContentRecord[]): Promise<void> {
    this.program(program);
    return this.store.recordContents(program, records);
  }

  /** The last recorded content of each of these paths that has one; none in a program that does not exist. */
  async contents(program: string, paths: readonly string[]): Promise<Map<string, PathContentRecord>> {
    if (!this.programs.has(program) || paths.length === 0) return new Map();
    return this.store.contents(program, paths);
  }

  history(program: string, opts: { after?: number; limit?: number } = {}): Promise<RevisionInfo[]> {
    return this.queries.history(this.program(program), opts);
  }

  diffRevisions(program: string, from: number, to: number): Promise<RevisionDiff> {
    return this.queries.diffRevisions(this.program(program), from, to);
  }

  diffFunction(program: string, id: number, fromVersion: number, toVersion: number): Promise<FunctionDiff> {
    return this.queries.diffFunction(this.program(program), id, fromVersion, toVersion);
  }

  undoOps(program: string, revision: number): Promise<ServiceOp[]> {
    return this.queries.undoOps(this.program(program), revision);
  }

  redoOps(program: string, revision: number): Promise<ServiceOp[]> {
    return this.queries.redoOps(this.program(program), revision);
  }

  restoreOps(program: string, checkpoint: string): Promise<ServiceOp[]> {
    return this.queries.restoreOps(this.program(program), checkpoint);
  }

  listCheckpoints(program: string): Promise<CheckpointInfo[]> {
    return this.queries.listCheckpoints(this.program(program));
  }

  /**
   * Labels the current revision. Creating a checkpoint changes no function, so it makes no
   * revision of its own (a restore does).
   */
  async createCheckpoint(
    program: string,
    name: string,
    meta: EditMeta,
  ): Promise<{ name: string; revision: number; at: number }> {
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
    const at = this.clock.now();
    const added = await this.store.addCheckpoint(program, {
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

  private async settle(name: string): Promise<void> {
    if (!this.unsure.has(name)) return;
    const loaded = (await this.store.load()).find((p) => p.name === name);
    if (loaded === undefined) this.programs.delete(name);
    else this.programs.set(name, restoreProgram(loaded, this.location));
    this.unsure.delete(name);
  }

  private program(name: string): ProgramState {
    return this.programs.get(name) ?? notFoundThrow(`program ${name} not found`, { program: name });
  }
}

function summary(fn: Pick<StoredFunction, 'body' | 'hash' | 'version'>): FunctionSummary {
  return { id: fn.body.id, name: fn.body.name, hash: fn.hash, version: fn.version };
}
