import type { AcquireResult, Grant, ResourceStatus } from '../concurrency/index.ts';
import { LockstepError, RpcCode, RpcProtocolError } from '../protocol/errors.ts';
import { DEFAULT_PROGRAM } from '../protocol/limits.ts';
import type { ParamsOf, ResultOf } from '../protocol/methods.ts';
import { formatResource, isFunction, resourceKey, type Resource } from '../protocol/resource.ts';
import type { Coordinator } from './coordinator.ts';
import type { CallContext, HandlerTable } from './call-context.ts';
import { iso, selectResources, wireAcquireError, wireGrants, wirePositions } from './wire-map.ts';

const agentsOnly = ['agent'] as const;

type LockMethods =
  | 'lock.acquire'
  | 'lock.release'
  | 'lock.releaseAll'
  | 'lock.renew'
  | 'lock.downgrade'
  | 'lock.cancel'
  | 'lock.status';

export const lockHandlers: Pick<HandlerTable, LockMethods> = {
  'lock.acquire': {
    roles: agentsOnly,
    handle(c, ctx, p) {
      const program = p.program ?? DEFAULT_PROGRAM;
      // A path lock needs no function: its program, a namespace, is created empty by the first one
      // (docs/protocol.md, "Paths"). With functions named, an unknown program stays NOT_FOUND.
      if ((p.paths?.length ?? 0) === 0 || (p.functions?.length ?? 0) > 0 || c.programs.hasProgram(program)) {
        return acquire(c, ctx, p);
      }
      return c.programs
        .inOrder(program, async () => {
          if (c.programs.hasProgram(program)) return;
          await c.programs.createProgram(program);
          const by = c.by(ctx.session);
          ctx.afterReply(() => c.events.append('edits', 'programCreated', () => ({ program, ...by })));
        })
        .then(() => {
          // The session may have ended while the program was being created: it gets no lock.
          if (c.sessions.get(ctx.session.id) === undefined) {
            throw new LockstepError('NOT_FOUND', 'the session ended', { sessionId: ctx.session.id });
          }
          return acquire(c, ctx, p);
        });
    },
  },
  // A release or downgrade refused for its journal record stays done: the holder's hold ends when
  // it sends it. It takes effect only after an edit in commit under that lock (EditPins).
  'lock.release': {
    roles: agentsOnly,
    handle(c, { session }, p) {
      const resources = selectResources(p);
      const release = () =>
        c.pins.after(session.id, resources, () =>
          c.durable({ released: c.locks.release(session.id, resources).map((g) => g.resource) }),
        );
      if (p.contents === undefined || p.contents.length === 0) return release();
      // Contents are recorded first, only for paths under a write lock the session holds, and
      // only when every named lock is held: a refused release records nothing (docs/protocol.md).
      const program = p.program ?? DEFAULT_PROGRAM;
      const uncovered = p.contents.filter(
        (ct) => c.locks.pathWriter(session.id, { program, path: ct.path }).held === undefined,
      );
      const missing = resources.filter((r) => c.locks.grantOf(session.id, r) === undefined);
      if (uncovered.length > 0 || missing.length > 0) {
        const resources = [...missing, ...uncovered.map((ct) => ({ program, path: ct.path }))];
        throw new LockstepError('NOT_HELD', `not held: ${resources.map(formatResource).join(', ')}`, { resources });
      }
      const at = c.clock.now();
      const records = p.contents.map((ct) => ({
        path: ct.path,
        blob: ct.blob,
        ...(ct.commit === undefined ? {} : { commit: ct.commit }),
        sessionId: session.id,
        sessionName: session.name,
        at,
      }));
      return c.programs.recordContents(program, records).then(release);
    },
  },
  'lock.releaseAll': {
    roles: agentsOnly,
    handle: (c, { session }) =>
      c.pins.after(session.id, undefined, () =>
        c.durable({ released: c.locks.releaseAll(session.id).map((g) => g.resource) }),
      ),
  },
  // Refused for its record, a renewal keeps the longer lease (its holder believes the shorter one).
  'lock.renew': {
    roles: agentsOnly,
    handle: (c, { session }, p) =>
      c.durable({ grants: wireGrants(c.locks.renew(session.id, selectResources(p), p.ttlMs)) }),
  },
  'lock.downgrade': {
    roles: agentsOnly,
    handle(c, { session }, p) {
      const resources = selectResources(p);
      return c.pins.after(session.id, resources, () =>
        c.durable({ grants: wireGrants(c.locks.downgrade(session.id, resources)) }),
      );
    },
  },
  'lock.cancel': {
    roles: agentsOnly,
    handle(c, { session }, p) {
      c.locks.cancel(session.id, p.ticket);
      return { ticket: p.ticket, cancelled: true };
    },
  },
  'lock.status': {
    handle(c, _ctx, p) {
      if (p.program !== undefined) c.requireProgram(p.program);
      return { resources: c.locks.status(p.program).map((r) => wireStatus(c, r)) };
    },
  },
};

