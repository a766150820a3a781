import { EventEmitter } from 'eventemitter3';
import { resourceKey } from '../protocol/resource.ts';
import type { LockMode, Resource } from '../protocol/resource.ts';
import type { Clock } from './clock.ts';
import { Deadlines } from './deadlines.ts';
import type { Deadline } from './deadlines.ts';
import { memoryFences } from './fences.ts';
import type { FenceSource } from './fences.ts';
import type { CancelReason, Grant, LockEvents, ReleaseReason } from './lock-types.ts';
import { OutcomeCache } from './outcomes.ts';
import { Outbox } from './outbox.ts';
import { ResourceSlot } from './resource-slot.ts';
import type { Hold, Ticket } from './resource-slot.ts';
import { byResource, positionsOf, snapshot } from './snapshots.ts';

export interface LockManagerOptions {
  clock: Clock;
  /** Lease when the request names none; default 30 minutes. */
  defaultTtlMs?: number;
  /** A shorter requested ttl is raised to this; default 100 ms. */
  minTtlMs?: number;
  /** A longer requested ttl is capped to this; default 24 hours. */
  maxTtlMs?: number;
  /** The expiry warning comes min(warningMs, ttl / 5) before expiry; default 60 s. */
  warningMs?: number;
  fences?: FenceSource;
  /** Names holders in LOCK_DENIED and DEADLOCK data. */
  sessionName?: (sessionId: string) => string | undefined;
  /**
   * Position pushes are coalesced: at most one per ticket per this many ms with the latest
   * positions (deeper tickets less often, see pushInterval), except that reaching position 1 is
   * pushed at once and the last change always is. Default 0: every change at once.
   */
  queuePushMs?: number;
}

const KEYS_PER_SESSION = 1000;
/**
 * Tickets told per run of the coalesced push. A hand-over in a queue of a hundred moves every
 * ticket each turn: written in one go, the push delayed whichever release came in behind it by
 * all of its frames (docs/benchmarks.md, "Hand-over turns"). In slices, the next one waits for
 * the event loop to run the I/O that arrived meanwhile, and the front of the queue goes first.
 */
export const PUSH_SLICE = 16;

export interface SessionLocks {
  holds: Map<string, Hold>;
  /** Waiting tickets in enqueue order. */
  tickets: Map<string, Ticket>;
  outcomes: OutcomeCache;
}

/**
 * The lock state and the moves every operation is made of: grant with a lease, release, withdraw
 * a ticket, and wake the waiters that can then run; leases and wait timeouts end here too. The
 * LockManager on top decides which moves a request makes.
 */
export class LockTable extends EventEmitter<LockEvents> {
  readonly defaults: { defaultTtlMs: number; minTtlMs: number; maxTtlMs: number; warningMs: number };
  protected readonly clock: Clock;
  protected readonly sessionName: (sessionId: string) => string | undefined;
  protected readonly deadlines: Deadlines;
  protected readonly slots = new Map<string, ResourceSlot>();
  protected readonly sessions = new Map<string, SessionLocks>();
  protected readonly outbox = new Outbox();
  protected draining = false;
  private readonly fences: FenceSource;
  private readonly queuePushMs: number;
  /** Tickets whose positions moved since they were last told, waiting for the coalesced push. */
  private readonly unpushed = new Set<Ticket>();
  /**
   * The coalesced push's own timer, apart from `deadlines`: those run first thing in every lock
   * operation (catchUp), which put a whole push's frames ahead of that operation's own grant.
   */
  private readonly pushes: Deadlines;
  private pushAt: Deadline | undefined;
  /** Session and resource key of each pinned lock, with how many pins it has. */
  private readonly pins = new Map<string, number>();

  constructor(opts: LockManagerOptions) {
    super();
    this.clock = opts.clock;
    this.defaults = {
      defaultTtlMs: opts.defaultTtlMs ?? 30 * 60_000,
      minTtlMs: opts.minTtlMs ?? 100,
      maxTtlMs: opts.maxTtlMs ?? 24 * 3_600_000,
      warningMs: opts.warningMs ?? 60_000,
    };
    this.fences = opts.fences ?? memoryFences();
    this.sessionName = opts.sessionName ?? (() => undefined);
    this.queuePushMs = opts.queuePushMs ?? 0;
    this.deadlines = new Deadlines(this.clock);
    this.pushes = new Deadlines(this.clock);
  }

  /**
   * Pending lease expiries, lease warnings and wait timeouts (one clock timer), and the coalesced
   * position push (its own).
   */
  get scheduled(): number {
    return this.deadlines.size + this.pushes.size;
  }

  /** Cancels every timer; the state stays readable. */
  close(): void {
    this.deadlines.close();
    this.pushes.close();
  }

