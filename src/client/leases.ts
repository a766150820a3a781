import { formatResource, resourceKey, type Resource } from '../protocol/resource.ts';
import type { Grant } from '../protocol/wire.ts';
import { LockstepClientError } from './errors.ts';
import type { BelievedLock } from './resume-plan.ts';
import type { LossReason, LostLock } from './types.ts';

interface Lease {
  grant: Grant;
  /** Every fence this lock had while held without a break: the first grant's and its upgrades'. */
  fences: number[];
  /** The lease length asked for, so a renewal asks for the same again. */
  ttlMs: number;
  auto: boolean;
  /** Local time (ms) at which to renew; measured locally so client and server clocks may differ. */
  renewAt: number;
  /** Local time (ms) by which the lease ends unless renewed, as far as the client was told. */
  until: number;
  busy: boolean;
  /** Aborted with LOCK_LOST when the lock is lost: the signal of its handles. */
  loss: AbortController;
  /** Grants of it the application was told of (acquire results, granted tickets): see claims(). */
  claims: number;
}

export interface LeaseHooks {
  /** Renews these resources of one program; the new grants come back through `update()`. */
  renew(program: string, resources: Resource[], ttlMs: number): Promise<unknown>;
  failed(err: unknown, resources: Resource[]): void;
  /** A lock the client held is lost (README, "Client SDK"). */
  lost(lock: LostLock): void;
}

/**
 * The locks this session holds, as far as the client has been told, and the automatic renewal of
 * those that asked for it: each is renewed at `fraction` of its ttl, or at once on lock.expiring.
 * While the socket is down they are suspended: the client cannot know whether they are still its
 * own until the session is back, and then each is held again (settle) or lost (lose).
 */
export class Leases {
  private readonly leases = new Map<string, Lease>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private timerAt = Infinity;
  private isSuspended = false;

  constructor(
    private readonly hooks: LeaseHooks,
    private readonly fraction: number,
  ) {}

  /** Whether the locks are in doubt: the socket is down or a resume is under way. */
  get suspended(): boolean {
    return this.isSuspended;
  }

  held(): Grant[] {
    return [...this.leases.values()].map((l) => l.grant);
  }

  get(r: Resource): Grant | undefined {
    return this.leases.get(resourceKey(r))?.grant;
  }

  /**
   * The lock on `r` as held now, if it is the one granted under `fence` (that grant, or an upgrade
   * of it made while it was held), suspended or not. A lock that ended and was granted again is not.
   */
  grantUnder(r: Resource, fence: number): Grant | undefined {
    const lease = this.leases.get(resourceKey(r));
    return lease?.fences.includes(fence) === true ? lease.grant : undefined;
  }

  /** Aborted when the lock granted under `fence` on `r` is lost; undefined when it is not held. */
  signalUnder(r: Resource, fence: number): AbortSignal | undefined {
    const lease = this.leases.get(resourceKey(r));
    return lease?.fences.includes(fence) === true ? lease.loss.signal : undefined;
  }

  get size(): number {
    return this.leases.size;
  }

  /** What the client believes it holds, as a resume weighs it against what the server gave back. */
  believed(): BelievedLock[] {
    return [...this.leases.values()].map((l) => ({ grant: l.grant, fences: [...l.fences], until: l.until }));
  }

  /**
   * How many grants of the lock on `r` the application was told of while it was held without a
   * break: a grant given back (Leases.add with `claimed` false) counts none, so a change in this
   * number means an acquire of the client was answered with that lock meanwhile.
   */
  claims(r: Resource): number {
    return this.leases.get(resourceKey(r))?.claims ?? 0;
  }

  /** `claimed` false: a grant nobody waits for, recorded only to be given back. */
  add(grants: readonly Grant[], ttlMs: number, auto: boolean, claimed = true): void {
    const now = Date.now();
    for (const grant of grants) {
      const key = resourceKey(grant.resource);
      const prev = this.leases.get(key);
      // A reentrant acquire refreshes a lock someone already asked to keep alive: keep doing so.
      const fences =
        prev === undefined
          ? [grant.fence]
          : prev.fences.includes(grant.fence)
            ? prev.fences
            : [...prev.fences, grant.fence];
      this.leases.set(key, {
        grant,
        fences,
        ttlMs,
        auto: auto || (prev?.auto ?? false),
        renewAt: now + ttlMs * this.fraction,
        until: now + ttlMs,
        busy: prev?.busy ?? false,
        loss: prev?.loss ?? new AbortController(),
        claims: (prev?.claims ?? 0) + (claimed ? 1 : 0),
      });
    }
    this.schedule();
  }

