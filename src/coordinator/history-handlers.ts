import type { ParamsOf, ResultOf } from '../protocol/methods.ts';
import type { Coordinator } from './coordinator.ts';
import type { HandlerTable, MethodSpec } from './call-context.ts';
import { commitEdit, type EditPlan } from './edit-gate.ts';
import { iso } from './wire-map.ts';

const agentsOnly = ['agent'] as const;

/** Nodes and edges a diff may list for the price of one request; bigger diffs cost more. */
const DIFF_ITEMS_PER_REQUEST = 50;

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
  method: M,
  plan: (c: Coordinator, program: string, p: ParamsOf<M>) => Promise<EditPlan>,
): MethodSpec<M> {
  return {
    roles: agentsOnly,
    handle(c, ctx, p) {
      const program = c.programOf(p);
      // All three answer as edit.apply does.
      return commitEdit(c, ctx, method, program, () => plan(c, program, p), p) as Promise<ResultOf<M>>;
    },
  };
}

export const historyHandlers: Pick<HandlerTable, HistoryMethods> = {
  'edit.apply': {
    roles: agentsOnly,
    handle: (c, ctx, p) =>
      commitEdit(c, ctx, 'edit.apply', c.programOf(p), () => ({ ops: p.ops, meta: { kind: 'edit' } }), p),
  },
  'history.undo': replay('history.undo', async (c, program, p) => ({
    ops: await c.programs.undoOps(program, p.revision),
    meta: { kind: 'undo', undoes: p.revision },
  })),
  'history.redo': replay('history.redo', async (c, program, p) => ({
    ops: await c.programs.redoOps(program, p.revision),
    meta: { kind: 'redo', redoes: p.revision },
  })),
  'checkpoint.restore': replay('checkpoint.restore', async (c, program, p) => ({
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
    async handle(c, ctx, p) {
      const program = c.programOf(p);
      const diff = await c.programs.diffRevisions(program, p.from, p.to);
      ctx.charge(diffItems(diff) / DIFF_ITEMS_PER_REQUEST);
      return diff;
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

/** What a revision diff cost to build and costs to send: the nodes and edges it lists. */
function diffItems(diff: ResultOf<'history.diff'>): number {
  let items = 0;
  for (const { diff: d } of diff.functions) {
    items += d.nodes.added.length + d.nodes.removed.length + d.nodes.modified.length;
    items += d.edges.added.length + d.edges.removed.length + d.edges.modified.length;
  }
  return items;
}