  /**
   * Keeps the session's locks on `resources` from expiring until the returned function is called:
   * an edit made under them is being committed, and its checks and commit must be one step
   * (docs/cluster.md, rule 5). A lease that runs out meanwhile ends when the pin is lifted.
   */
  pin(sessionId: string, resources: readonly Resource[]): () => void {
    const pins = resources.map((r) => `${sessionId}\n${resourceKey(r)}`);
    for (const pin of pins) this.pins.set(pin, (this.pins.get(pin) ?? 0) + 1);
    let lifted = false;
    return () => {
      if (lifted) return;
      lifted = true;
      for (const pin of pins) {
        const left = (this.pins.get(pin) ?? 1) - 1;
        if (left > 0) this.pins.set(pin, left);
        else this.pins.delete(pin);
      }
      const held = this.sessions.get(sessionId)?.holds;
      const ran = [...(held?.values() ?? [])].find((h) => h.expiresAt <= this.clock.now() && !this.isPinned(h));
      if (ran !== undefined) this.onExpiry(ran);
    };
  }

  /**
   * Every call first ends what is already due: a lease past its expiry is lapsed for every check
   * even when a busy event loop has not yet run its timer, and all callers see the same state.
   */
  protected catchUp(): void {
    this.deadlines.runDue();
  }

  /**
   * One change: `fn` releases and withdraws, marking the resources it touched; then the waiters
   * that can now run are woken there, and only then are the change's events emitted.
   */
  protected change<T>(fn: (dirty: Set<ResourceSlot>) => T): T {
    try {
      const dirty = new Set<ResourceSlot>();
      const out = fn(dirty);
      this.settle(dirty);
      return out;
    } finally {
      this.outbox.flush();
    }
  }

  /** Grants or refreshes every resource; new grants and upgrades take a fresh fence each. */
  protected grant(
    sessionId: string,
    session: SessionLocks,
    resources: Resource[],
    keys: string[],
    mode: LockMode,
    ttlMs: number,
    description: string | undefined,
  ): Grant[] {
    const now = this.clock.now();
    return resources.map((resource, i) => {
      const key = keys[i]!;
      let hold = session.holds.get(key);
      if (hold === undefined) {
        hold = {
          sessionId,
          resource,
          key,
          mode,
          fence: this.fences.next(resource.program),
          grantedAt: now,
          expiresAt: now,
          ttlMs,
          warnAt: now,
          warning: undefined,
          expiry: undefined,
        };
        session.holds.set(key, hold);
        this.slotFor(resource, key).holders.set(sessionId, hold);
      } else if (mode === 'write' && hold.mode === 'read') {
        hold.mode = 'write';
        hold.fence = this.fences.next(resource.program);
        hold.grantedAt = now;
      }
      if (description !== undefined) hold.description = description;
      this.startLease(hold, ttlMs);
      return snapshot(hold);
    });
  }

  /** A lease of `ttlMs` from now, or (a lock restored after a failover) one that ends at `expiresAt`. */
  protected startLease(hold: Hold, ttlMs: number, expiresAt = this.clock.now() + ttlMs): void {
    this.deadlines.cancel(hold.warning);
    this.deadlines.cancel(hold.expiry);
    hold.ttlMs = ttlMs;
    hold.expiresAt = expiresAt;
    const lead = Math.min(this.defaults.warningMs, ttlMs / 5);
    hold.warnAt = hold.expiresAt - lead;
    hold.warning = lead > 0 ? this.deadlines.add(hold.warnAt, () => this.onWarning(hold)) : undefined;
    hold.expiry = this.deadlines.add(hold.expiresAt, () => this.onExpiry(hold));
  }

  protected waitTimeout(t: Ticket, ms: number): void {
    t.timeout = this.deadlines.add(t.enqueuedAt + Math.max(0, ms), () => this.onWaitTimeout(t));
  }

  protected dropHolds(
    sessionId: string,
    session: SessionLocks,
    holds: Hold[],
    reason: ReleaseReason,
    dirty: Set<ResourceSlot>,
  ): Grant[] {
    if (holds.length === 0) return [];
    const locks = holds
      .map((h) => {
        this.deadlines.cancel(h.warning);
        this.deadlines.cancel(h.expiry);
        h.warning = undefined;
        h.expiry = undefined;
        session.holds.delete(h.key);
        const slot = this.slots.get(h.key)!;
        slot.holders.delete(sessionId);
        dirty.add(slot);
        return snapshot(h);
      })
      .sort(byResource);
    this.post('released', { sessionId, locks, reason });
    return locks;
  }

