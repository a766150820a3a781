import type { ParamsOf, ResultOf } from '../protocol/methods.ts';
import type { Coordinator } from './coordinator.ts';
import type { HandlerTable, MethodSpec } from './dispatch.ts';
import { commitEdit, type EditPlan } from './edit-gate.ts';
import { iso } from './wire-map.ts';

const agentsOnly = ['agent'] as const;

type HistoryMethods =
  | 'edit.apply'
  | 'history.list'
  | 'history.diff'
  | 'history.undo'
  | 'history.redo'
  | 'checkpoint.create'
  | 'checkpoint.list'
  | 'checkpoint.restore';

type Replays = 'history.undo' | 'history.redo' | 'checkpoint.restore';

/**
 * Undo, redo and restore are turned into plain operations first, so they take exactly the road an
 * edit takes: same locks, same fences, same conflict checks.
 */
function replay<M extends Replays>(
  plan: (c: Coordinator, program: string, p: ParamsOf<M>) => Promise<EditPlan>,
): MethodSpec<M> {
  return {
    roles: agentsOnly,
    handle(c, ctx, p) {
      const program = c.programOf(p);
      // All three answer as edit.apply does.
      return commitEdit(c, ctx, program, () => plan(c, program, p), p) as Promise<ResultOf<M>>;
    },
  };
}

export const historyHandlers: Pick<HandlerTable, HistoryMethods> = {
  'edit.apply': {
    roles: agentsOnly,
    handle: (c, ctx, p) => commitEdit(c, ctx, c.programOf(p), () => ({ ops: p.ops, meta: { kind: 'edit' } }), p),
  },
  'history.undo': replay(async (c, program, p) => ({
    ops: await c.programs.undoOps(program, p.revision),
    meta: { kind: 'undo', undoes: p.revision },
  })),
  'history.redo': replay(async (c, program, p) => ({
    ops: await c.programs.redoOps(program, p.revision),
    meta: { kind: 'redo', redoes: p.revision },
  })),
  'checkpoint.restore': replay(async (c, program, p) => ({
    ops: await c.programs.restoreOps(program, p.name),
    meta: { kind: 'restore', checkpoint: p.name },
  })),
  'history.list': {
    async handle(c, _ctx, p) {
      const program = c.programOf(p);
      const revisions = await c.programs.history(program, {
        ...(p.after === undefined ? {} : { after: p.after }),
        ...(p.limit === undefined ? {} : { limit: p.limit }),
      });
      return { revisions: revisions.map((r) => ({ ...r, at: iso(r.at) })) };
    },
  },
  'history.diff': {
    handle(c, _ctx, p) {
      const program = c.programOf(p);
      return c.programs.diffRevisions(program, p.from, p.to);
    },
  },
  'checkpoint.create': {
    roles: agentsOnly,
    async handle(c, { session }, p) {
      const program = c.programOf(p);
      // In the program's order: a checkpoint labels the revision of the edits acknowledged before it.
      const cp = await c.programs.inOrder(program, () =>
        c.programs.createCheckpoint(program, p.name, { sessionId: session.id, name: session.name }),
      );
      return { name: cp.name, revision: cp.revision, at: iso(cp.at) };
    },
  },
  'checkpoint.list': {
    async handle(c, _ctx, p) {
      const program = c.programOf(p);
      return { checkpoints: (await c.programs.listCheckpoints(program)).map((cp) => ({ ...cp, at: iso(cp.at) })) };
    },
  },
};
