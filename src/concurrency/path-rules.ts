import { pathAncestors } from '../protocol/path.ts';
import { type LockMode, type PathResource, pathKey } from '../protocol/resource.ts';
import type { Blocker } from './lock-types.ts';
import { type EntryMode, entriesConflict, intention, type PathSlot } from './path-slot.ts';
import type { Hold, ResourceSlot, Ticket } from './resource-slot.ts';
import { blockingHolder, copyResource } from './snapshots.ts';

// What a new lock on a path would meet: the holds it conflicts with and the queued entries it
// would wait behind, on its path and on every path above it (docs/protocol.md, "Paths").

interface Survey {
  holds: Hold[];
  ahead: Set<Ticket>;
}

/**
 * `fresh`: a request for a path the session does not hold, placed as enqueue would place it (in
 * the front section where the session holds a lock on, above or below that path); otherwise an
 * upgrade or a restored lock, which only the holders can stop.
 */
function survey(slot: PathSlot, sessionId: string, mode: LockMode, fresh: boolean): Survey {
  const out: Survey = { holds: [], ahead: new Set() };
  const look = (s: PathSlot, entry: EntryMode, direct: boolean) => {
    out.holds.push(...s.conflictingEntry(sessionId, entry));
    if (!fresh) return;
    const end = s.frontFor(sessionId) && !s.queuedBehindFront(sessionId) ? s.frontLength : s.queue.length;
    for (let i = 0; i < end; i++) if (s.holdsUp(s.queue[i]!, entry, direct)) out.ahead.add(s.queue[i]!);
  };
  look(slot, mode, true);
  for (const above of slot.ancestors()) look(above, intention(mode), false);
  return out;
}

/** Whether a lock of `mode` on the slot's path can be had now (see survey for `fresh`). */
export function pathGrantable(slot: PathSlot, sessionId: string, mode: LockMode, fresh: boolean): boolean {
  const { holds, ahead } = survey(slot, sessionId, mode, fresh);
  return holds.length === 0 && ahead.size === 0;
}

/** LOCK_DENIED's blocker for a path: each conflicting lock with the path it is on. */
export function pathBlockers(
  slot: PathSlot,
  sessionId: string,
  mode: LockMode,
  sessionName: (sessionId: string) => string | undefined,
  fresh: boolean,
): Blocker {
  const { holds, ahead } = survey(slot, sessionId, mode, fresh);
  const holders = holds.map((h) => blockingHolder(h, sessionName, h.resource));
  return { resource: copyResource(slot.resource), holders, queueLength: ahead.size };
}

/**
 * The queued entries of other sessions that an immediate lock of `mode` on `resource` goes past
 * and that will wait for it: on its path and the paths above it, every entry it conflicts with.
 */
export function pathOvertaken(
  resource: PathResource,
  slots: ReadonlyMap<string, ResourceSlot>,
  sessionId: string,
  mode: LockMode,
): Array<{ slot: ResourceSlot; ticket: Ticket }> {
  const out: Array<{ slot: ResourceSlot; ticket: Ticket }> = [];
  const paths = [resource.path, ...pathAncestors(resource.path)];
  paths.forEach((path, i) => {
    const slot = slots.get(pathKey(resource.program, path)) as PathSlot | undefined;
    if (slot === undefined) return;
    const entry = i === 0 ? mode : intention(mode);
    for (const t of slot.queue) {
      if (t.sessionId !== sessionId && entriesConflict(slot.entryOf(t), entry)) out.push({ slot, ticket: t });
    }
  });
  return out;
}
