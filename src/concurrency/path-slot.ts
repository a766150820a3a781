import { pathAncestors } from '../protocol/path.ts';
import { type LockMode, type PathResource, pathKey } from '../protocol/resource.ts';
import { type Hold, ResourceSlot, type Ticket } from './resource-slot.ts';

/**
 * How an entry or a hold takes part in one path's slot: a lock on that path (read, write), or an
 * intention (IS, IX) of a lock below it. Multi-granularity locking (Gray et al.): a lock on a
 * path covers everything below it, and the intentions on its ancestors make every conflict
 * between a path and one above or below it show up in one slot (docs/protocol.md, "Paths").
 */
export type EntryMode = LockMode | 'IS' | 'IX';

const CONFLICTS: Record<EntryMode, Record<EntryMode, boolean>> = {
  read: { read: false, write: true, IS: false, IX: true },
  write: { read: true, write: true, IS: true, IX: true },
  IS: { read: false, write: true, IS: false, IX: false },
  IX: { read: true, write: true, IS: false, IX: false },
};

export function intention(mode: LockMode): EntryMode {
  return mode === 'write' ? 'IX' : 'IS';
}

export function entriesConflict(a: EntryMode, b: EntryMode): boolean {
  return CONFLICTS[a][b];
}

/**
 * One path: its holders, the holds below it (its holders' intentions) and one queue of the
 * tickets naming it and of the tickets naming a path below it (intention entries). Unlike a
 * function's queue, an entry waits only behind the entries ahead that it conflicts with (two files
 * in one directory do not queue behind each other), except that tickets naming this very path
 * keep strict FIFO among themselves as on a function. The front section is for sessions holding a
 * lock here, above or below: their tickets must not wait behind tickets that wait for them.
 */
export class PathSlot extends ResourceSlot {
  /** Per session, its holds on paths strictly below this one. */
  readonly below = new Map<string, Set<Hold>>();
  /** Queued tickets whose entry here is an intention: they name paths below, not this one. */
  readonly intending = new Set<Ticket>();
  private readonly ancestorKeys: string[];

  constructor(
    override readonly resource: PathResource,
    key: string,
    private readonly slots: ReadonlyMap<string, ResourceSlot>,
  ) {
    super(resource, key);
    this.ancestorKeys = pathAncestors(resource.path).map((p) => pathKey(resource.program, p));
  }

  override get idle(): boolean {
    return super.idle && this.below.size === 0;
  }

  /** Whether lock.status lists this path: a lock on it is held or awaited (not only ones below it). */
  get listed(): boolean {
    return this.holders.size > 0 || this.queue.length > this.intending.size;
  }

  /** The slots of the paths above this one that exist now, nearest first. */
  ancestors(): PathSlot[] {
    const out: PathSlot[] = [];
    for (const key of this.ancestorKeys) {
      const slot = this.slots.get(key);
      if (slot !== undefined) out.push(slot as PathSlot);
    }
    return out;
  }

  entryOf(t: Ticket): EntryMode {
    return this.intending.has(t) ? intention(t.mode) : t.mode;
  }

  /** The other sessions' holds, here or below, that an entry of `mode` here conflicts with. */
  conflictingEntry(sessionId: string, mode: EntryMode): Hold[] {
    const out: Hold[] = [];
    for (const h of this.holders.values()) if (h.sessionId !== sessionId && CONFLICTS[mode][h.mode]) out.push(h);
    for (const [owner, holds] of this.below) {
      if (owner === sessionId) continue;
      for (const h of holds) if (CONFLICTS[mode][intention(h.mode)]) out.push(h);
    }
    return out;
  }

  override admits(sessionId: string, mode: LockMode): boolean {
    return this.conflictingEntry(sessionId, mode).length === 0;
  }

  override conflicting(sessionId: string, mode: LockMode): Hold[] {
    return this.conflictingEntry(sessionId, mode);
  }

  /** Whether the entry `ahead` holds up an entry of `mode` behind it (`direct`: naming this path). */
  holdsUp(ahead: Ticket, mode: EntryMode, direct: boolean): boolean {
    return (direct && !this.intending.has(ahead)) || CONFLICTS[this.entryOf(ahead)][mode];
  }

  /** Adds to `out` the entries ahead of `t` that it waits behind here. */
  blockersAhead(t: Ticket, out: Set<Ticket>): void {
    const mode = this.entryOf(t);
    const direct = !this.intending.has(t);
    const at = this.indexOf(t)!;
    for (let i = 0; i < at; i++) {
      const ahead = this.queue[i]!;
      if (this.holdsUp(ahead, mode, direct)) out.add(ahead);
    }
  }

  /** Counts every ticket it waits behind, here and in the slots above where it has an entry. */
  override positionOf(t: Ticket): number {
    const ahead = new Set<Ticket>();
    this.blockersAhead(t, ahead);
    for (const slot of this.ancestors()) if (slot.indexOf(t) !== undefined) slot.blockersAhead(t, ahead);
    return ahead.size + 1;
  }

  override readyFor(t: Ticket): boolean {
    const mode = this.entryOf(t);
    const direct = !this.intending.has(t);
    const at = this.indexOf(t)!;
    for (let i = 0; i < at; i++) if (this.holdsUp(this.queue[i]!, mode, direct)) return false;
    return this.conflictingEntry(t.sessionId, mode).length === 0;
  }

  /** A session with a lock here, above or below: its tickets wait in the front section. */
  override frontFor(sessionId: string): boolean {
    return (
      this.holders.has(sessionId) || this.below.has(sessionId) || this.ancestors().some((a) => a.holders.has(sessionId))
    );
  }

  override waitsFor(t: Ticket): string[] {
    const ahead = new Set<Ticket>();
    this.blockersAhead(t, ahead);
    const out: string[] = [];
    for (const a of ahead) if (a.sessionId !== t.sessionId) out.push(a.sessionId);
    for (const h of this.conflictingEntry(t.sessionId, this.entryOf(t))) out.push(h.sessionId);
    return out;
  }

  /** Every entry of another session behind `t` that `t` holds up. */
  override newlyBehind(t: Ticket): Ticket[] {
    const out: Ticket[] = [];
    for (let i = this.indexOf(t)! + 1; i < this.queue.length; i++) {
      const behind = this.queue[i]!;
      if (behind.sessionId !== t.sessionId && this.holdsUp(t, this.entryOf(behind), !this.intending.has(behind)))
        out.push(behind);
    }
    return out;
  }

  /** Queues `t` here for a path below this one. */
  enqueueIntention(t: Ticket, front: boolean): void {
    this.intending.add(t);
    this.enqueue(t, front);
  }

  override remove(t: Ticket): void {
    super.remove(t);
    this.intending.delete(t);
  }

  addBelow(h: Hold): void {
    const mine = this.below.get(h.sessionId);
    if (mine === undefined) this.below.set(h.sessionId, new Set([h]));
    else mine.add(h);
  }

  removeBelow(h: Hold): void {
    const mine = this.below.get(h.sessionId);
    if (mine === undefined) return;
    mine.delete(h);
    if (mine.size === 0) this.below.delete(h.sessionId);
  }
}