  protected withdraw(session: SessionLocks, t: Ticket, reason: CancelReason, dirty: Set<ResourceSlot>): void {
    for (const slot of t.slots) {
      slot.remove(t);
      dirty.add(slot);
    }
    this.deadlines.cancel(t.timeout);
    t.timeout = undefined;
    session.tickets.delete(t.id);
    this.unpushed.delete(t);
    if (t.key !== undefined) session.outcomes.withdrawn(t.key, t.id, reason);
    this.post('cancelled', { sessionId: t.sessionId, ticket: t.id, reason });
  }

  /**
   * Tells the tickets that moved on these resources where they stand: at once when one reached
   * position 1 (its turn is next) or nothing is coalesced, otherwise with the next coalesced push,
   * so that a hand-over in a long queue pushes to one ticket now instead of to every one of them.
   */
  protected renumber(slots: Set<ResourceSlot>): void {
    if (this.queuePushMs === 0) {
      const moved = new Set<Ticket>();
      for (const slot of slots) {
        slot.queue.forEach((t, i) => {
          if (t.reported.get(slot.key) === i + 1) return;
          moved.add(t);
          t.reported.set(slot.key, i + 1);
        });
      }
      for (const t of moved) this.post('position', { sessionId: t.sessionId, ticket: t.id, positions: positionsOf(t) });
      return;
    }
    // The hand-over's path in a long queue: every waiter moves, each turn. Nothing per waiter is
    // allocated here (they join the standing `unpushed` set), only the rare one reaching 1.
    let next: Ticket[] | undefined;
    for (const slot of slots) {
      const queue = slot.queue;
      for (let i = 0; i < queue.length; i++) {
        const t = queue[i]!;
        const told = t.reported.get(slot.key);
        if (told === i + 1) continue;
        // Pushed out of position 1 (an upgrade went in front) before being told: what it was told
        // there no longer stands, so coming back to 1 counts as reaching it and is pushed at once
        // (docs/protocol.md, lock.queue), instead of matching the stale 1 and staying silent.
        if (i > 0 && told === 1) t.reported.delete(slot.key);
        if (i > 0) this.unpushed.add(t);
        else if (next === undefined) next = [t];
        else if (!next.includes(t)) next.push(t);
      }
    }
    if (next !== undefined) for (const t of next) this.pushPositions(t);
    // A move waits at most one interval for its push, even when the next run was set later for
    // deeper tickets only.
    const soonest = this.clock.now() + this.queuePushMs;
    if (this.unpushed.size === 0 || (this.pushAt !== undefined && this.pushAt.at <= soonest)) return;
    this.pushes.cancel(this.pushAt);
    this.schedulePush(soonest);
  }

  protected sessionFor(sessionId: string): SessionLocks {
    let session = this.sessions.get(sessionId);
    if (session === undefined) {
      session = { holds: new Map(), tickets: new Map(), outcomes: new OutcomeCache(KEYS_PER_SESSION) };
      this.sessions.set(sessionId, session);
    }
    return session;
  }

  protected slotFor(resource: Resource, key: string): ResourceSlot {
    let slot = this.slots.get(key);
    if (slot === undefined) {
      slot = new ResourceSlot(resource, key);
      this.slots.set(key, slot);
    }
    return slot;
  }

  protected dropIfIdle(slot: ResourceSlot): void {
    if (slot.idle) this.slots.delete(slot.key);
  }

  protected clampTtl(ttlMs: number): number {
    return Math.min(this.defaults.maxTtlMs, Math.max(this.defaults.minTtlMs, ttlMs));
  }

  protected post<K extends keyof LockEvents>(event: K, payload: Parameters<LockEvents[K]>[0]): void {
    this.outbox.post(() => (this.emit as (e: K, p: typeof payload) => boolean).call(this, event, payload));
  }

  /**
   * Wakes exactly the waiters that can now run: on each changed resource, the front ticket while
   * it is at the front of all its queues and fits the holders. A grant changes the ticket's other
   * queues too, so those are checked in turn (readers behind a reader, a batch unblocking its
   * other resources). Then positions are re-announced where they moved. Draining, nobody is woken.
   */
  private settle(dirty: Set<ResourceSlot>): void {
    const work = this.draining ? [] : [...dirty];
    while (work.length > 0) {
      const slot = work.pop()!;
      for (let t = slot.queue[0]; t !== undefined && ready(t); t = slot.queue[0]) {
        this.grantTicket(t);
        // Even a queue checked before: its front just changed.
        for (const s of t.slots) {
          dirty.add(s);
          work.push(s);
        }
      }
    }
    this.renumber(dirty);
    for (const slot of dirty) this.dropIfIdle(slot);
  }

