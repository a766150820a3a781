import type { Resource } from '../protocol/resource.ts';
import { compareResources } from '../protocol/resource.ts';
import type { Grant, QueuePosition } from './lock-types.ts';
import type { Hold, Ticket } from './wait-queue.ts';

// Everything handed out is a fresh copy: a caller or listener mutating it cannot reach the state.

export function positionsOf(t: Ticket): QueuePosition[] {
  return t.slots.map((s) => ({ resource: copyResource(s.resource), position: t.reported.get(s.key)! }));
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

export function copyResource(r: Resource): Resource {
  return { ...r };
}

export function byResource(a: Grant, b: Grant): number {
  return compareResources(a.resource, b.resource);
}
