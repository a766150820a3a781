import { LockstepError } from '../protocol/errors.ts';
import type { Resource } from '../protocol/resource.ts';
import type { CycleEntry } from './lock-types.ts';
import type { ResourceSlot, Ticket } from './resource-slot.ts';
import { copyResource } from './snapshots.ts';

/** `from` waits for `to` because of `ticket`, on `resource`. */
export interface WaitEdge {
  from: string;
  to: string;
  ticket: Ticket;
  resource: Resource;
}

/**
 * The sessions a waiting ticket waits for: on each of its resources, the other sessions holding
 * a conflicting lock, and the nearest other session's ticket ahead of it. docs/protocol.md says "every
 * ticket ahead", but that ticket itself waits for everything ahead of it, so reachability — all a
 * cycle search needs — is the same, and a long queue is walked once instead of once per waiter.
 */
export function waitEdges(t: Ticket): WaitEdge[] {
  const out: WaitEdge[] = [];
  for (const slot of t.slots) {
    for (const to of slot.waitsFor(t)) out.push({ from: t.sessionId, to, ticket: t, resource: slot.resource });
  }
  // A path's ticket also waits on the paths above it (PathSlot.waitsFor).
  for (const slot of t.intents) {
    for (const to of slot.waitsFor(t)) out.push({ from: t.sessionId, to, ticket: t, resource: slot.resource });
  }
  return out;
}

/**
 * A path of wait-for edges from session `from`, starting with one of `first`, to session
 * `target`; `edgesOf` gives a session's outgoing edges (those of all its waiting tickets).
 */
export function findWaitPath(
  from: string,
  first: readonly WaitEdge[],
  target: string,
  edgesOf: (sessionId: string) => WaitEdge[],
): WaitEdge[] | undefined {
  const via = new Map<string, WaitEdge>();
  const seen = new Set<string>([from]);
  const stack = [...first];
  while (stack.length > 0) {
    const e = stack.pop()!;
    if (e.to === target) {
      const path = [e];
      for (let s = e.from; s !== from; ) {
        const step = via.get(s)!;
        path.push(step);
        s = step.from;
      }
      return path.reverse();
    }
    if (seen.has(e.to)) continue;
    seen.add(e.to);
    via.set(e.to, e);
    for (const next of edgesOf(e.to)) stack.push(next);
  }
  return undefined;
}

/** A session's outgoing wait-for edges: those of all its waiting tickets. */
export type EdgesOf = (sessionId: string) => WaitEdge[];

/**
 * The wait-for cycle the newly queued ticket `t` would close, if any. Its own edges are new, and
 * so are the edges of a ticket that now stands right behind one of its front entries without
 * already waiting for this session's lock there.
 */
export function cycleThrough(t: Ticket, fronts: readonly ResourceSlot[], edgesOf: EdgesOf): WaitEdge[] | undefined {
  const closing = findWaitPath(t.sessionId, waitEdges(t), t.sessionId, edgesOf);
  if (closing !== undefined) return closing;
  for (const slot of fronts) {
    for (const behind of slot.newlyBehind(t)) {
      const path = findWaitPath(t.sessionId, edgesOf(t.sessionId), behind.sessionId, edgesOf);
      if (path !== undefined) {
        return [...path, { from: behind.sessionId, to: t.sessionId, ticket: behind, resource: slot.resource }];
      }
    }
  }
  return undefined;
}

/**
 * The cycle an immediate path grant would close: the tickets it goes past (path-rules.ts,
 * pathOvertaken) wait for this session from then on; if it waits itself, directly or not, for
 * one of them, granting would deadlock them both, so it is refused as a wait that closes a cycle.
 */
export function cycleByJump(
  sessionId: string,
  overtaken: ReadonlyArray<{ slot: ResourceSlot; ticket: Ticket }>,
  edgesOf: EdgesOf,
): WaitEdge[] | undefined {
  for (const { slot, ticket } of overtaken) {
    const path = findWaitPath(sessionId, edgesOf(sessionId), ticket.sessionId, edgesOf);
    if (path !== undefined)
      return [...path, { from: ticket.sessionId, to: sessionId, ticket, resource: slot.resource }];
  }
  return undefined;
}

/**
 * The cycle an immediate upgrade (sole reader of `readSlots` asking for write) would close. It
 * waits for nobody, but readers queued behind it, which did not conflict with its read lock,
 * would now wait for it: if this session itself waits, directly or not, for one of them, granting
 * would deadlock them both, so the upgrade is refused like a wait that closes a cycle.
 */
export function cycleByUpgrade(
  sessionId: string,
  readSlots: readonly ResourceSlot[],
  edgesOf: EdgesOf,
): WaitEdge[] | undefined {
  for (const slot of readSlots) {
    for (const q of slot.queue) {
      if (q.sessionId === sessionId || slot.conflicting(q.sessionId, q.mode).some((h) => h.sessionId === sessionId))
        continue;
      const path = findWaitPath(sessionId, edgesOf(sessionId), q.sessionId, edgesOf);
      if (path !== undefined)
        return [...path, { from: q.sessionId, to: sessionId, ticket: q, resource: slot.resource }];
    }
  }
  return undefined;
}

/** The cycle as DEADLOCK names it; the ticket being refused never existed, so its step names no ticket. */
export function describeCycle(
  edges: readonly WaitEdge[],
  sessionName: (sessionId: string) => string | undefined,
  pending?: Ticket,
): CycleEntry[] {
  return edges.map((e) => {
    const name = sessionName(e.from);
    return {
      sessionId: e.from,
      ...(name === undefined ? {} : { name }),
      ...(e.ticket === pending ? {} : { ticket: e.ticket.id }),
      resource: copyResource(e.resource),
    };
  });
}

export function deadlockError(cycle: readonly CycleEntry[]): LockstepError {
  const names = cycle.map((c) => c.name ?? c.sessionId);
  return new LockstepError('DEADLOCK', `would deadlock: ${[...names, names[0]].join(' -> ')}`, { cycle });
}
