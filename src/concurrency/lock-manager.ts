import { EventEmitter } from 'eventemitter3';
import { v4 as uuidv4 } from 'uuid';
import { LockstepError, RpcCode, RpcProtocolError } from '../protocol/errors.ts';
import { compareResources, formatResource, normalizeResources, resourceKey } from '../protocol/resource.ts';
import type { LockMode, Resource } from '../protocol/resource.ts';
import type { Clock } from './clock.ts';
import { Deadlines } from './deadlines.ts';
import { findWaitPath, waitEdges } from './deadlock.ts';
import type { WaitEdge } from './deadlock.ts';
import { memoryFences } from './fences.ts';
import type { FenceSource } from './fences.ts';
import type {
  AcquireRequest,
  AcquireResult,
  Blocker,
  CancelReason,
  CycleEntry,
  Grant,
  LockEvents,
  ReleaseReason,
  ResourceStatus,
  TicketInfo,
} from './lock-types.ts';
import { OutcomeCache } from './outcomes.ts';
import { Outbox } from './outbox.ts';
import { byResource, copyResource, positionsOf, snapshot } from './snapshots.ts';
import { ResourceSlot } from './wait-queue.ts';
import type { Hold, Ticket } from './wait-queue.ts';

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
}

const KEYS_PER_SESSION = 1000;

interface SessionLocks {
  holds: Map<string, Hold>;
  /** Waiting tickets in enqueue order. */
  tickets: Map<string, Ticket>;
  outcomes: OutcomeCache;
}

/**
 * Fair read/write locks over opaque resources: strict FIFO queues with tickets, all-or-nothing
 * batches, leases, fencing tokens, upgrades and deadlock detection. Pure and synchronous: every
 * call leaves a consistent state, and its events are emitted only then (see Outbox).
 */
