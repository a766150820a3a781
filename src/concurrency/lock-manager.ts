import { EventEmitter } from 'eventemitter3';
import { v4 as uuidv4 } from 'uuid';
import { LockstepError } from '../protocol/errors.ts';
import { pathAncestors } from '../protocol/path.ts';
import {
  compareResources,
  formatResource,
  isPath,
  normalizeResources,
  pathKey,
  resourceKey,
} from '../protocol/resource.ts';
import type { LockMode, PathResource, Resource } from '../protocol/resource.ts';
import type { Clock } from './clock.ts';
import { Deadlines } from './deadlines.ts';
import { cycleByJump, cycleByUpgrade, cycleThrough, deadlockError, describeCycle, waitEdges } from './deadlock.ts';
import type { WaitEdge } from './deadlock.ts';
import { memoryFences } from './fences.ts';
import type { FenceSource } from './fences.ts';
import { Leases } from './leases.ts';
import type { LeaseLimits } from './leases.ts';
import { LockDenied } from './lock-errors.ts';
import type {
  AcquireRequest,
  AcquireResult,
  Blocker,
  CancelReason,
  Grant,
  LockEvents,
  ReleaseReason,
  ResourceStatus,
  RestoredLock,
  TicketInfo,
} from './lock-types.ts';
import { OutcomeCache, requestOf } from './outcomes.ts';
import { Outbox } from './outbox.ts';
import { PathSlot } from './path-slot.ts';
import { pathGrantable, pathBlockers, pathOvertaken } from './path-rules.ts';
import { PositionPushes } from './position-pushes.ts';
import { WaiterNotes } from './waiter-notes.ts';
import { holdersBlocking, waitersOf } from './waiter-survey.ts';
import { ResourceSlot } from './resource-slot.ts';
import type { Hold, Ticket } from './resource-slot.ts';
import {
  byResource,
  copyResource,
  functionBlocker,
  positionsOf,
  slotStatus,
  snapshot,
  ticketInfo,
} from './snapshots.ts';

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
   * positions (deeper tickets less often, position-pushes.ts), except that reaching position 1 is
   * pushed at once and the last change always is. Default 0: every change at once.
   */
  queuePushMs?: number;
  /**
   * A holder is told (`waiters`) when tickets start waiting for its locks, at most once per this
   * many ms (waiter-notes.ts). Default 0: never.
   */
  waitersPushMs?: number;
}

const KEYS_PER_SESSION = 1000;

interface SessionLocks {
  holds: Map<string, Hold>;
  /** Waiting tickets in enqueue order. */
  tickets: Map<string, Ticket>;
  outcomes: OutcomeCache;
}

/**
 * Fair read/write locks over opaque resources and hierarchical paths: strict FIFO queues with
 * tickets, all-or-nothing batches, leases, fencing tokens, upgrades and deadlock detection. Pure
 * and synchronous: every call leaves a consistent state, and its events are emitted only then
 * (see Outbox). One class because every operation reads and moves the same state (holds and
 * queues); the parts with their own state or rules live beside it: leases and pins (leases.ts),
 * path conflicts (path-slot.ts, path-rules.ts), position pushes (position-pushes.ts), holders told
 * who waits for them (waiter-notes.ts, waiter-survey.ts), wait-for cycles (deadlock.ts), keyed
 * outcomes (outcomes.ts).
 */
