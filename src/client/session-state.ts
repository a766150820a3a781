import { DEFAULT_PROGRAM } from '../protocol/limits.ts';
import type { ParamsOf, ResultOf, Topic } from '../protocol/methods.ts';
import type { NotificationName, NotificationParams } from '../protocol/notifications.ts';
import { isFunction, type Resource } from '../protocol/resource.ts';
import type { Grant } from '../protocol/wire.ts';
import { isLockstepError, LockstepClientError } from './errors.ts';
import type { TicketWaiter } from './grant-waiter.ts';
import type { Leases } from './leases.ts';
import type { CallableMethod } from './types.ts';

export interface TrackOptions {
  autoRenew?: boolean | undefined;
  waiter?: TicketWaiter;
}

interface TicketState {
  ttlMs: number;
  auto: boolean;
  waiter: TicketWaiter | undefined;
  /** The acquire as sent, to queue it again after a failover. */
  request: ParamsOf<'lock.acquire'>;
}

/** A waiting acquire() whose ticket went with the socket, to be queued again on the session's next socket. */
export interface SuspendedTicket {
  auto: boolean;
  waiter: TicketWaiter;
  request: ParamsOf<'lock.acquire'>;
}

export interface SessionStateHooks {
  /** The lease length the server will give for a requested ttl. */
  ttlFor(ttlMs: number | undefined): number;
  autoRenew: boolean;
  /** Locks granted to a ticket nobody waits for: hand them back. */
  abandoned(grants: readonly Grant[]): void;
}

/**
 * What the client knows of its session, kept up to date from results and pushes as they are read:
 * held locks (with their renewal), queued tickets, watches, subscribed topics and the last event
 * sequence number, which a reconnect needs to carry the session on.
 */
export class SessionState {
  readonly tickets = new Map<string, TicketState>();
  private suspended: SuspendedTicket[] = [];
  readonly topics = new Set<Topic>();
  readonly watching = new Map<string, number[]>();
  lastSeq = 0;
  /** The server run lastSeq belongs to (sequence numbers restart with the server). */
  runId: string | undefined;

  constructor(
    readonly leases: Leases,
    private readonly hooks: SessionStateHooks,
  ) {}

  /** Sync bookkeeping from a result, run as the reply is read so later pushes find it done. */
  afterResult(method: CallableMethod, params: unknown, result: unknown, o: TrackOptions): void {
    const program = (params as { program?: string } | undefined)?.program ?? DEFAULT_PROGRAM;
    switch (method) {
      case 'lock.acquire': {
        const r = result as ResultOf<'lock.acquire'>;
        const ttlMs = this.hooks.ttlFor((params as ParamsOf<'lock.acquire'>).ttlMs);
        const auto = o.autoRenew ?? this.hooks.autoRenew;
        if (r.status === 'granted') {
          const previous = r.grants.map((g) => this.leases.get(g.resource));
          this.leases.add(r.grants, ttlMs, auto);
          o.waiter?.granted(r.grants, previous);
        } else {
          this.tickets.set(r.ticket, { ttlMs, auto, waiter: o.waiter, request: params as ParamsOf<'lock.acquire'> });
          o.waiter?.queued(r.ticket, r.positions);
        }
        return;
      }
      case 'lock.renew':
      case 'lock.downgrade':
        this.leases.update((result as ResultOf<'lock.renew'>).grants);
        return;
      case 'lock.release':
      case 'lock.releaseAll':
        this.leases.remove((result as ResultOf<'lock.release'>).released);
        return;
      case 'lock.cancel': {
        const ticket = (params as ParamsOf<'lock.cancel'>).ticket;
        const t = this.tickets.get(ticket);
        this.tickets.delete(ticket);
        t?.waiter?.cancelled();
        return;
      }
      case 'edit.apply':
      case 'history.undo':
      case 'history.redo':
      case 'checkpoint.restore': {
        const removed = new Set((result as ResultOf<'edit.apply'>).removed);
        if (removed.size > 0) this.forgetFunctions(program, (id) => removed.has(id));
        return;
      }
      case 'program.delete': {
        const deleted = (result as ResultOf<'program.delete'>).deleted;
        this.leases.removeWhere((r) => r.program === deleted);
        this.watching.delete(deleted);
        return;
      }
      case 'function.watch':
      case 'function.unwatch': {
        const r = result as ResultOf<'function.watch'>;
        if (r.watching.length > 0) this.watching.set(r.program, r.watching);
        else this.watching.delete(r.program);
        return;
      }
      case 'events.subscribe': {
        const r = result as ResultOf<'events.subscribe'>;
        for (const t of r.topics) this.topics.add(t);
        this.lastSeq = Math.max(this.lastSeq, r.seq);
        this.runId = r.runId;
        return;
      }
      case 'events.unsubscribe':
        this.topics.clear();
        for (const t of (result as ResultOf<'events.unsubscribe'>).topics) this.topics.add(t);
        return;
      default:
        return;
    }
  }