/** lock.acquire once its program exists. */
function acquire(
  c: Coordinator,
  { session }: CallContext,
  p: ParamsOf<'lock.acquire'>,
): ResultOf<'lock.acquire'> | Promise<ResultOf<'lock.acquire'>> {
  const resources = selectResources(p);
  const { maxBatch, maxDescription } = c.options.limits;
  if (resources.length > maxBatch) {
    throw new RpcProtocolError(
      RpcCode.INVALID_PARAMS,
      `Invalid params for lock.acquire: ${resources.length} resources, at most ${maxBatch} in one request`,
      { limit: 'maxBatch', maxBatch },
    );
  }
  if (p.description !== undefined && p.description.length > maxDescription) {
    throw new RpcProtocolError(
      RpcCode.INVALID_PARAMS,
      `Invalid params for lock.acquire: description longer than ${maxDescription} characters`,
      { limit: 'maxDescription', maxDescription },
    );
  }
  // A retried key gets its request's answer, whatever changed since (docs/protocol.md, `lock.acquire`: never a second outcome).
  if (p.key === undefined || !c.locks.knowsKey(session.id, p.key)) {
    requireFunctions(c, c.programOf(p), resources);
    checkSessionLimits(c, session.id, resources, p.wait === true);
  }
  // Cluster mode: what the session held before, for undoing the grant if its record fails.
  const before = c.journaled ? heldBefore(c, session.id, resources) : undefined;
  let out: AcquireResult;
  try {
    out = c.locks.acquire(session.id, {
      resources,
      mode: p.mode,
      ...(p.ttlMs === undefined ? {} : { ttlMs: p.ttlMs }),
      ...(p.description === undefined ? {} : { description: p.description }),
      ...(p.wait === undefined ? {} : { wait: p.wait }),
      ...(p.waitTimeoutMs === undefined ? {} : { waitTimeoutMs: p.waitTimeoutMs }),
      ...(p.key === undefined ? {} : { key: p.key }),
    });
  } catch (err) {
    throw wireAcquireError(err);
  }
  // A ticket is not journaled (never restored): a queued answer tells of no lock change.
  if (out.status === 'queued') return { status: 'queued', ticket: out.ticket, positions: wirePositions(out.positions) };
  const { grants } = out;
  return c.durable(
    { status: 'granted', grants: wireGrants(grants) },
    before === undefined ? undefined : () => undoGrants(c, session.id, before, grants, p.key),
  );
}

function heldBefore(c: Coordinator, sessionId: string, resources: readonly Resource[]): Map<string, Grant> {
  const held = new Map<string, Grant>();
  for (const r of resources) {
    const g = c.locks.grantOf(sessionId, r);
    if (g !== undefined) held.set(resourceKey(r), g);
  }
  return held;
}

