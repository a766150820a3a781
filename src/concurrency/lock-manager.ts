import { v4 as uuidv4 } from 'uuid';
import { LockstepError } from '../protocol/errors.ts';
import { compareResources, formatResource, normalizeResources, resourceKey } from '../protocol/resource.ts';
import type { LockMode, Resource } from '../protocol/resource.ts';
import { cycleByUpgrade, cycleThrough, deadlockError, describeCycle } from './deadlock.ts';
import type { WaitEdge } from './deadlock.ts';
import { waitEdges } from './deadlock.ts';
import { LockDenied } from './lock-errors.ts';
import type {
  AcquireRequest,
  AcquireResult,
  Blocker,
  Grant,
  ResourceStatus,
  RestoredLock,
  TicketInfo,
} from './lock-types.ts';
import { LockTable } from './lock-table.ts';
import type { SessionLocks } from './lock-table.ts';
import { requestOf } from './outcomes.ts';
import type { Hold, ResourceSlot, Ticket } from './resource-slot.ts';
import { byResource, copyResource, positionsOf, slotStatus, snapshot, ticketInfo } from './snapshots.ts';

export type { LockManagerOptions } from './lock-table.ts';

/**
 * Fair read/write locks over opaque resources: strict FIFO queues with tickets, all-or-nothing
 * batches, leases, fencing tokens, upgrades and deadlock detection. Pure and synchronous: every
 * call leaves a consistent state, and its events are emitted only then (see Outbox).
 */
export class LockManager extends LockTable {
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
      if (session.holds.has(key) || !slot.admits(sessionId, lock.mode)) {
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
      slot.holders.set(sessionId, hold);
      this.startLease(hold, lock.ttlMs, lock.expiresAt);
    }
  }

  /**
   * A restored lock given back at its owner's resume: its lease ends at `expiresAt` if that is
   * sooner than it was held for (docs/cluster-failover.md, "What is restored, exactly"). Emits
   * nothing: the record keeps the later expiry, which only holds the resource longer.
   */
  endLeaseAt(sessionId: string, resource: Resource, expiresAt: number): void {
    this.catchUp();
    const hold = this.sessions.get(sessionId)?.holds.get(resourceKey(resource));
    if (hold !== undefined && expiresAt < hold.expiresAt) this.startLease(hold, hold.ttlMs, expiresAt);
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
        this.startLease(h, ttlMs === undefined ? h.ttlMs : this.clampTtl(ttlMs));
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
          dirty.add(this.slots.get(h.key)!);
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
      if (program === undefined || slot.resource.program === program) out.push(slotStatus(slot));
    }
    return out.sort((a, b) => compareResources(a.resource, b.resource));
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
      if (req.mode === 'write' && session.tickets.size > 0) {
        const reading = keys.filter((k) => session.holds.get(k)?.mode === 'read').map((k) => this.slots.get(k)!);
        const cycle = cycleByUpgrade(sessionId, reading, this.edgesOf);
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
   * sole holder; anything else needs an empty queue and compatible holders.
   */
  private grantableNow(sessionId: string, session: SessionLocks, key: string, mode: LockMode): boolean {
    const slot = this.slots.get(key);
    const held = session.holds.get(key);
    if (held !== undefined) return held.mode === 'write' || mode === 'read' || slot!.holders.size === 1;
    return slot === undefined || (slot.queue.length === 0 && slot.admits(sessionId, mode));
  }

  private deny(sessionId: string, mode: LockMode, resources: Resource[], blocked: Resource[]): LockDenied {
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
          expiresAt: h.expiresAt,
        };
      });
      return { resource: copyResource(resource), holders, queueLength: slot.queue.length };
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
    const ticket: Ticket = {
      id: uuidv4(),
      sessionId,
      mode: req.mode,
      resources,
      slots: [],
      ttlMs,
      ...(req.description === undefined ? {} : { description: req.description }),
      ...(req.key === undefined ? {} : { key: req.key }),
      enqueuedAt: this.clock.now(),
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

    // Nobody can wait for a session that holds nothing and has no other ticket: no cycle, no walk.
    const alone = session.holds.size === 0 && session.tickets.size === 1;
    const cycle = alone ? undefined : cycleThrough(ticket, fronts, this.edgesOf);
    if (cycle !== undefined) {
      session.tickets.delete(ticket.id);
      for (const slot of ticket.slots) {
        slot.remove(ticket);
        this.dropIfIdle(slot);
      }
      throw this.deadlock(sessionId, cycle, ticket);
    }

    for (const slot of ticket.slots) ticket.reported.set(slot.key, slot.indexOf(ticket)! + 1);
    if (req.waitTimeoutMs !== undefined) this.waitTimeout(ticket, req.waitTimeoutMs);
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
