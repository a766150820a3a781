import type { SessionInfo } from '../concurrency/index.ts';
import { LockstepError } from '../protocol/errors.ts';
import type { ResultOf } from '../protocol/methods.ts';
import { formatResource, isFunction, isStructure, type Resource } from '../protocol/resource.ts';
import { claimedResource, type EditMeta, type EditResult, type FenceClaim, type ServiceOp } from '../service/index.ts';
import type { Coordinator } from './coordinator.ts';
import type { CallContext } from './call-context.ts';
import { iso } from './wire-map.ts';

export interface EditChecks {
  expectedHashes?: Record<string, string> | undefined;
  fences?: Record<string, number> | undefined;
  /** Idempotency key: a retry answers with the first result instead of applying again. */
  key?: string | undefined;
}

/** The methods that change a program, all through commitEdit. */
export type EditMethod = 'edit.apply' | 'history.undo' | 'history.redo' | 'checkpoint.restore';

/** Who tried which change, for the `conflict` events of refused edits. */
interface Attempt {
  session: SessionInfo;
  program: string;
  method: EditMethod;
}

/** What an edit applies, decided once its turn on the program has come. */
export interface EditPlan {
  ops: ServiceOp[];
  meta: Omit<EditMeta, 'sessionId' | 'name'>;
}

/**
 * The one road every change to a program takes (edit.apply, undo, redo, restore), with the check
 * order of docs/protocol.md (`edit.apply`): locks held, fences current, expected hashes unchanged, then the operations
 * themselves; commit, reply, and only after the reply tell the watchers. The plan, the checks and
 * the commit run in the program's order (ProgramService.inOrder), so the checks see the state the
 * commit applies to.
 */
export function commitEdit(
  c: Coordinator,
  ctx: CallContext,
  method: EditMethod,
  program: string,
  plan: () => EditPlan | Promise<EditPlan>,
  checks: EditChecks,
): Promise<ResultOf<'edit.apply'>> {
  c.requireProgram(program);
  // The very promise the call answers with: a disconnect meanwhile ends the session after it.
  return c.committing(
    ctx.session.id,
    c.programs.inOrder(program, async () => {
      c.requireProgram(program);
      // Before any check: a retry of an edit that committed answers with its result even after
      // its locks are gone (docs/protocol.md, edit.apply); only the session's own keys count.
      const prior =
        checks.key === undefined ? undefined : await c.programs.keyedResult(program, ctx.session.id, checks.key);
      if (prior !== undefined) {
        return { revision: prior.revision, functions: prior.functions, created: prior.created, removed: prior.removed };
      }
      const { ops, meta } = await plan();
      return applyChecked(c, ctx, { session: ctx.session, program, method }, ops, checks, meta);
    }),
  );
}

async function applyChecked(
  c: Coordinator,
  ctx: CallContext,
  attempt: Attempt,
  ops: ServiceOp[],
  checks: EditChecks,
  meta: EditPlan['meta'],
): Promise<ResultOf<'edit.apply'>> {
  const { session, program } = attempt;
  const fences = checkLocks(c, attempt, ops);
  checkFences(c, attempt, checks.fences);
  await checkHashes(c, attempt, checks.expectedHashes);

  const removedVersions = new Map<number, number>();
  for (const op of ops) {
    if (op.op === 'removeFunction' && typeof op.function === 'number' && c.programs.hasFunction(program, op.function)) {
      removedVersions.set(op.function, c.programs.getFunction(program, op.function).version);
    }
  }

  // Check and commit are one step: while the commit is in flight (a round trip to PostgreSQL) the
  // locks it was checked under can neither expire nor be released (by a disconnect, or by a
  // release or downgrade from another socket of the session: they wait, see EditPins).
  const unpin = c.pins.pin(
    session.id,
    fences.map((f) => claimedResource(program, f.resource)),
  );
  let result: EditResult;
  try {
    result = await c.programs.applyEdit(program, ops, {
      ...meta,
      sessionId: session.id,
      name: session.name,
      fences,
      ...(checks.key === undefined ? {} : { key: checks.key }),
    });
  } catch (err) {
    unpin();
    throw err;
  }
  // An undo, redo or restore whose effect is already there: no revision, nothing to tell.
  if (!result.committed) {
    unpin();
    return { revision: result.revision, functions: [], created: [], removed: [] };
  }
  const by = c.by(session);
  c.metrics.edits.inc({ kind: meta.kind ?? 'edit' });

  ctx.afterReply(() => {
    if (result.removed.length > 0) {
      const gone = new Set(result.removed);
      // Tickets waiting on a removed function can never be granted: withdraw them (lock.cancelled).
      c.locks.dropResources((r) => r.program === program && 'function' in r && gone.has(r.function));
    }
    for (const f of result.functions) {
      for (const watcher of c.watches.watchers(program, f.id)) {
        c.notify(watcher, 'function.changed', {
          program,
          function: f.id,
          hash: f.hash,
          version: f.version,
          revision: result.revision,
          by,
        });
      }
    }
    tellRemoved(
      c,
      program,
      result.removed.map((id) => ({ id, version: removedVersions.get(id) ?? 0 })),
      result.revision,
      by,
    );
    c.events.append('edits', 'committed', () => ({
      program,
      revision: result.revision,
      kind: meta.kind ?? 'edit',
      ...by,
      at: iso(result.at),
      functions: result.functions,
      created: result.created,
      removed: result.removed,
    }));
  });

  // After the commit's pushes: its lock ends (an expiry held back) only once the edit is told.
  ctx.afterReply(unpin);

  return { revision: result.revision, functions: result.functions, created: result.created, removed: result.removed };
}