/**
 * What an acquire refused for its journal record leaves (docs/protocol.md, lock.acquire): a lock
 * it granted anew is released and one it upgraded is a read lock again (with the new fence),
 * while a refresh of a lock held before stays; a lock that changed since (it expired, was
 * released) is left alone. If it granted anything, its key's outcome is forgotten, so that a
 * retry asks afresh instead of being answered with the undone grant. After any edit in commit
 * under those locks, as a release would be.
 */
function undoGrants(
  c: Coordinator,
  sessionId: string,
  before: ReadonlyMap<string, Grant>,
  grants: readonly Grant[],
  key: string | undefined,
): unknown {
  const fresh = grants.filter((g) => {
    const was = before.get(resourceKey(g.resource));
    return was === undefined || was.fence !== g.fence;
  });
  if (fresh.length === 0) return undefined;
  if (key !== undefined) c.locks.forgetKey(sessionId, key);
  const resources = fresh.map((g) => g.resource);
  return c.pins.after(sessionId, resources, () => {
    const still = fresh.filter((g) => c.locks.grantOf(sessionId, g.resource)?.fence === g.fence);
    const release = still.filter((g) => !before.has(resourceKey(g.resource))).map((g) => g.resource);
    const downgrade = still.filter((g) => before.has(resourceKey(g.resource))).map((g) => g.resource);
    if (release.length > 0) c.locks.release(sessionId, release);
    if (downgrade.length > 0) c.locks.downgrade(sessionId, downgrade);
  });
}

function checkSessionLimits(c: Coordinator, sessionId: string, resources: readonly Resource[], wait: boolean): void {
  const { maxLocksPerSession, maxTicketsPerSession } = c.options.limits;
  // Queued tickets count as the locks they will become: otherwise queueing first and taking free
  // locks meanwhile would end above the limit once the tickets are granted.
  const tickets = c.locks.tickets(sessionId);
  const claimed = new Set(c.locks.holding(sessionId).map((g) => resourceKey(g.resource)));
  for (const t of tickets) for (const r of t.resources) claimed.add(resourceKey(r));
  const fresh = resources.filter((r) => !claimed.has(resourceKey(r))).length;
  if (claimed.size + fresh > maxLocksPerSession) {
    throw new LockstepError('RATE_LIMITED', `a session may hold and wait for at most ${maxLocksPerSession} locks`, {
      limit: 'maxLocksPerSession',
      maxLocksPerSession,
      claimed: claimed.size,
    });
  }
  if (wait && tickets.length >= maxTicketsPerSession) {
    throw new LockstepError('RATE_LIMITED', `a session may have at most ${maxTicketsPerSession} queued requests`, {
      limit: 'maxTicketsPerSession',
      maxTicketsPerSession,
    });
  }
}

/** The lock core treats resources as opaque; whether a function exists is checked here. */
function requireFunctions(c: Coordinator, program: string, resources: readonly Resource[]): void {
  const missing = resources.flatMap((r) =>
    !isFunction(r) || c.programs.hasFunction(r.program, r.function) ? [] : [r.function],
  );
  if (missing.length > 0) {
    throw new LockstepError('NOT_FOUND', `unknown functions in ${program}: ${missing.join(', ')}`, {
      program,
      functions: missing,
    });
  }
}

function wireStatus(c: Coordinator, r: ResourceStatus): ResultOf<'lock.status'>['resources'][number] {
  return {
    resource: r.resource,
    holders: r.holders.map((h) => ({
      sessionId: h.sessionId,
      name: c.nameOf(h.sessionId),
      mode: h.mode,
      fence: h.fence,
      grantedAt: iso(h.grantedAt),
      expiresAt: iso(h.expiresAt),
      ...(h.description === undefined ? {} : { description: h.description }),
    })),
    queue: r.queue.map((q) => ({
      ticket: q.ticket,
      sessionId: q.sessionId,
      name: c.nameOf(q.sessionId),
      mode: q.mode,
      position: q.position,
      upgrade: q.upgrade,
      ...(q.description === undefined ? {} : { description: q.description }),
    })),
  };
}
