import type { Resource } from '../protocol/resource.ts';
import type { Ticket } from './wait-queue.ts';

/** `from` waits for `to` because of `ticket`, on `resource`. */
export interface WaitEdge {
  from: string;
  to: string;
  ticket: Ticket;
  resource: Resource;
}

/**
 * The sessions a waiting ticket waits for: on each of its resources, the other sessions holding
 * a conflicting lock, and the nearest other session's ticket ahead of it. The spec says "every
 * ticket ahead", but that ticket itself waits for everything ahead of it, so reachability — all a
 * cycle search needs — is the same, and a long queue is walked once instead of once per waiter.
 */
export function waitEdges(t: Ticket): WaitEdge[] {
  const out: WaitEdge[] = [];
  for (const slot of t.slots) {
    const ahead = slot.aheadOf(t);
    if (ahead !== undefined) {
      out.push({ from: t.sessionId, to: ahead.sessionId, ticket: t, resource: slot.resource });
    }
    for (const h of slot.conflicting(t.sessionId, t.mode)) {
      out.push({ from: t.sessionId, to: h.sessionId, ticket: t, resource: slot.resource });
    }
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
