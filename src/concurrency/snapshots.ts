import type { Resource } from '../protocol/resource.ts';
import { compareResources } from '../protocol/resource.ts';
import type { LockMode } from '../protocol/resource.ts';
import type { Blocker, Grant, QueuePosition, ResourceStatus, TicketInfo } from './lock-types.ts';
import { PathSlot } from './path-slot.ts';
import type { Hold, ResourceSlot, Ticket } from './resource-slot.ts';

// Everything handed out is a fresh copy: a caller or listener mutating it cannot reach the state.

/** Where the ticket stands now, which may be ahead of what its session was last told (coalesced pushes). */
export function positionsOf(t: Ticket): QueuePosition[] {
  return t.slots.map((s) => ({ resource: copyResource(s.resource), position: s.positionOf(t) }));
}

export function snapshot(h: Hold): Grant {
  return {
    resource: copyResource(h.resource),
    mode: h.mode,
    fence: h.fence,
    grantedAt: h.grantedAt,
    expiresAt: h.expiresAt,
    ...(h.description === undefined ? {} : { description: h.description }),
  };
}

export function ticketInfo(t: Ticket): TicketInfo {
  return {
    ticket: t.id,
    sessionId: t.sessionId,
    resources: t.resources.map(copyResource),
    mode: t.mode,
    positions: positionsOf(t),
    enqueuedAt: t.enqueuedAt,
    ...(t.description === undefined ? {} : { description: t.description }),
  };
}

export function slotStatus(slot: ResourceSlot): ResourceStatus {
  return {
    resource: copyResource(slot.resource),
    holders: [...slot.holders.values()].map((h) => ({
      sessionId: h.sessionId,
      mode: h.mode,
      fence: h.fence,
      grantedAt: h.grantedAt,
      expiresAt: h.expiresAt,
      ...(h.description === undefined ? {} : { description: h.description }),
    })),
    // A path's queue also holds the intention entries of tickets for paths below it: those are
    // listed on their own paths.
    queue: slot.queue.flatMap((t, i) =>
      slot instanceof PathSlot && slot.intending.has(t)
        ? []
        : [
            {
              ticket: t.id,
              sessionId: t.sessionId,
              mode: t.mode,
              position: slot.positionOf(t),
              upgrade: t.mode === 'write' && slot.holders.get(t.sessionId)?.mode === 'read',
              front: slot.isFront(i),
              ...(t.description === undefined ? {} : { description: t.description }),
            },
          ],
    ),
  };
}

/** A hold as LOCK_DENIED names it; `resource` where it is not the one asked for (a path above or below). */
export function blockingHolder(
  h: Hold,
  sessionName: (sessionId: string) => string | undefined,
  resource?: Resource,
): Blocker['holders'][number] {
  const name = sessionName(h.sessionId);
  return {
    sessionId: h.sessionId,
    ...(name === undefined ? {} : { name }),
    mode: h.mode,
    ...(resource === undefined ? {} : { resource: copyResource(resource) }),
    ...(h.description === undefined ? {} : { description: h.description }),
    expiresAt: h.expiresAt,
  };
}

/** LOCK_DENIED's blocker for a function or structure lock: its conflicting holders and its queue. */
export function functionBlocker(
  slot: ResourceSlot,
  sessionId: string,
  mode: LockMode,
  sessionName: (sessionId: string) => string | undefined,
): Blocker {
  const holders = slot.conflicting(sessionId, mode).map((h) => blockingHolder(h, sessionName));
  return { resource: copyResource(slot.resource), holders, queueLength: slot.queue.length };
}

export function copyResource(r: Resource): Resource {
  return { ...r };
}

export function byResource(a: Grant, b: Grant): number {
  return compareResources(a.resource, b.resource);
}
