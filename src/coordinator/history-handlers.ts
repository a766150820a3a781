import type { HandlerTable } from './dispatch.ts';
import { commitEdit } from './edit-gate.ts';
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

// Undo, redo and restore are turned into plain operations first, so they take exactly the road an
// edit takes: same locks, same fences, same conflict checks.
export const historyHandlers: Pick<HandlerTable, HistoryMethods> = {
  'edit.apply': {
    roles: agentsOnly,
    handle: (c, ctx, p) => commitEdit(c, ctx, c.programOf(p), p.ops, p, { kind: 'edit' }),
  },
  'history.undo': {
    roles: agentsOnly,
    handle(c, ctx, p) {
      const program = c.programOf(p);
      return commitEdit(c, ctx, program, c.programs.undoOps(program, p.revision), p, { kind: 'undo', undoes: p.revision });
    },
  },
  'history.redo': {
    roles: agentsOnly,
    handle(c, ctx, p) {
      const program = c.programOf(p);
      return commitEdit(c, ctx, program, c.programs.redoOps(program, p.revision), p, { kind: 'redo', redoes: p.revision });
    },
  },
  'checkpoint.restore': {
    roles: agentsOnly,
    handle(c, ctx, p) {
      const program = c.programOf(p);
      return commitEdit(c, ctx, program, c.programs.restoreOps(program, p.name), p, { kind: 'restore', checkpoint: p.name });
    },
  },
  'history.list': {
    handle(c, _ctx, p) {
      const program = c.programOf(p);
      const revisions = c.programs.history(program, { ...(p.after === undefined ? {} : { after: p.after }), limit: p.limit ?? 100 });
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
    handle(c, { session }, p) {
      const program = c.programOf(p);
      const cp = c.programs.createCheckpoint(program, p.name, { sessionId: session.id, name: session.name });
      return { name: cp.name, revision: cp.revision, at: iso(cp.at) };
    },
  },
  'checkpoint.list': {
    handle(c, _ctx, p) {
      const program = c.programOf(p);
      return { checkpoints: c.programs.listCheckpoints(program).map((cp) => ({ ...cp, at: iso(cp.at) })) };
    },
  },
};
