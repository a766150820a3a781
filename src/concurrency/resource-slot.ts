import type { LockMode, Resource } from '../protocol/resource.ts';
import type { Deadline } from './deadlines.ts';

/** A lock as the manager keeps it; callers only ever see Grant snapshots. */
export interface Hold {
  sessionId: string;
  resource: Resource;
  key: string;
  mode: LockMode;
  fence: number;
  grantedAt: number;
  expiresAt: number;
  ttlMs: number;
  description?: string;
  warnAt: number;
  warning: Deadline | undefined;
  expiry: Deadline | undefined;
}

/** A waiting request, present in the queue of every resource it names. */
export interface Ticket {
  id: string;
  sessionId: string;
  mode: LockMode;
  resources: Resource[];
  /** One per resource, in the order of `resources`. */
  slots: ResourceSlot[];
  /**
   * The slots of the paths above the ticket's paths that it does not name itself, where it waits
   * with an intention entry (PathSlot); empty for functions and the structure.
   */
  intents: ResourceSlot[];
  ttlMs: number;
  description?: string;
  /** The idempotency key the request came with: a retry learns how the ticket ended. */
  key?: string;
  enqueuedAt: number;
  timeout: Deadline | undefined;
  /** Place in each slot's queue, by resource key, kept by ResourceSlot (see ResourceSlot.indexOf). */
  ordinal: Map<string, number>;
  /** 1-based position last told to the session (acquire result or push), by resource key: only changes are pushed. */
  reported: Map<string, number>;
  /** When it was last told its positions, by its acquire answer or a push (PositionPushes.pushInterval). */
  toldAt: number;
}

/**
 * One resource: its holders (one writer, or any number of readers) and its FIFO queue. The queue
 * has a front section for sessions that already hold the resource (upgrades, held parts of a
 * batch): they must not wait behind tickets that are themselves waiting for them.
 */
export class ResourceSlot {
  readonly holders = new Map<string, Hold>();
  readonly queue: Ticket[] = [];
  private frontCount = 0;
  // Ordinals are queue indexes plus `base`, so granting the front ticket (the common case, and
  // a thousand times in a row when a writer lets a thousand readers in) renumbers nobody.
  private base = 0;

  constructor(
    readonly resource: Resource,
    readonly key: string,
  ) {}

  get idle(): boolean {
    return this.holders.size === 0 && this.queue.length === 0;
  }

  /** How many entries the front section has. */
  get frontLength(): number {
    return this.frontCount;
  }

  isFront(index: number): boolean {
    return index < this.frontCount;
  }

  /** 0-based index of `t` in this queue. */
  indexOf(t: Ticket): number | undefined {
    const ordinal = t.ordinal.get(this.key);
    return ordinal === undefined ? undefined : ordinal - this.base;
  }

  enqueue(t: Ticket, front: boolean): void {
    const at = front ? this.frontCount++ : this.queue.length;
    this.queue.splice(at, 0, t);
    this.reindex(at);
  }

  remove(t: Ticket): void {
    const at = this.indexOf(t);
    if (at === undefined) return;
    t.ordinal.delete(this.key);
    if (at < this.frontCount) this.frontCount--;
    if (at === 0) {
      this.queue.shift();
      this.base++;
    } else {
      this.queue.splice(at, 1);
      this.reindex(at);
    }
  }

  /** 1-based place of `t` in this queue, as pushed to its session and shown by lock.status. */
  positionOf(t: Ticket): number {
    return this.indexOf(t)! + 1;
  }

  /** Whether `t` can be granted here now: first in the queue and fitting the holders. */
  readyFor(t: Ticket): boolean {
    return this.queue[0] === t && this.admits(t.sessionId, t.mode);
  }

  /** Whether a ticket of `sessionId` waits in the front section here (a lock of the session is here). */
  frontFor(sessionId: string): boolean {
    return this.holders.has(sessionId);
  }

  /** The sessions `t` waits for here: the nearest other session's ticket ahead, and conflicting holders. */
  waitsFor(t: Ticket): string[] {
    const ahead = this.aheadOf(t);
    const out = ahead === undefined ? [] : [ahead.sessionId];
    for (const h of this.conflicting(t.sessionId, t.mode)) out.push(h.sessionId);
    return out;
  }

  /**
   * The tickets that wait for `t` here because it went into the front section: the one right
   * behind it, unless it already waited for this session's lock.
   */
  newlyBehind(t: Ticket): Ticket[] {
    const behind = this.queue[this.indexOf(t)! + 1];
    if (behind === undefined) return [];
    return this.conflicting(behind.sessionId, behind.mode).some((h) => h.sessionId === t.sessionId) ? [] : [behind];
  }

  /** Whether `sessionId` has a ticket in the back section (behind the front entries). */
  queuedBehindFront(sessionId: string): boolean {
    for (let i = this.frontCount; i < this.queue.length; i++) if (this.queue[i]!.sessionId === sessionId) return true;
    return false;
  }

  /** The nearest ticket of another session ahead of `t`. */
  aheadOf(t: Ticket): Ticket | undefined {
    for (let i = this.indexOf(t)! - 1; i >= 0; i--) {
      const other = this.queue[i]!;
      if (other.sessionId !== t.sessionId) return other;
    }
    return undefined;
  }

  /** Whether `sessionId` could hold `mode` alongside everyone else holding now. */
  admits(sessionId: string, mode: LockMode): boolean {
    if (this.holders.size === 0) return true;
    if (mode === 'write') return this.holders.size === 1 && this.holders.has(sessionId);
    // A writer is always the only holder, so the first holder tells whether one exists.
    const first = this.holders.values().next().value!;
    return first.mode === 'read' || first.sessionId === sessionId;
  }

  /** The other sessions' holds that keep `sessionId` from holding `mode`. */
  conflicting(sessionId: string, mode: LockMode): Hold[] {
    if (mode === 'read') {
      const first = this.holders.values().next().value;
      return first !== undefined && first.mode === 'write' && first.sessionId !== sessionId ? [first] : [];
    }
    const out: Hold[] = [];
    for (const h of this.holders.values()) if (h.sessionId !== sessionId) out.push(h);
    return out;
  }

  private reindex(from: number): void {
    for (let i = from; i < this.queue.length; i++) this.queue[i]!.ordinal.set(this.key, this.base + i);
  }
}