  /** New expiry or mode of locks already held (renew, downgrade). */
  update(grants: readonly Grant[]): void {
    const now = Date.now();
    for (const grant of grants) {
      const lease = this.leases.get(resourceKey(grant.resource));
      if (lease === undefined) continue;
      lease.grant = grant;
      if (!lease.fences.includes(grant.fence)) lease.fences.push(grant.fence);
      lease.renewAt = now + lease.ttlMs * this.fraction;
      lease.until = now + lease.ttlMs;
    }
    this.schedule();
  }

  /** The socket is down: every lock is in doubt, and nothing is renewed until the session is back. */
  suspend(): void {
    this.isSuspended = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  /**
   * The session is back and gave these locks back as they were believed (same resource, mode and
   * fence): held again, as the server now states them. They kept what was left of their leases,
   * not fresh ones, so the automatic ones are renewed at once.
   */
  settle(kept: readonly Grant[]): void {
    this.isSuspended = false;
    for (const grant of kept) {
      const lease = this.leases.get(resourceKey(grant.resource));
      if (lease !== undefined) lease.grant = grant;
    }
    this.expiring(kept);
  }

  /**
   * These locks are lost, for `reason`: forgotten, their handles' signals aborted with LOCK_LOST,
   * and each reported. Resources not held are skipped. Returns what was lost.
   */
  lose(resources: readonly Resource[], reason: LossReason): LostLock[] {
    const out: LostLock[] = [];
    for (const r of resources) {
      const key = resourceKey(r);
      const lease = this.leases.get(key);
      if (lease === undefined) continue;
      this.leases.delete(key);
      const lost: LostLock = { resource: lease.grant.resource, mode: lease.grant.mode, fences: lease.fences, reason };
      out.push(lost);
      lease.loss.abort(
        LockstepClientError.local(
          'LOCK_LOST',
          `the ${lost.mode} lock on ${formatResource(lost.resource)} was lost (${reason})`,
          undefined,
          { ...lost },
        ),
      );
      this.hooks.lost(lost);
    }
    return out;
  }

  /** Released on purpose: no longer held, and not lost. */
  remove(resources: readonly Resource[]): void {
    for (const r of resources) this.leases.delete(resourceKey(r));
  }

  removeWhere(pred: (r: Resource) => boolean): void {
    for (const [key, lease] of this.leases) if (pred(lease.grant.resource)) this.leases.delete(key);
  }

  /** The server warned that these end soon: renew the automatic ones now. */
  expiring(grants: readonly Grant[]): void {
    const now = Date.now();
    for (const g of grants) {
      const lease = this.leases.get(resourceKey(g.resource));
      if (lease?.auto === true) lease.renewAt = Math.min(lease.renewAt, now);
    }
    this.schedule();
  }

  clear(): void {
    this.leases.clear();
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  private schedule(): void {
    if (this.isSuspended) return;
    let next = Infinity;
    for (const l of this.leases.values()) if (l.auto && !l.busy && l.renewAt < next) next = l.renewAt;
    if (next === Infinity || next >= this.timerAt) return;
    clearTimeout(this.timer);
    this.timerAt = next;
    this.timer = setTimeout(() => this.run(), Math.max(0, next - Date.now()));
  }

  private run(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = Date.now();
    const groups = new Map<string, Lease[]>();
    for (const l of this.leases.values()) {
      if (!l.auto || l.busy || l.renewAt > now) continue;
      const key = `${l.grant.resource.program}\u0000${l.ttlMs}`;
      const group = groups.get(key);
      if (group === undefined) groups.set(key, [l]);
      else group.push(l);
    }
    for (const group of groups.values()) this.renewGroup(group);
    this.schedule();
  }

  private renewGroup(group: Lease[]): void {
    const first = group[0];
    if (first === undefined) return;
    const resources = group.map((l) => l.grant.resource);
    for (const l of group) l.busy = true;
    this.hooks
      .renew(first.grant.resource.program, resources, first.ttlMs)
      .catch((err: unknown) => {
        // NOT_HELD: the client reported the ones it still held as lost (SessionState.afterError).
        // All or nothing: the others were not renewed either, so they go again at once.
        if (err instanceof LockstepClientError && err.type === 'NOT_HELD') {
          for (const l of group) l.renewAt = Date.now();
          return;
        }
        this.hooks.failed(err, resources);
        for (const l of group) l.renewAt = Date.now() + Math.max(50, l.ttlMs / 10);
      })
      .finally(() => {
        for (const l of group) l.busy = false;
        this.schedule();
      });
  }
}
