import type { ResourceStatus } from '../concurrency/index.ts';
import { LockstepError } from '../protocol/errors.ts';
import { DEFAULT_PROGRAM } from '../protocol/limits.ts';
import type { ResultOf } from '../protocol/methods.ts';
import { isFunction } from '../protocol/resource.ts';
import type { Coordinator } from './coordinator.ts';
import type { CallContext, HandlerTable } from './call-context.ts';
import { tellRemoved } from './edit-gate.ts';
import { iso } from './wire-map.ts';

const agentsOnly = ['agent'] as const;

type ProgramMethods =
  | 'program.list'
  | 'program.create'
  | 'program.delete'
  | 'program.get'
  | 'function.get'
  | 'function.watch'
  | 'function.unwatch';

export const programHandlers: Pick<HandlerTable, ProgramMethods> = {
  'program.list': { handle: (c) => ({ programs: c.programs.listPrograms() }) },
  'program.create': {
    roles: agentsOnly,
    async handle(c, { session, afterReply }, p) {
      const created = await c.programs.inOrder(p.name, () => c.programs.createProgram(p.name));
      afterReply(() => c.events.append('edits', 'programCreated', () => ({ program: p.name, ...c.by(session) })));
      return created;
    },
  },
  'program.delete': {
    roles: agentsOnly,
    handle(c, ctx, p) {
      c.requireProgram(p.program);
      return c.programs.inOrder(p.program, () => deleteProgram(c, ctx, p.program));
    },
  },
  'program.get': {
    handle(c, _ctx, p) {
      const name = c.programOf(p);
      const overview = c.programs.getProgram(name);
      const state = new Map<number, ResourceStatus>();
      for (const r of c.locks.status(name)) if (isFunction(r.resource)) state.set(r.resource.function, r);
      return {
        name: overview.name,
        revision: overview.revision,
        functions: overview.functions.map((f) => ({ ...f, lock: lockState(c, state.get(f.id)) })),
      };
    },
  },
  'function.get': {
    handle: (c, _ctx, p) => {
      const program = c.programOf(p);
      return c.programs.getFunction(program, p.function);
    },
  },
  'function.watch': {
    handle(c, { session }, p) {
      const program = c.programOf(p);
      const missing = p.functions.filter((f) => !c.programs.hasFunction(program, f));
      if (missing.length > 0)
        throw new LockstepError('NOT_FOUND', `unknown functions in ${program}: ${missing.join(', ')}`, {
          program,
          functions: missing,
        });
      return { program, watching: c.watches.watch(session.id, program, p.functions) };
    },
  },
  'function.unwatch': {
    handle(c, { session }, p) {
      const program = p.program ?? DEFAULT_PROGRAM;
      return { program, watching: c.watches.unwatch(session.id, program, p.functions) };
    },
  },
};

/** Runs in the program's order: no edit of it can be committing while it goes. */
async function deleteProgram(
  c: Coordinator,
  { session, afterReply }: CallContext,
  program: string,
): Promise<ResultOf<'program.delete'>> {
  c.requireProgram(program);
  const structure = { program, structure: true } as const;

  if (c.locks.grantOf(session.id, structure)?.mode !== 'write') {
    throw new LockstepError('LOCK_REQUIRED', `deleting ${program} needs its structure write lock`, {
      missing: [structure],
      mode: 'write',
    });
  }
  // Deleting under someone else's lock would pull the ground from under an agent mid-edit.
  const blockers = c.locks
    .status(program)
    .map((r) => ({
      resource: r.resource,
      holders: r.holders.filter((h) => h.sessionId !== session.id),
      queueLength: r.queue.length,
    }))
    .filter((b) => b.holders.length > 0);
  if (blockers.length > 0) {
    const soonest = Math.min(...blockers.flatMap((b) => b.holders.map((h) => h.expiresAt)));
    throw new LockstepError(
      'LOCK_DENIED',
      `other sessions hold locks in ${program}`,
      {
        blockers: blockers.map((b) => ({
          ...b,
          holders: b.holders.map((h) => ({
            sessionId: h.sessionId,
            name: c.nameOf(h.sessionId),
            mode: h.mode,
            ...(h.description === undefined ? {} : { description: h.description }),
            expiresAt: iso(h.expiresAt),
          })),
        })),
      },
      soonest - c.clock.now(),
    );
  }
  const { revision, functions } = c.programs.getProgram(program);
  await c.programs.deleteProgram(program);
  afterReply(() => {
    c.locks.dropResources((r) => r.program === program);
    tellRemoved(c, program, functions, revision, c.by(session));
    c.watches.forget(program);
    c.events.append('edits', 'programDeleted', () => ({ program: program, ...c.by(session) }));
  });
  return { deleted: program };
}

type LockState = ResultOf<'program.get'>['functions'][number]['lock'];

function lockState(c: Coordinator, s: ResourceStatus | undefined): LockState {
  if (s === undefined) return null;
  return {
    // Free but awaited (a batch at the front still waiting for its other resources): mode null.
    mode: s.holders[0]?.mode ?? null,
    holders: s.holders.map((h) => ({ sessionId: h.sessionId, name: c.nameOf(h.sessionId) })),
    queued: s.queue.length,
  };
}