/** A removed function's watchers get a last function.changed, and their watch ends. */
export function tellRemoved(
  c: Coordinator,
  program: string,
  gone: ReadonlyArray<{ id: number; version: number }>,
  revision: number,
  by: { sessionId: string; name: string },
): void {
  for (const { id, version } of gone) {
    for (const watcher of c.watches.watchers(program, id)) {
      c.notify(watcher, 'function.changed', {
        program,
        function: id,
        hash: null,
        version,
        revision,
        by,
        removed: true,
      });
    }
    c.watches.forget(program, id);
  }
}

/**
 * A refused edit goes on the `edits` topic as a `conflict`, so observers see contention that never
 * became a revision: who, which functions failed the check, and which check (lock, fence or hash).
 */
function refused(
  c: Coordinator,
  { session, program, method }: Attempt,
  reason: 'lock' | 'fence' | 'hash',
  resources: readonly Resource[],
): void {
  const functions = resources.flatMap((r) => (isFunction(r) ? [r.function] : []));
  const structure = resources.some(isStructure);
  const by = c.by(session);
  c.logger.info({ ...by, program, method, reason, functions, structure }, 'edit refused');
  c.events.append('edits', 'conflict', () => ({
    ...by,
    program,
    method,
    reason,
    functions,
    ...(structure ? { structure: true } : {}),
  }));
}

/** Returns the fences of the grants the edit is made under, for the store to check as it commits. */
function checkLocks(c: Coordinator, attempt: Attempt, ops: ServiceOp[]): FenceClaim[] {
  const { session, program } = attempt;
  const missing: Resource[] = [];
  const claims: FenceClaim[] = [];
  for (const need of c.programs.requiredLocks(program, ops)) {
    const grant = c.locks.grantOf(session.id, need.resource);
    if (grant === undefined || grant.mode !== need.mode) missing.push(need.resource);
    else
      claims.push({
        resource: isFunction(need.resource) ? String(need.resource.function) : 'structure',
        fence: grant.fence,
      });
  }
  if (missing.length > 0) {
    refused(c, attempt, 'lock', missing);
    throw new LockstepError(
      'LOCK_REQUIRED',
      `the edit needs write locks on ${missing.map(formatResource).join(', ')}`,
      { missing, mode: 'write' },
    );
  }
  return claims;
}

function checkFences(c: Coordinator, attempt: Attempt, fences: Record<string, number> | undefined): void {
  if (fences === undefined) return;
  const { session, program } = attempt;
  const stale: Array<{ resource: Resource; fence: number; current: number | null }> = [];
  for (const [key, fence] of Object.entries(fences)) {
    const resource: Resource = key === 'structure' ? { program, structure: true } : { program, function: Number(key) };
    const grant = c.locks.grantOf(session.id, resource);
    if (grant?.fence !== fence) stale.push({ resource, fence, current: grant?.fence ?? null });
  }
  if (stale.length > 0) {
    refused(
      c,
      attempt,
      'fence',
      stale.map((s) => s.resource),
    );
    throw new LockstepError(
      'STALE_FENCE',
      `fence tokens are not the current grants: ${stale.map((s) => formatResource(s.resource)).join(', ')}`,
      { stale },
    );
  }
}

async function checkHashes(
  c: Coordinator,
  attempt: Attempt,
  expected: Record<string, string> | undefined,
): Promise<void> {
  if (expected === undefined) return;
  const conflicts = await c.programs.checkExpected(attempt.program, expected);
  if (conflicts.length > 0) {
    c.metrics.conflicts.inc();
    refused(
      c,
      attempt,
      'hash',
      conflicts.map((x) => ({ program: attempt.program, function: x.functionId })),
    );
    throw new LockstepError(
      'CONFLICT',
      `functions changed since the expected hashes: ${conflicts.map((x) => x.functionId).join(', ')}`,
      { conflicts },
    );
  }
}
