import { compareResources } from '../protocol/resource.ts';
import type { HolderWaiters } from './lock-types.ts';
import { entriesConflict, intention, PathSlot } from './path-slot.ts';
import type { Hold, ResourceSlot, Ticket } from './resource-slot.ts';
import { copyResource } from './snapshots.ts';

// Who waits for whom, seen from the holders' side: what waiter-notes.ts tells a holder, and whom it
// marks when a ticket starts or stops waiting. The waiters' side, for cycles, is deadlock.ts.

/** Each of these locks (one session's) and the tickets of others that conflict with it there. */
export function waitersOf(
  holds: Iterable<Hold>,
  slots: ReadonlyMap<string, ResourceSlot>,
  now: number,
): HolderWaiters[] {
  const out: HolderWaiters[] = [];
  for (const h of [...holds].sort((a, b) => compareResources(a.resource, b.resource))) {
    const waiting = ticketsWaitingFor(slots.get(h.key)!, h);
    let oldest = now;
    for (const t of waiting) oldest = Math.min(oldest, t.enqueuedAt);
    out.push({ resource: copyResource(h.resource), mode: h.mode, waiting: waiting.size, oldestWaitMs: now - oldest });
  }
  return out;
}

/** The sessions holding locks the ticket waits for, on its resources and the paths above them. */
export function holdersBlocking(t: Ticket): Set<string> {
  const out = new Set<string>();
  for (const slot of t.slots) for (const h of slot.conflicting(t.sessionId, t.mode)) out.add(h.sessionId);
  for (const slot of t.intents) {
    for (const h of (slot as PathSlot).conflictingEntry(t.sessionId, intention(t.mode))) out.add(h.sessionId);
  }
  return out;
}

/** Other sessions' tickets that conflict with the hold `h` in its slot (and, a path, above it). */
function ticketsWaitingFor(slot: ResourceSlot, h: Hold): Set<Ticket> {
  const out = new Set<Ticket>();
  if (!(slot instanceof PathSlot)) {
    for (const t of slot.queue)
      if (t.sessionId !== h.sessionId && (h.mode === 'write' || t.mode === 'write')) out.add(t);
    return out;
  }
  for (const t of slot.queue) if (t.sessionId !== h.sessionId && entriesConflict(slot.entryOf(t), h.mode)) out.add(t);
  for (const above of slot.ancestors()) {
    for (const t of above.queue) {
      if (t.sessionId !== h.sessionId && !above.intending.has(t) && entriesConflict(t.mode, intention(h.mode)))
        out.add(t);
    }
  }
  return out;
}