export class LockManager extends EventEmitter<LockEvents> {
  readonly defaults: { defaultTtlMs: number; minTtlMs: number; maxTtlMs: number; warningMs: number };
  private readonly clock: Clock;
  private readonly fences: FenceSource;
  private readonly sessionName: (sessionId: string) => string | undefined;
  private readonly deadlines: Deadlines;
  private readonly slots = new Map<string, ResourceSlot>();
  private readonly sessions = new Map<string, SessionLocks>();
  private readonly outbox = new Outbox();
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
    this.deadlines = new Deadlines(this.clock);
  }

  /** Pending lease expiries, lease warnings and wait timeouts, all served by one clock timer. */
  get scheduled(): number {
    return this.deadlines.size;
  }

  /**
   * Grants every resource at once, queues the whole request (wait), or throws LOCK_DENIED (no
   * wait) or DEADLOCK (waiting would close a wait-for cycle); a refused request changes nothing.
   */
  acquire(sessionId: string, req: AcquireRequest): AcquireResult {
    const resources = normalizeResources(req.resources);
    if (resources.length === 0) throw new Error('acquire needs at least one resource');
    const session = this.sessionFor(sessionId);
    const request = `${req.mode}|${req.wait === true}|${resources.map(resourceKey).join(',')}`;
    const known = req.key === undefined ? undefined : session.outcomes.get(req.key);
    if (known !== undefined) {
      // Answering a different request with the first one's outcome would hand out locks nobody
      // asked for under that key; a reused key is a client bug worth saying so.
      if (known.request !== request) {
        throw new RpcProtocolError(
          RpcCode.INVALID_PARAMS,
          `Invalid params for lock.acquire: key "${req.key}" was already used for a different request`,
          { key: req.key },
        );
      }
      const first = known.outcome;
      if ('error' in first) throw first.error;
      // A ticket still waiting answers with where it stands now, not where it started.
      const waiting = first.result.status === 'queued' ? session.tickets.get(first.result.ticket) : undefined;
      return waiting === undefined
        ? first.result
        : { status: 'queued', ticket: waiting.id, positions: positionsOf(waiting) };
    }
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

  /** Whether an acquire with this key would be answered from the session's memory of it. */
  knowsKey(sessionId: string, key: string): boolean {
    return this.sessions.get(sessionId)?.outcomes.get(key) !== undefined;
  }

  /** All-or-nothing: NOT_HELD naming the resources not held changes nothing. */
  release(sessionId: string, resources: Resource[]): Grant[] {
    try {
      const { session, holds } = this.heldOrThrow(sessionId, resources);
      const dirty = new Set<ResourceSlot>();
      const released = this.dropHolds(sessionId, session, holds, 'release', dirty);
      this.settle(dirty);
      return released;
    } finally {
      this.outbox.flush();
    }
  }

  releaseAll(sessionId: string): Grant[] {
    const session = this.sessions.get(sessionId);
    if (session === undefined) return [];
    try {
      const dirty = new Set<ResourceSlot>();
      const released = this.dropHolds(sessionId, session, [...session.holds.values()], 'release', dirty);
      this.settle(dirty);
      return released;
    } finally {
      this.outbox.flush();
    }
  }

  /** A new lease from now (the lock's own ttl unless one is given); the fence stays. */
  renew(sessionId: string, resources: Resource[], ttlMs?: number): Grant[] {
    try {
      const { holds } = this.heldOrThrow(sessionId, resources);
      const locks = holds.map((h) => {
        this.startLease(h, ttlMs === undefined ? h.ttlMs : this.clampTtl(ttlMs));
        return snapshot(h);
      });
      this.post('renewed', { sessionId, locks });
      return locks;
    } finally {
      this.outbox.flush();
    }
  }

  /** Write becomes read with the same fence and lease; readers waiting at the front get in. */
  downgrade(sessionId: string, resources: Resource[]): Grant[] {
    try {
      const { holds } = this.heldOrThrow(sessionId, resources);
      const dirty = new Set<ResourceSlot>();
      for (const h of holds) {
        if (h.mode === 'write') {
          h.mode = 'read';
          dirty.add(this.slots.get(h.key)!);
        }
      }
      const locks = holds.map(snapshot);
      this.post('downgraded', { sessionId, locks });
      this.settle(dirty);
      return locks;
    } finally {
      this.outbox.flush();
    }
  }

  cancel(sessionId: string, ticket: string): void {
    const session = this.sessions.get(sessionId);
    const t = session?.tickets.get(ticket);
    if (session === undefined || t === undefined) {
      throw new LockstepError('NOT_FOUND', `no waiting ticket ${ticket} of this session`, { ticket });
    }
    try {
      const dirty = new Set<ResourceSlot>();
      this.withdraw(session, t, 'cancel', dirty);
      this.settle(dirty);
    } finally {
      this.outbox.flush();
    }
  }

  /**
   * Keeps the session's locks on `resources` from expiring until the returned function is called:
   * an edit made under them is being committed, and its checks and commit must be one step
   * (cluster rule 5). A lease that runs out meanwhile ends when the pin is lifted.
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

  /** The disconnect: every ticket withdrawn and every lock released in one step, then waiters woken. */
  removeSession(sessionId: string): { released: Grant[]; cancelled: string[] } {
    const session = this.sessions.get(sessionId);
    if (session === undefined) return { released: [], cancelled: [] };
    try {
      const dirty = new Set<ResourceSlot>();
      const cancelled = [...session.tickets.values()].map((t) => {
        this.withdraw(session, t, 'disconnect', dirty);
        return t.id;
      });
      const released = this.dropHolds(sessionId, session, [...session.holds.values()], 'disconnect', dirty);
      this.sessions.delete(sessionId);
      this.settle(dirty);
      return { released, cancelled };
    } finally {
      this.outbox.flush();
    }
  }

  /** Withdraws the session's waiting tickets only; its locks stay (resume grace). */
  withdrawTickets(sessionId: string): string[] {
    const session = this.sessions.get(sessionId);
    if (session === undefined) return [];
    try {
      const dirty = new Set<ResourceSlot>();
      const cancelled = [...session.tickets.values()].map((t) => {
        this.withdraw(session, t, 'disconnect', dirty);
        return t.id;
      });
      this.settle(dirty);
      return cancelled;
    } finally {
      this.outbox.flush();
    }
  }

  /** The resources are gone (function or program deleted): tickets naming them withdrawn, locks on them released. */
  dropResources(match: (r: Resource) => boolean): void {
    try {
      const dirty = new Set<ResourceSlot>();
      for (const session of this.sessions.values()) {
        for (const t of [...session.tickets.values()]) {
          if (t.resources.some(match)) this.withdraw(session, t, 'removed', dirty);
        }
      }
      for (const [sessionId, session] of this.sessions) {
        const gone = [...session.holds.values()].filter((h) => match(h.resource));
        this.dropHolds(sessionId, session, gone, 'removed', dirty);
      }
      this.settle(dirty);
    } finally {
      this.outbox.flush();
    }
  }

  holding(sessionId: string): Grant[] {
    const session = this.sessions.get(sessionId);
    return session === undefined ? [] : [...session.holds.values()].map(snapshot).sort(byResource);
  }

  grantOf(sessionId: string, resource: Resource): Grant | undefined {
    const hold = this.sessions.get(sessionId)?.holds.get(resourceKey(resource));
    return hold === undefined ? undefined : snapshot(hold);
  }

  tickets(sessionId: string): TicketInfo[] {
    const session = this.sessions.get(sessionId);
    if (session === undefined) return [];
    return [...session.tickets.values()].map((t) => ({
      ticket: t.id,
      sessionId: t.sessionId,
      resources: t.resources.map(copyResource),
      mode: t.mode,
      positions: positionsOf(t),
      enqueuedAt: t.enqueuedAt,
      ...(t.description === undefined ? {} : { description: t.description }),
    }));
  }

  /** Every held or awaited resource (of one program, if given), in canonical resource order. */
  status(program?: string): ResourceStatus[] {
    const out: ResourceStatus[] = [];
    for (const slot of this.slots.values()) {
      if (program !== undefined && slot.resource.program !== program) continue;
      out.push({
        resource: copyResource(slot.resource),
        holders: [...slot.holders.values()].map((h) => ({
          sessionId: h.sessionId,
          mode: h.mode,
          fence: h.fence,
          grantedAt: h.grantedAt,
          expiresAt: h.expiresAt,
          ...(h.description === undefined ? {} : { description: h.description }),
        })),
        queue: slot.queue.map((t, i) => ({
          ticket: t.id,
          sessionId: t.sessionId,
          mode: t.mode,
          position: i + 1,
          upgrade: t.mode === 'write' && slot.holders.get(t.sessionId)?.mode === 'read',
          front: slot.isFront(i),
          ...(t.description === undefined ? {} : { description: t.description }),
        })),
      });
    }
    return out.sort((a, b) => compareResources(a.resource, b.resource));
  }

  /** Cancels every timer; the state stays readable. */
  close(): void {
    this.deadlines.close();
  }

  private tryAcquire(
    sessionId: string,
    session: SessionLocks,
    resources: Resource[],
    req: AcquireRequest,
  ): AcquireResult {
    const ttlMs = this.clampTtl(req.ttlMs ?? this.defaults.defaultTtlMs);
    const keys = resources.map(resourceKey);
    const blocked = resources.filter((_, i) => !this.grantableNow(sessionId, session, keys[i]!, req.mode));
    if (blocked.length === 0) {
      const cycle = req.mode === 'write' ? this.cycleByUpgrade(sessionId, session, keys) : undefined;
      if (cycle !== undefined) throw this.deadlock(sessionId, cycle);
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
   * sole holder; anything else needs an empty queue and compatible holders.
   */
  private grantableNow(sessionId: string, session: SessionLocks, key: string, mode: LockMode): boolean {
    const slot = this.slots.get(key);
    const held = session.holds.get(key);
    if (held !== undefined) return held.mode === 'write' || mode === 'read' || slot!.holders.size === 1;
    return slot === undefined || (slot.queue.length === 0 && slot.admits(sessionId, mode));
  }

  private deny(sessionId: string, mode: LockMode, resources: Resource[], blocked: Resource[]): LockstepError {
    let soonest: number | undefined;
    const blockers: Blocker[] = blocked.map((resource) => {
      const slot = this.slots.get(resourceKey(resource))!;
      const holders = slot.conflicting(sessionId, mode).map((h) => {
        soonest = soonest === undefined ? h.expiresAt : Math.min(soonest, h.expiresAt);
        const name = this.sessionName(h.sessionId);
        return {
          sessionId: h.sessionId,
          ...(name === undefined ? {} : { name }),
          mode: h.mode,
          ...(h.description === undefined ? {} : { description: h.description }),
          expiresAt: new Date(h.expiresAt).toISOString(),
        };
      });
      return { resource: copyResource(resource), holders, queueLength: slot.queue.length };
    });
    this.post('denied', { sessionId, mode, resources: resources.map(copyResource), blockers });
    return new LockstepError(
      'LOCK_DENIED',
      `${mode} lock not available on ${blocked.map(formatResource).join(', ')}`,
      { blockers },
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
      ttlMs,
      ...(req.description === undefined ? {} : { description: req.description }),
      ...(req.key === undefined ? {} : { key: req.key }),
      enqueuedAt: now,
      timeout: undefined,
      ordinal: new Map(),
      reported: new Map(),
    };
    const fronts: ResourceSlot[] = [];
    resources.forEach((resource, i) => {
      const slot = this.slotFor(resource, keys[i]!);
      // A holder waits at the front, but never ahead of its own earlier ticket: a session's
      // tickets keep one order in every queue, or two of them could wait for each other forever.
      const front = session.holds.has(slot.key) && !slot.queuedBehindFront(sessionId);
      if (front) fronts.push(slot);
      slot.enqueue(ticket, front);
      ticket.slots.push(slot);
    });
    session.tickets.set(ticket.id, ticket);

    const cycle = this.cycleThrough(ticket, fronts);
    if (cycle !== undefined) {
      session.tickets.delete(ticket.id);
      for (const slot of ticket.slots) {
        slot.remove(ticket);
        this.dropIfIdle(slot);
      }
      throw this.deadlock(sessionId, cycle);
    }

    for (const slot of ticket.slots) ticket.reported.set(slot.key, slot.indexOf(ticket)! + 1);
    if (req.waitTimeoutMs !== undefined) {
      ticket.timeout = this.deadlines.add(now + Math.max(0, req.waitTimeoutMs), () => this.onWaitTimeout(ticket));
    }
    this.post('queued', {
      sessionId,
      ticket: ticket.id,
      mode: req.mode,
      resources: resources.map(copyResource),
      positions: positionsOf(ticket),
    });
    // A front entry moves everyone behind it one place back.
    this.renumber(new Set(fronts));
    return { status: 'queued', ticket: ticket.id, positions: positionsOf(ticket) };
  }

  /**
   * The wait-for cycle the newly queued ticket `t` would close, if any. Its own edges are new, and
   * so are the edges of a ticket that now stands right behind one of its front entries without
   * already waiting for this session's lock there.
   */
  private cycleThrough(t: Ticket, fronts: ResourceSlot[]): CycleEntry[] | undefined {
    // Nobody can wait for a session that holds nothing and has no other ticket: no cycle, no walk.
    const own = this.sessions.get(t.sessionId)!;
    if (own.holds.size === 0 && own.tickets.size === 1) return undefined;
    const edgesOf = (sessionId: string): WaitEdge[] => this.edgesOf(sessionId);
    const closing = findWaitPath(t.sessionId, waitEdges(t), t.sessionId, edgesOf);
    if (closing !== undefined) return this.describeCycle(closing, t);
    for (const slot of fronts) {
      const behind = slot.queue[slot.indexOf(t)! + 1];
      if (behind === undefined) continue;
      if (slot.conflicting(behind.sessionId, behind.mode).some((h) => h.sessionId === t.sessionId)) continue;
      const path = findWaitPath(t.sessionId, edgesOf(t.sessionId), behind.sessionId, edgesOf);
      if (path !== undefined) {
        return this.describeCycle(
          [...path, { from: behind.sessionId, to: t.sessionId, ticket: behind, resource: slot.resource }],
          t,
        );
      }
    }
    return undefined;
  }

  /**
   * The cycle an immediate upgrade (sole reader asking for write) would close. It waits for
   * nobody, but readers queued behind it, which did not conflict with its read lock, would now
   * wait for it: if this session itself waits, directly or not, for one of them, granting would
   * deadlock them both, so the upgrade is refused like a wait that closes a cycle.
   */
  private cycleByUpgrade(sessionId: string, session: SessionLocks, keys: string[]): CycleEntry[] | undefined {
    if (session.tickets.size === 0) return undefined;
    const edgesOf = (id: string): WaitEdge[] => this.edgesOf(id);
    for (const key of keys) {
      if (session.holds.get(key)?.mode !== 'read') continue;
      const slot = this.slots.get(key)!;
      for (const q of slot.queue) {
        if (q.sessionId === sessionId || slot.conflicting(q.sessionId, q.mode).some((h) => h.sessionId === sessionId))
          continue;
        const path = findWaitPath(sessionId, edgesOf(sessionId), q.sessionId, edgesOf);
        if (path !== undefined)
          return this.describeCycle([
            ...path,
            { from: q.sessionId, to: sessionId, ticket: q, resource: slot.resource },
          ]);
      }
    }
    return undefined;
  }

  private deadlock(sessionId: string, cycle: CycleEntry[]): LockstepError {
    this.post('deadlock', { sessionId, cycle });
    const names = cycle.map((c) => c.name ?? c.sessionId);
    return new LockstepError('DEADLOCK', `would deadlock: ${[...names, names[0]].join(' -> ')}`, { cycle });
  }

  private edgesOf(sessionId: string): WaitEdge[] {
    const session = this.sessions.get(sessionId);
    if (session === undefined) return [];
    const out: WaitEdge[] = [];
    for (const t of session.tickets.values()) out.push(...waitEdges(t));
    return out;
  }

  /** The ticket being refused never existed, so its step names no ticket. */
  private describeCycle(edges: WaitEdge[], pending?: Ticket): CycleEntry[] {
    return edges.map((e) => {
      const name = this.sessionName(e.from);
      return {
        sessionId: e.from,
        ...(name === undefined ? {} : { name }),
        ...(e.ticket === pending ? {} : { ticket: e.ticket.id }),
        resource: copyResource(e.resource),
      };
    });
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

  private startLease(hold: Hold, ttlMs: number): void {
    this.deadlines.cancel(hold.warning);
    this.deadlines.cancel(hold.expiry);
    hold.ttlMs = ttlMs;
    hold.expiresAt = this.clock.now() + ttlMs;
    const lead = Math.min(this.defaults.warningMs, ttlMs / 5);
    hold.warnAt = hold.expiresAt - lead;
    hold.warning = lead > 0 ? this.deadlines.add(hold.warnAt, () => this.onWarning(hold)) : undefined;
    hold.expiry = this.deadlines.add(hold.expiresAt, () => this.onExpiry(hold));
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
    try {
      this.post('expired', { sessionId: fired.sessionId, locks: due.map(snapshot).sort(byResource) });
      const dirty = new Set<ResourceSlot>();
      this.dropHolds(fired.sessionId, session, due, 'expired', dirty);
      this.settle(dirty);
    } finally {
      this.outbox.flush();
    }
  }

  private isPinned(h: Hold): boolean {
    return this.pins.has(`${h.sessionId}\n${h.key}`);
  }

  private onWaitTimeout(t: Ticket): void {
    const session = this.sessions.get(t.sessionId)!;
    try {
      this.post('waitTimeout', { sessionId: t.sessionId, ticket: t.id });
      const dirty = new Set<ResourceSlot>();
      this.withdraw(session, t, 'timeout', dirty);
      this.settle(dirty);
    } finally {
      this.outbox.flush();
    }
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

  private withdraw(session: SessionLocks, t: Ticket, reason: CancelReason, dirty: Set<ResourceSlot>): void {
    for (const slot of t.slots) {
      slot.remove(t);
      dirty.add(slot);
    }
    this.deadlines.cancel(t.timeout);
    t.timeout = undefined;
    session.tickets.delete(t.id);
    // A retry must not wait for a grant that can no longer come. A ticket lost with its
    // connection (resume grace) is forgotten instead: the resumed session's retry queues afresh.
    if (t.key !== undefined && reason === 'disconnect') session.outcomes.forget(t.key);
    else if (t.key !== undefined) {
      session.outcomes.update(t.key, {
        error: new LockstepError('NOT_FOUND', `the request with key "${t.key}" was withdrawn (${reason})`, {
          ticket: t.id,
          reason,
        }),
      });
    }
    this.post('cancelled', { sessionId: t.sessionId, ticket: t.id, reason });
  }

  /**
   * Wakes exactly the waiters that can now run: on each changed resource, the front ticket while
   * it is at the front of all its queues and fits the holders. A grant changes the ticket's other
   * queues too, so those are checked in turn (readers behind a reader, a batch unblocking its
   * other resources). Then positions are re-announced where they moved.
   */
  private settle(dirty: Set<ResourceSlot>): void {
    const work = [...dirty];
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
    const keys = t.slots.map((s) => s.key);
    const grants = this.grant(t.sessionId, session, t.resources, keys, t.mode, t.ttlMs, t.description);
    // The reply to the acquire said "queued"; a retry after a lost lock.granted must learn it won.
    if (t.key !== undefined) session.outcomes.update(t.key, { result: { status: 'granted', grants } });
    this.post('granted', { sessionId: t.sessionId, ticket: t.id, grants });
  }

  private renumber(slots: Set<ResourceSlot>): void {
    const moved = new Set<Ticket>();
    for (const slot of slots) {
      slot.queue.forEach((t, i) => {
        if (t.reported.get(slot.key) !== i + 1) {
          t.reported.set(slot.key, i + 1);
          moved.add(t);
        }
      });
    }
    for (const t of moved) this.post('position', { sessionId: t.sessionId, ticket: t.id, positions: positionsOf(t) });
  }

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
      slot = new ResourceSlot(resource, key);
      this.slots.set(key, slot);
    }
    return slot;
  }

  private dropIfIdle(slot: ResourceSlot): void {
    if (slot.idle) this.slots.delete(slot.key);
  }

  private clampTtl(ttlMs: number): number {
    return Math.min(this.defaults.maxTtlMs, Math.max(this.defaults.minTtlMs, ttlMs));
  }

  private post<K extends keyof LockEvents>(event: K, payload: Parameters<LockEvents[K]>[0]): void {
    this.outbox.post(() => (this.emit as (e: K, p: typeof payload) => boolean).call(this, event, payload));
  }
}

function ready(t: Ticket): boolean {
  return t.slots.every((s) => s.queue[0] === t && s.admits(t.sessionId, t.mode));
}