export class LockManager extends EventEmitter<LockEvents> {
  readonly defaults: LeaseLimits;
  private readonly clock: Clock;
  private readonly sessionName: (sessionId: string) => string | undefined;
  private readonly deadlines: Deadlines;
  private readonly leases: Leases;
  private readonly slots = new Map<string, ResourceSlot>();
  private readonly sessions = new Map<string, SessionLocks>();
  private readonly outbox = new Outbox();
  private readonly fences: FenceSource;
  private readonly pushes: PositionPushes;
  private readonly waiters: WaiterNotes;
  private draining = false;

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
    this.deadlines = new Deadlines(this.clock);
    this.leases = new Leases(
      this.defaults,
      this.clock,
      this.deadlines,
      (sessionId) => this.sessions.get(sessionId)?.holds.values() ?? [],
      (sessionId, due) => this.expiring(sessionId, due),
      (sessionId, due) => this.expired(sessionId, due),
    );
    this.pushes = new PositionPushes(
      opts.queuePushMs ?? 0,
      this.clock,
      (t, positions) => this.post('position', { sessionId: t.sessionId, ticket: t.id, positions }),
      () => this.outbox.flush(),
    );
    this.waiters = new WaiterNotes(
      opts.waitersPushMs ?? 0,
      this.clock,
      (sessionId) => waitersOf(this.sessions.get(sessionId)?.holds.values() ?? [], this.slots, this.clock.now()),
      (sessionId, locks) => this.post('waiters', { sessionId, locks }),
      () => this.outbox.flush(),
    );
  }

  /**
   * Pending lease expiries, lease warnings and wait timeouts (one clock timer), and the coalesced
   * position and waiter pushes (a timer each, coalesced-timer.ts).
   */
  get scheduled(): number {
    return this.deadlines.size + this.pushes.scheduled + this.waiters.scheduled;
  }

  /** Cancels every timer; the state stays readable. */
  close(): void {
    this.deadlines.close();
    this.pushes.close();
    this.waiters.close();
  }

  /**
   * Grants every resource at once, queues the whole request (wait), or throws LockDenied (no
   * wait) or DEADLOCK (waiting would close a wait-for cycle); a refused request changes nothing.
   * A key the session used for another request throws KeyReused.
   */
  acquire(sessionId: string, req: AcquireRequest): AcquireResult {
    const resources = normalizeResources(req.resources);
    if (resources.length === 0) throw new Error('acquire needs at least one resource');
    if (this.draining) throw new LockstepError('SHUTTING_DOWN', 'the server is shutting down', {}, 1000);
    this.catchUp();
    const session = this.sessionFor(sessionId);
    const request = requestOf(req.mode, req.wait === true, resources);
    const known =
      req.key === undefined ? undefined : session.outcomes.replay(req.key, request, (t) => session.tickets.get(t));
    if (known !== undefined) return known;
    try {
      const result = this.tryAcquire(sessionId, session, resources, req);
      if (req.key !== undefined) session.outcomes.set(req.key, request, { result });
      return result;
    } catch (err) {
      if (req.key !== undefined && err instanceof LockstepError) session.outcomes.set(req.key, request, { error: err });
      throw err;
    } finally {
      this.outbox.flush();
    }
  }

  /**
   * Cluster failover: a session's locks from the previous leader, with their fences and what is
   * left of their leases, held for it absent (as a dropped session's within the resume grace)
   * until it releases them, its session ends or a lease runs out. Before anyone is served; emits
   * nothing; the locks must not conflict with any holder.
   */
  restore(sessionId: string, locks: readonly RestoredLock[]): void {
    const session = this.sessionFor(sessionId);
    for (const lock of locks) {
      const key = resourceKey(lock.resource);
      const slot = this.slotFor(lock.resource, key);
      const fits = isPath(lock.resource)
        ? pathGrantable(slot as PathSlot, sessionId, lock.mode, false)
        : slot.admits(sessionId, lock.mode);
      if (session.holds.has(key) || !fits) {
        this.dropIfIdle(slot);
        throw new Error(`restore of ${formatResource(lock.resource)} conflicts with a lock already there`);
      }
      const hold: Hold = {
        sessionId,
        resource: copyResource(lock.resource),
        key,
        mode: lock.mode,
        fence: lock.fence,
        grantedAt: lock.grantedAt,
        expiresAt: lock.expiresAt,
        ttlMs: lock.ttlMs,
        ...(lock.description === undefined ? {} : { description: lock.description }),
        warnAt: lock.expiresAt,
        warning: undefined,
        expiry: undefined,
      };
      session.holds.set(key, hold);
      this.attach(slot, hold);
      this.leases.start(hold, lock.ttlMs, lock.expiresAt);
    }
  }

  /**
   * Keeps the session's locks on `resources` from expiring until the returned function is called:
   * an edit made under them is being committed, and its checks and commit must be one step
   * (docs/cluster.md, rule 5). A lease that runs out meanwhile ends when the pin is lifted.
   */
  pin(sessionId: string, resources: readonly Resource[]): () => void {
    return this.leases.pin(sessionId, resources);
  }

  /** The lease a renewal without ttl gives this lock (journaled); no catchUp: asked from event listeners. */
  leaseOf(sessionId: string, resource: Resource): number | undefined {
    return this.sessions.get(sessionId)?.holds.get(resourceKey(resource))?.ttlMs;
  }

  /** Whether an acquire with this key would be answered from the session's memory of it. */
  knowsKey(sessionId: string, key: string): boolean {
    return this.sessions.get(sessionId)?.outcomes.has(key) === true;
  }

  /** Forgets a keyed acquire's outcome (its grant was undone): a retry with the key is asked afresh. */
  forgetKey(sessionId: string, key: string): void {
    this.sessions.get(sessionId)?.outcomes.forget(key);
  }

  /** All-or-nothing: NOT_HELD naming the resources not held changes nothing. */
  release(sessionId: string, resources: Resource[]): Grant[] {
    this.catchUp();
    return this.change((dirty) => {
      const { session, holds } = this.heldOrThrow(sessionId, resources);
      return this.dropHolds(sessionId, session, holds, 'release', dirty);
    });
  }

  releaseAll(sessionId: string): Grant[] {
    this.catchUp();
    const session = this.sessions.get(sessionId);
    if (session === undefined) return [];
    return this.change((dirty) => this.dropHolds(sessionId, session, [...session.holds.values()], 'release', dirty));
  }

  /** A new lease from now (the lock's own ttl unless one is given); the fence stays. */
  renew(sessionId: string, resources: Resource[], ttlMs?: number): Grant[] {
    this.catchUp();
    return this.change(() => {
      const { holds } = this.heldOrThrow(sessionId, resources);
      const locks = holds.map((h) => {
        this.leases.start(h, ttlMs === undefined ? h.ttlMs : this.leases.clamp(ttlMs));
        return snapshot(h);
      });
      this.post('renewed', { sessionId, locks });
      return locks;
    });
  }

  /** Write becomes read with the same fence and lease; readers waiting at the front get in. */
  downgrade(sessionId: string, resources: Resource[]): Grant[] {
    this.catchUp();
    return this.change((dirty) => {
      const { holds } = this.heldOrThrow(sessionId, resources);
      for (const h of holds) {
        if (h.mode === 'write') {
          h.mode = 'read';
          this.touched(this.slots.get(h.key)!, dirty);
        }
      }
      const locks = holds.map(snapshot);
      this.post('downgraded', { sessionId, locks });
      return locks;
    });
  }

  cancel(sessionId: string, ticket: string): void {
    this.catchUp();
    const session = this.sessions.get(sessionId);
    const t = session?.tickets.get(ticket);
    if (session === undefined || t === undefined) {
      throw new LockstepError('NOT_FOUND', `no waiting ticket ${ticket} of this session`, { ticket });
    }
    this.change((dirty) => this.withdraw(session, t, 'cancel', dirty));
  }

  /**
   * The disconnect: every ticket withdrawn and every lock released in one step, then waiters
   * woken. `shutdown` names a session ended by the server's drain in the events.
   */
  removeSession(
    sessionId: string,
    reason: 'disconnect' | 'shutdown' = 'disconnect',
  ): { released: Grant[]; cancelled: string[] } {
    this.catchUp();
    const session = this.sessions.get(sessionId);
    if (session === undefined) return { released: [], cancelled: [] };
    return this.change((dirty) => {
      const cancelled = [...session.tickets.values()].map((t) => {
        this.withdraw(session, t, reason, dirty);
        return t.id;
      });
      const released = this.dropHolds(sessionId, session, [...session.holds.values()], reason, dirty);
      this.sessions.delete(sessionId);
      this.waiters.forget(sessionId);
      return { released, cancelled };
    });
  }

  /** Withdraws the session's waiting tickets only; its locks stay (resume grace). */
  withdrawTickets(sessionId: string): string[] {
    this.catchUp();
    const session = this.sessions.get(sessionId);
    if (session === undefined) return [];
    return this.change((dirty) =>
      [...session.tickets.values()].map((t) => {
        this.withdraw(session, t, 'disconnect', dirty);
        return t.id;
      }),
    );
  }

  /** The resources are gone (function or program deleted): tickets naming them withdrawn, locks on them released. */
  dropResources(match: (r: Resource) => boolean): void {
    this.catchUp();
    this.change((dirty) => {
      for (const session of this.sessions.values()) {
        for (const t of [...session.tickets.values()]) {
          if (t.resources.some(match)) this.withdraw(session, t, 'removed', dirty);
        }
      }
      for (const [sessionId, session] of this.sessions) {
        const gone = [...session.holds.values()].filter((h) => match(h.resource));
        this.dropHolds(sessionId, session, gone, 'removed', dirty);
      }
    });
  }

  /**
   * The server is shutting down: from now on nothing is granted, neither to a new request
   * (SHUTTING_DOWN) nor to a waiter whose turn comes as the sessions ahead of it are ended; an
   * agent must not start work on a dying server.
   */
  drain(): void {
    this.draining = true;
  }

  holding(sessionId: string): Grant[] {
    this.catchUp();
    const session = this.sessions.get(sessionId);
    return session === undefined ? [] : [...session.holds.values()].map(snapshot).sort(byResource);
  }

  /** The session's lock on `resource`, if it holds one whose lease has not ended (the edit checks ask this). */
  grantOf(sessionId: string, resource: Resource): Grant | undefined {
    this.catchUp();
    const hold = this.sessions.get(sessionId)?.holds.get(resourceKey(resource));
    return hold === undefined ? undefined : snapshot(hold);
  }

  /**
   * The session's write lock covering `path` (on it or a path above it), if it holds one now; else
   * the other sessions' locks a write lock on it would wait for and the tickets queued on it or
   * above or below it (paths.check, docs/protocol.md).
   */
  pathWriter(sessionId: string, resource: PathResource): { held: Grant } | { held: undefined; blocker: Blocker } {
    this.catchUp();
    const holds = this.sessions.get(sessionId)?.holds;
    for (const path of [resource.path, ...pathAncestors(resource.path)]) {
      const h = holds?.get(pathKey(resource.program, path));
      if (h?.mode === 'write') return { held: snapshot(h) };
    }
    const slot = this.slotFor(resource, resourceKey(resource)) as PathSlot;
    const blocker = pathBlockers(slot, sessionId, 'write', this.sessionName, true);
    this.dropIfIdle(slot);
    return { held: undefined, blocker };
  }

  tickets(sessionId: string): TicketInfo[] {
    this.catchUp();
    const session = this.sessions.get(sessionId);
    return session === undefined ? [] : [...session.tickets.values()].map(ticketInfo);
  }

  /** Every held or awaited resource (of one program, if given), in canonical resource order. */
  status(program?: string): ResourceStatus[] {
    this.catchUp();
    const out: ResourceStatus[] = [];
    for (const slot of this.slots.values()) {
      if (slot instanceof PathSlot && !slot.listed) continue;
      if (program === undefined || slot.resource.program === program) out.push(slotStatus(slot));
    }
    return out.sort((a, b) => compareResources(a.resource, b.resource));
  }

  /**
   * Every call first ends what is already due: a lease past its expiry is lapsed for every check
   * even when a busy event loop has not yet run its timer, and all callers see the same state.
   */
  private catchUp(): void {
    this.deadlines.runDue();
  }

  /**
   * One change: `fn` releases and withdraws, marking the resources it touched; then the waiters
   * that can now run are woken there, and only then are the change's events emitted.
   */
  private change<T>(fn: (dirty: Set<ResourceSlot>) => T): T {
    try {
      const dirty = new Set<ResourceSlot>();
      const out = fn(dirty);
      this.settle(dirty);
      return out;
    } finally {
      this.outbox.flush();
    }
  }

  private tryAcquire(
    sessionId: string,
    session: SessionLocks,
    resources: Resource[],
    req: AcquireRequest,
  ): AcquireResult {
    const ttlMs = this.leases.clamp(req.ttlMs ?? this.defaults.defaultTtlMs);
    const keys = resources.map(resourceKey);
    const blocked = resources.filter((r, i) => !this.grantableNow(sessionId, session, r, keys[i]!, req.mode));
    if (blocked.length === 0) {
      if (session.tickets.size > 0) {
        const cycle = this.cycleByGrant(sessionId, session, resources, keys, req.mode);
        if (cycle !== undefined) throw this.deadlock(sessionId, cycle);
      }
      const grants = this.grant(sessionId, session, resources, keys, req.mode, ttlMs, req.description);
      this.post('granted', { sessionId, ticket: null, grants });
      return { status: 'granted', grants };
    }
    if (req.wait !== true) throw this.deny(sessionId, req.mode, resources, blocked);
    return this.enqueue(sessionId, session, resources, keys, req, ttlMs);
  }

  /**
   * Whether one resource of a request can be had right now: a lock already held in that mode (or
   * write for read) is simply refreshed, even past a queue; an upgrade needs the session to be the
   * sole holder; anything else needs an empty queue and compatible holders. A path asks the same
   * of its path and the paths above it, where only conflicting entries count (path-rules.ts).
   */
  private grantableNow(sessionId: string, session: SessionLocks, r: Resource, key: string, mode: LockMode): boolean {
    const slot = this.slots.get(key);
    const held = session.holds.get(key);
    if (isPath(r)) {
      if (held !== undefined && (held.mode === 'write' || mode === 'read')) return true;
      if (slot === undefined && !pathAncestors(r.path).some((a) => this.slots.has(pathKey(r.program, a)))) return true;
      const probe = this.slotFor(r, key) as PathSlot;
      const ok = pathGrantable(probe, sessionId, mode, held === undefined);
      this.dropIfIdle(probe);
      return ok;
    }
    if (held !== undefined) return held.mode === 'write' || mode === 'read' || slot!.holders.size === 1;
    return slot === undefined || (slot.queue.length === 0 && slot.admits(sessionId, mode));
  }

  /**
   * The cycle an immediate grant would close: an upgrade of a read lock, or a path lock that goes
   * past entries of the front section (path-rules.ts), makes tickets queued there wait for this
   * session; if it waits itself, directly or not, for one of them, both would wait forever.
   */
  private cycleByGrant(
    sessionId: string,
    session: SessionLocks,
    resources: Resource[],
    keys: string[],
    mode: LockMode,
  ): WaitEdge[] | undefined {
    const overtaken: Array<{ slot: ResourceSlot; ticket: Ticket }> = [];
    const reading: ResourceSlot[] = [];
    resources.forEach((r, i) => {
      const held = session.holds.get(keys[i]!);
      if (isPath(r)) {
        if (held === undefined || (mode === 'write' && held.mode === 'read')) {
          overtaken.push(...pathOvertaken(r, this.slots, sessionId, mode));
        }
      } else if (mode === 'write' && held?.mode === 'read') reading.push(this.slots.get(keys[i]!)!);
    });
    return cycleByUpgrade(sessionId, reading, this.edgesOf) ?? cycleByJump(sessionId, overtaken, this.edgesOf);
  }

  private deny(sessionId: string, mode: LockMode, resources: Resource[], blocked: Resource[]): LockDenied {
    let soonest: number | undefined;
    const blockers: Blocker[] = blocked.map((resource) => {
      const key = resourceKey(resource);
      const slot = this.slotFor(resource, key);
      const blocker =
        slot instanceof PathSlot
          ? pathBlockers(slot, sessionId, mode, this.sessionName, this.sessions.get(sessionId)?.holds.has(key) !== true)
          : functionBlocker(slot, sessionId, mode, this.sessionName);
      this.dropIfIdle(slot);
      for (const h of blocker.holders) soonest = soonest === undefined ? h.expiresAt : Math.min(soonest, h.expiresAt);
      return blocker;
    });
    this.post('denied', { sessionId, mode, resources: resources.map(copyResource), blockers });
    return new LockDenied(
      `${mode} lock not available on ${blocked.map(formatResource).join(', ')}`,
      blockers,
      soonest === undefined ? undefined : soonest - this.clock.now(),
    );
  }

  private enqueue(
    sessionId: string,
    session: SessionLocks,
    resources: Resource[],
    keys: string[],
    req: AcquireRequest,
    ttlMs: number,
  ): AcquireResult {
    const now = this.clock.now();
    const ticket: Ticket = {
      id: uuidv4(),
      sessionId,
      mode: req.mode,
      resources,
      slots: [],
      intents: [],
      ttlMs,
      ...(req.description === undefined ? {} : { description: req.description }),
      ...(req.key === undefined ? {} : { key: req.key }),
      enqueuedAt: now,
      timeout: undefined,
      ordinal: new Map(),
      reported: new Map(),
      toldAt: now,
    };
    const fronts: ResourceSlot[] = [];
    // A holder waits at the front, but never ahead of its own earlier ticket: a session's
    // tickets keep one order in every queue, or two of them could wait for each other forever.
    const place = (slot: ResourceSlot): boolean => {
      const front = slot.frontFor(sessionId) && !slot.queuedBehindFront(sessionId);
      if (front) fronts.push(slot);
      return front;
    };
    resources.forEach((resource, i) => {
      const slot = this.slotFor(resource, keys[i]!);
      slot.enqueue(ticket, place(slot));
      ticket.slots.push(slot);
    });
    // A path's ticket also waits, with an intention, on each path above it that it does not name.
    const named = new Set(keys);
    for (const resource of resources) {
      if (!isPath(resource)) continue;
      for (const above of pathAncestors(resource.path)) {
        const key = pathKey(resource.program, above);
        if (named.has(key)) continue;
        named.add(key);
        const slot = this.slotFor({ program: resource.program, path: above }, key) as PathSlot;
        slot.enqueueIntention(ticket, place(slot));
        ticket.intents.push(slot);
      }
    }
    session.tickets.set(ticket.id, ticket);

    // Nobody can wait for a session that holds nothing and has no other ticket: no cycle, no walk.
    const alone = session.holds.size === 0 && session.tickets.size === 1;
    const cycle = alone ? undefined : cycleThrough(ticket, fronts, this.edgesOf);
    if (cycle !== undefined) {
      session.tickets.delete(ticket.id);
      for (const slot of [...ticket.slots, ...ticket.intents]) {
        slot.remove(ticket);
        this.dropIfIdle(slot);
      }
      throw this.deadlock(sessionId, cycle, ticket);
    }

    this.pushes.told(ticket);
    if (req.waitTimeoutMs !== undefined) this.waitTimeout(ticket, req.waitTimeoutMs);
    this.post('queued', {
      sessionId,
      ticket: ticket.id,
      mode: req.mode,
      resources: resources.map(copyResource),
      positions: positionsOf(ticket),
    });
    // A front entry moves everyone behind it one place back.
    this.pushes.renumber(new Set(fronts));
    this.waiters.mark(holdersBlocking(ticket));
    return { status: 'queued', ticket: ticket.id, positions: positionsOf(ticket) };
  }

  /** Grants or refreshes every resource; new grants and upgrades take a fresh fence each. */
  private grant(
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
        this.attach(this.slotFor(resource, key), hold);
      } else if (mode === 'write' && hold.mode === 'read') {
        hold.mode = 'write';
        hold.fence = this.fences.next(resource.program);
        hold.grantedAt = now;
      }
      if (description !== undefined) hold.description = description;
      this.leases.start(hold, ttlMs);
      return snapshot(hold);
    });
  }

  /** A new hold in its slot, and (a path) as an intention in the slots of the paths above it. */
  private attach(slot: ResourceSlot, hold: Hold): void {
    slot.holders.set(hold.sessionId, hold);
    if (!(slot instanceof PathSlot)) return;
    const { program, path } = slot.resource;
    for (const above of pathAncestors(path)) {
      (this.slotFor({ program, path: above }, pathKey(program, above)) as PathSlot).addBelow(hold);
    }
  }

  /** Marks a slot whose holds changed, and for a path the slots above it, whose intentions did. */
  private touched(slot: ResourceSlot, dirty: Set<ResourceSlot>): void {
    dirty.add(slot);
    if (slot instanceof PathSlot) for (const above of slot.ancestors()) dirty.add(above);
  }

  private waitTimeout(t: Ticket, ms: number): void {
    t.timeout = this.deadlines.add(t.enqueuedAt + Math.max(0, ms), () => this.onWaitTimeout(t));
  }

  private dropHolds(
    sessionId: string,
    session: SessionLocks,
    holds: Hold[],
    reason: ReleaseReason,
    dirty: Set<ResourceSlot>,
  ): Grant[] {
    if (holds.length === 0) return [];
    const locks = holds
      .map((h) => {
        this.leases.end(h);
        session.holds.delete(h.key);
        const slot = this.slots.get(h.key)!;
        slot.holders.delete(sessionId);
        dirty.add(slot);
        if (slot instanceof PathSlot) {
          for (const above of slot.ancestors()) {
            above.removeBelow(h);
            dirty.add(above);
          }
        }
        return snapshot(h);
      })
      .sort(byResource);
    this.post('released', { sessionId, locks, reason });
    return locks;
  }

  private withdraw(session: SessionLocks, t: Ticket, reason: CancelReason, dirty: Set<ResourceSlot>): void {
    // Its holders were told it waits: they hear that it no longer does.
    if (this.waiters.enabled) this.waiters.mark(holdersBlocking(t));
    this.unqueue(t, dirty);
    session.tickets.delete(t.id);
    if (t.key !== undefined) session.outcomes.withdrawn(t.key, t.id, reason);
    this.post('cancelled', { sessionId: t.sessionId, ticket: t.id, reason });
  }

  /** Takes the ticket out of every queue it waits in (granted or withdrawn). */
  private unqueue(t: Ticket, dirty: Set<ResourceSlot>): void {
    for (const slot of t.slots) {
      slot.remove(t);
      dirty.add(slot);
    }
    for (const slot of t.intents) {
      slot.remove(t);
      dirty.add(slot);
    }
    this.deadlines.cancel(t.timeout);
    t.timeout = undefined;
    this.pushes.forget(t);
  }

  private sessionFor(sessionId: string): SessionLocks {
    let session = this.sessions.get(sessionId);
    if (session === undefined) {
      session = { holds: new Map(), tickets: new Map(), outcomes: new OutcomeCache(KEYS_PER_SESSION) };
      this.sessions.set(sessionId, session);
    }
    return session;
  }

  private slotFor(resource: Resource, key: string): ResourceSlot {
    let slot = this.slots.get(key);
    if (slot === undefined) {
      slot = isPath(resource)
        ? new PathSlot(copyResource(resource) as PathResource, key, this.slots)
        : new ResourceSlot(resource, key);
      this.slots.set(key, slot);
    }
    return slot;
  }

  private dropIfIdle(slot: ResourceSlot): void {
    if (slot.idle) this.slots.delete(slot.key);
  }

  private post<K extends keyof LockEvents>(event: K, payload: Parameters<LockEvents[K]>[0]): void {
    this.outbox.post(() => (this.emit as (e: K, p: typeof payload) => boolean).call(this, event, payload));
  }

  /**
   * Wakes exactly the waiters that can now run: on each changed resource, the front ticket while
   * it is at the front of all its queues and fits the holders (on a path, any entry that nothing
   * ahead of it holds up). A grant changes the ticket's other queues too, so those are checked in
   * turn (readers behind a reader, a batch unblocking its other resources). Then positions are
   * re-announced where they moved. Draining, nobody is woken.
   */
  private settle(dirty: Set<ResourceSlot>): void {
    const work = this.draining ? [] : [...dirty];
    while (work.length > 0) {
      const slot = work.pop()!;
      for (let t = first(slot); t !== undefined && ready(t); t = first(slot)) {
        this.grantTicket(t, dirty);
        // Even a queue checked before: its front just changed.
        for (const s of t.slots) work.push(s);
        for (const s of t.intents) work.push(s);
      }
    }
    // Nobody waits where the change was (an uncontended release): no position can have moved.
    let queued = false;
    for (const slot of dirty) if (slot.queue.length > 0) queued = true;
    if (queued) this.pushes.renumber(dirty);
    for (const slot of dirty) this.dropIfIdle(slot);
  }

  private grantTicket(t: Ticket, dirty: Set<ResourceSlot>): void {
    const session = this.sessions.get(t.sessionId)!;
    this.unqueue(t, dirty);
    session.tickets.delete(t.id);
    const keys = t.slots.map((s) => s.key);
    const grants = this.grant(t.sessionId, session, t.resources, keys, t.mode, t.ttlMs, t.description);
    if (t.key !== undefined) session.outcomes.granted(t.key, grants);
    this.post('granted', { sessionId: t.sessionId, ticket: t.id, grants });
  }

  /** One 'expiring' for all of the session's locks whose warning is due (leases.ts). */
  private expiring(sessionId: string, due: Hold[]): void {
    this.post('expiring', { sessionId, locks: due.map(snapshot).sort(byResource) });
    this.outbox.flush();
  }

  /** One 'expired' then one 'released' for all of the session's locks whose lease has ended (leases.ts). */
  private expired(sessionId: string, due: Hold[]): void {
    this.change((dirty) => {
      this.post('expired', { sessionId, locks: due.map(snapshot).sort(byResource) });
      this.dropHolds(sessionId, this.sessions.get(sessionId)!, due, 'expired', dirty);
    });
  }

  private onWaitTimeout(t: Ticket): void {
    const session = this.sessions.get(t.sessionId)!;
    this.change((dirty) => {
      this.post('waitTimeout', { sessionId: t.sessionId, ticket: t.id });
      this.withdraw(session, t, 'timeout', dirty);
    });
  }

  private deadlock(sessionId: string, edges: WaitEdge[], pending?: Ticket): LockstepError {
    const cycle = describeCycle(edges, this.sessionName, pending);
    this.post('deadlock', { sessionId, cycle });
    return deadlockError(cycle);
  }

  private readonly edgesOf = (sessionId: string): WaitEdge[] => {
    const session = this.sessions.get(sessionId);
    if (session === undefined) return [];
    const out: WaitEdge[] = [];
    for (const t of session.tickets.values()) out.push(...waitEdges(t));
    return out;
  };

  private heldOrThrow(sessionId: string, resources: Resource[]): { session: SessionLocks; holds: Hold[] } {
    const wanted = normalizeResources(resources);
    if (wanted.length === 0) throw new Error('at least one resource is needed');
    const session = this.sessions.get(sessionId);
    const missing = wanted.filter((r) => session?.holds.get(resourceKey(r)) === undefined);
    if (session === undefined || missing.length > 0) {
      throw new LockstepError('NOT_HELD', `not held: ${missing.map(formatResource).join(', ')}`, {
        resources: missing,
      });
    }
    return { session, holds: wanted.map((r) => session.holds.get(resourceKey(r))!) };
  }
}

/** The ticket to try next: a function's front one; on a path any entry may be the one nothing holds up. */
function first(slot: ResourceSlot): Ticket | undefined {
  return slot instanceof PathSlot ? slot.queue.find(ready) : slot.queue[0];
}

function ready(t: Ticket): boolean {
  return t.slots.every((s) => s.readyFor(t)) && t.intents.every((s) => s.readyFor(t));
}
