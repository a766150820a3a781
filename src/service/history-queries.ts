import { LockstepError } from '../protocol/errors.ts';
import type { FunctionDiff } from '../protocol/program.ts';
import { diffFunctions, emptied } from './diff.ts';
import { notFound, notFoundThrow } from './lookup-errors.ts';
import type { ProgramState } from './model.ts';
import type { ServiceOp } from './ops.ts';
import type { CheckpointInfo, RevisionDiff, RevisionInfo } from './service-types.ts';
import type { ProgramStore, RevisionRecord, VersionRecord } from './store.ts';
import { transitionOps } from './transition.ts';
import type { Transition } from './transition.ts';

const DEFAULT_HISTORY_LIMIT = 100;
const MAX_HISTORY_LIMIT = 1000;

/** Everything that reads a program's past: history, diffs between revisions, undo/redo/restore ops. */
export class HistoryQueries {
  constructor(private readonly store: ProgramStore) {}

  async history(p: ProgramState, opts: { after?: number; limit?: number }): Promise<RevisionInfo[]> {
    const limit = Math.min(Math.max(1, Math.trunc(opts.limit ?? DEFAULT_HISTORY_LIMIT)), MAX_HISTORY_LIMIT);
    return (await this.store.revisions(p.name, opts.after ?? 0, limit)).map(revisionInfo);
  }

  async diffRevisions(p: ProgramState, from: number, to: number): Promise<RevisionDiff> {
    const program = p.name;
    requireRevision(p, from);
    requireRevision(p, to);
    const ids = await this.store.changedBetween(program, Math.min(from, to), Math.max(from, to));
    const [before, after] = await Promise.all([
      this.store.stateAt(program, from, ids),
      this.store.stateAt(program, to, ids),
    ]);
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

  async diffFunction(p: ProgramState, id: number, fromVersion: number, toVersion: number): Promise<FunctionDiff> {
    const program = p.name;
    const load = async (version: number): Promise<VersionRecord> =>
      (await this.store.version(program, id, version)) ??
      notFoundThrow(`function ${id} of program ${program} has no version ${version}`, {
        program,
        function: id,
        version,
      });
    const from = await load(fromVersion);
    return diffFunctions(from.body, (await load(toVersion)).body);
  }

  /**
   * The ops that revert what `revision` changed, applied to the current state (like `git revert`):
   * later changes elsewhere survive, a function the revision added is removed with whatever it
   * has gained since, and a function it removed comes back under its own id.
   */
  async undoOps(p: ProgramState, revision: number): Promise<ServiceOp[]> {
    await this.revisionRecord(p.name, revision);
    return this.revertOps(p, revision);
  }

  /** The ops that re-apply what the undo revision `revision` reverted. */
  async redoOps(p: ProgramState, revision: number): Promise<ServiceOp[]> {
    const record = await this.revisionRecord(p.name, revision);
    if (record.kind !== 'undo') {
      const reason = `revision ${revision} is not an undo (it is a ${record.kind})`;
      throw new LockstepError('INVALID_EDIT', reason, { program: p.name, revision, reason });
    }
    return this.revertOps(p, revision);
  }

  /** Ops that turn the current state into the checkpoint's state (empty when they are equal). */
  async restoreOps(p: ProgramState, checkpoint: string): Promise<ServiceOp[]> {
    const program = p.name;
    const cp =
      (await this.store.checkpoint(program, checkpoint)) ??
      notFoundThrow(`checkpoint ${checkpoint} not found in program ${program}`, { program, checkpoint });
    const ids = await this.store.changedBetween(program, cp.revision, p.revision);
    const target = await this.store.stateAt(program, cp.revision, ids);
    const transitions: Transition[] = ids.map((id) => ({
      id,
      from: p.functions.get(id)?.body ?? null,
      to: target.get(id)?.body ?? null,
    }));
    return transitionOps(transitions, new Set(p.idsByName.keys()));
  }

  async listCheckpoints(p: ProgramState): Promise<CheckpointInfo[]> {
    return (await this.store.checkpoints(p.name)).map((cp) => ({
      name: cp.name,
      revision: cp.revision,
      at: cp.at,
      by: { sessionId: cp.sessionId, name: cp.sessionName },
    }));
  }

  private async revertOps(p: ProgramState, revision: number): Promise<ServiceOp[]> {
    const transitions: Transition[] = (await this.store.revisionChanges(p.name, revision)).map((c) => ({
      id: c.functionId,
      from: c.after?.body ?? null,
      to: c.before?.body ?? null,
    }));
    return transitionOps(transitions, new Set(p.idsByName.keys()));
  }

  private async revisionRecord(program: string, revision: number): Promise<RevisionRecord> {
    return (
      (await this.store.revision(program, revision)) ??
      notFoundThrow(`revision ${revision} not found in program ${program}`, { program, revision })
    );
  }
}

function requireRevision(p: ProgramState, revision: number): void {
  if (!Number.isSafeInteger(revision) || revision < 0 || revision > p.revision) {
    throw notFound(`revision ${revision} not found in program ${p.name}`, { program: p.name, revision });
  }
}

function revisionInfo(r: RevisionRecord): RevisionInfo {
  const { sessionId, sessionName, ...rest } = r;
  return { ...rest, by: { sessionId, name: sessionName } };
}