  /**
   * A refusal that says what the client believed it held is not held: the server let the lease run
   * out (or ended it), so those locks are lost. A release crossing an expiry is one too: whatever
   * was done under the lock after it ran out was done without it.
   */
  afterError(method: CallableMethod, err: unknown): void {
    if (method !== 'lock.release' && method !== 'lock.renew' && method !== 'lock.downgrade') return;
    if (isLockstepError(err, 'NOT_HELD') && Array.isArray(err.data.resources))
      this.leases.lose(err.data.resources as Resource[], 'expired');
  }

  /** A server push, before the client's listeners hear of it. */
  afterPush(n: NotificationName, params: unknown): void {
    switch (n) {
      case 'lock.granted': {
        const p = params as NotificationParams<'lock.granted'>;
        const t = this.takeTicket(p.ticket);
        if (t === undefined) {
          this.hooks.abandoned(p.grants);
          break;
        }
        const previous = p.grants.map((g) => this.leases.get(g.resource));
        this.leases.add(p.grants, t.ttlMs, t.auto);
        t.waiter?.granted(p.grants, previous);
        break;
      }
      case 'lock.queue': {
        const p = params as NotificationParams<'lock.queue'>;
        this.tickets.get(p.ticket)?.waiter?.moved(p.positions);
        break;
      }
      case 'lock.waitTimeout': {
        const p = params as NotificationParams<'lock.waitTimeout'>;
        this.takeTicket(p.ticket)?.waiter?.failed(
          LockstepClientError.local(
            'WAIT_TIMEOUT',
            `ticket ${p.ticket} waited past its waitTimeoutMs`,
            'lock.acquire',
            { ticket: p.ticket },
          ),
        );
        break;
      }
      case 'lock.cancelled': {
        const p = params as NotificationParams<'lock.cancelled'>;
        this.takeTicket(p.ticket)?.waiter?.failed(
          LockstepClientError.local(
            'CANCELLED',
            `ticket ${p.ticket} was withdrawn by the server (${p.reason})`,
            'lock.acquire',
            { ticket: p.ticket, reason: p.reason },
          ),
        );
        break;
      }
      case 'lock.expiring':
        this.leases.expiring((params as NotificationParams<'lock.expiring'>).locks);
        break;
      case 'lock.expired':
        this.leases.lose(
          (params as NotificationParams<'lock.expired'>).locks.map((l) => l.resource),
          'expired',
        );
        break;
      case 'function.changed': {
        const p = params as NotificationParams<'function.changed'>;
        if (p.removed === true) this.forgetFunctions(p.program, (id) => id === p.function);
        break;
      }
      case 'event':
        // Replayed events follow the subscribe reply, which already moved lastSeq to the newest.
        this.lastSeq = Math.max(this.lastSeq, (params as NotificationParams<'event'>).seq);
        break;
      default:
        break;
    }
  }

  private forgetFunctions(program: string, match: (id: number) => boolean): void {
    this.leases.removeWhere((r) => r.program === program && isFunction(r) && match(r.function));
    const left = (this.watching.get(program) ?? []).filter((id) => !match(id));
    if (left.length > 0) this.watching.set(program, left);
    else this.watching.delete(program);
  }

  private takeTicket(ticket: string): TicketState | undefined {
    const t = this.tickets.get(ticket);
    this.tickets.delete(ticket);
    return t;
  }

  /** Fails every waiting acquire, suspended ones included. */
  failTickets(err: LockstepClientError): void {
    const waiting = [...this.tickets.values(), ...this.takeSuspended()];
    this.tickets.clear();
    for (const t of waiting) t.waiter?.failed(err);
  }

  /**
   * The socket went with the tickets; the acquire() calls waiting on them keep waiting, to be
   * queued again, in the same order, once the session resumes (takeSuspended). A ticket of a raw
   * lock.acquire call has nobody to tell its new ticket id to: it just ends.
   */
  suspendTickets(): void {
    for (const t of this.tickets.values()) {
      if (t.waiter === undefined) continue;
      t.waiter.suspend();
      this.suspended.push({ auto: t.auto, waiter: t.waiter, request: t.request });
    }
    this.tickets.clear();
  }

  takeSuspended(): SuspendedTicket[] {
    const out = this.suspended;
    this.suspended = [];
    return out;
  }
}