  private grantTicket(t: Ticket): void {
    const session = this.sessions.get(t.sessionId)!;
    for (const slot of t.slots) slot.remove(t);
    this.deadlines.cancel(t.timeout);
    t.timeout = undefined;
    session.tickets.delete(t.id);
    this.unpushed.delete(t);
    const keys = t.slots.map((s) => s.key);
    const grants = this.grant(t.sessionId, session, t.resources, keys, t.mode, t.ttlMs, t.description);
    if (t.key !== undefined) session.outcomes.granted(t.key, grants);
    this.post('granted', { sessionId: t.sessionId, ticket: t.id, grants });
  }

  /** One 'expiring' per session for all of its locks whose warning is due now. */
  private onWarning(fired: Hold): void {
    const session = this.sessions.get(fired.sessionId)!;
    const now = this.clock.now();
    const due: Hold[] = [];
    for (const h of session.holds.values()) {
      if (h.warning !== undefined && h.warnAt <= now) {
        this.deadlines.cancel(h.warning);
        h.warning = undefined;
        due.push(h);
      }
    }
    this.post('expiring', { sessionId: fired.sessionId, locks: due.map(snapshot).sort(byResource) });
    this.outbox.flush();
  }

  /** One 'expired' then one 'released' per session for all of its locks ending now. */
  private onExpiry(fired: Hold): void {
    const session = this.sessions.get(fired.sessionId)!;
    const now = this.clock.now();
    const due = [...session.holds.values()].filter((h) => h.expiresAt <= now && !this.isPinned(h));
    if (due.length === 0) return;
    this.change((dirty) => {
      this.post('expired', { sessionId: fired.sessionId, locks: due.map(snapshot).sort(byResource) });
      this.dropHolds(fired.sessionId, session, due, 'expired', dirty);
    });
  }

  private isPinned(h: Hold): boolean {
    return this.pins.size > 0 && this.pins.has(`${h.sessionId}\n${h.key}`);
  }

  private pushPositions(t: Ticket): void {
    this.unpushed.delete(t);
    t.toldAt = this.clock.now();
    for (const s of t.slots) t.reported.set(s.key, s.indexOf(t)! + 1);
    this.post('position', { sessionId: t.sessionId, ticket: t.id, positions: positionsOf(t) });
  }

  private schedulePush(at: number): void {
    this.pushAt = this.pushes.add(at, () => this.pushUnpushed());
  }

  /**
   * How long a ticket goes between pushes: queuePushMs near the front, a multiple of it further
   * back (one more per PUSH_SLICE places past position 1, by its nearest position), so that a
   * deep queue's moves cost a few frames a turn instead of one per waiter per interval.
   */
  private pushInterval(nearest: number): number {
    return this.queuePushMs * Math.max(1, Math.ceil((nearest - 1) / PUSH_SLICE));
  }

  /**
   * The coalesced push: the tickets still waiting whose positions differ from what they were last
   * told and whose interval (pushInterval) has passed since they were, nearest the front first,
   * PUSH_SLICE of them per run; the next run comes after the event loop has had its turn when
   * more are due, else when the next one is. So pushes to one ticket are at least queuePushMs
   * apart (bar reaching position 1), and a changed position is never left untold.
   */
  private pushUnpushed(): void {
    this.pushAt = undefined;
    const now = this.clock.now();
    const due: Array<[Ticket, number]> = [];
    let next = Number.POSITIVE_INFINITY;
    for (const t of this.unpushed) {
      let nearest = Number.POSITIVE_INFINITY;
      let moved = false;
      for (const s of t.slots) {
        const at = s.indexOf(t)! + 1;
        nearest = Math.min(nearest, at);
        if (t.reported.get(s.key) !== at) moved = true;
      }
      if (!moved) this.unpushed.delete(t);
      else {
        const at = t.toldAt === undefined ? now : t.toldAt + this.pushInterval(nearest);
        if (at <= now) due.push([t, nearest]);
        else next = Math.min(next, at);
      }
    }
    due.sort((a, b) => a[1] - b[1]);
    for (const [t] of due.slice(0, PUSH_SLICE)) this.pushPositions(t);
    // A millisecond on (what a 0 ms timer is in Node), so the timer runs again after the I/O.
    if (due.length > PUSH_SLICE) this.schedulePush(now + 1);
    else if (Number.isFinite(next)) this.schedulePush(next);
    this.outbox.flush();
  }

  private onWaitTimeout(t: Ticket): void {
    const session = this.sessions.get(t.sessionId)!;
    this.change((dirty) => {
      this.post('waitTimeout', { sessionId: t.sessionId, ticket: t.id });
      this.withdraw(session, t, 'timeout', dirty);
    });
  }
}

function ready(t: Ticket): boolean {
  return t.slots.every((s) => s.queue[0] === t && s.admits(t.sessionId, t.mode));
}
