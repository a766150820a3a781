import { resourceKey, type Resource } from '../protocol/resource.ts';
import type { Grant } from '../protocol/wire.ts';
import { isLockstepError } from './errors.ts';

interface Lease {
  grant: Grant;
  /** Every fence this lock had while held without a break: the first grant's and its upgrades'. */
  fences: number[];
  /** The lease length asked for, so a renewal asks for the same again. */
  ttlMs: number;
  auto: boolean;
  /** Local time (ms) at which to renew; measured locally so client and server clocks may differ. */
  renewAt: number;
  busy: boolean;
}

export interface LeaseHooks {
  /** Renews these resources of one program; the new grants come back through `update()`. */
  renew(program: string, resources: Resource[], ttlMs: number): Promise<unknown>;
  failed(err: unknown, resources: Resource[]): void;
}

/**
 * The locks this session holds, as far as the client has been told, and the automatic renewal of
 * those that asked for it: each is renewed at `fraction` of its ttl, or at once on lock.expiring.
 */
export class Leases {
  private readonly leases = new Map<string, Lease>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private timerAt = Infinity;

  constructor(
    private readonly hooks: LeaseHooks,
    private readonly fraction: number,
  ) {}

  held(): Grant[] {
    return [...this.leases.values()].map((l) => l.grant);
  }

  get(r: Resource): Grant | undefined {
    return this.leases.get(resourceKey(r))?.grant;
  }

  /**
   * Whether the lock granted under `fence` is still held: the lease now has that fence, or is an
   * upgrade of it made while it was held. A lock that ended and was granted again is not.
   */
  heldUnder(r: Resource, fence: number): boolean {
    return this.leases.get(resourceKey(r))?.fences.includes(fence) ?? false;
  }

  get size(): number {
    return this.leases.size;
  }

  add(grants: readonly Grant[], ttlMs: number, auto: boolean): void {
    const renewAt = Date.now() + ttlMs * this.fraction;
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
        renewAt,
        busy: prev?.busy ?? false,
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
    }
    this.schedule();
  }

  /** Makes the held set exactly `grants` (as the server listed them), keeping what is known of each. */
  sync(grants: readonly Grant[], ttlMs: number): void {
    const keep = new Set(grants.map((g) => resourceKey(g.resource)));
    for (const key of [...this.leases.keys()]) if (!keep.has(key)) this.leases.delete(key);
    this.update(grants);
    this.add(
      grants.filter((g) => !this.leases.has(resourceKey(g.resource))),
      ttlMs,
      false,
    );
  }

  /** How a held lock was asked for: what acquiring it again asks for. */
  terms(r: Resource): { ttlMs: number; auto: boolean; fences: readonly number[] } | undefined {
    const lease = this.leases.get(resourceKey(r));
    return lease === undefined ? undefined : { ttlMs: lease.ttlMs, auto: lease.auto, fences: lease.fences };
  }

  /**
   * The lock now held on `r` carries on one held before under `fences` (lost in a failover and
   * acquired again): the handles of that grant hold it, and name its new fence.
   */
  carryOn(r: Resource, fences: readonly number[]): void {
    const lease = this.leases.get(resourceKey(r));
    if (lease !== undefined) lease.fences = [...fences.filter((f) => !lease.fences.includes(f)), ...lease.fences];
  }

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
        if (isLockstepError(err, 'NOT_HELD') && Array.isArray(err.data.resources)) {
          const notHeld = err.data.resources as Resource[];
          // A lock released on purpose while its renewal was on the way is no failure: only those
          // still thought held (lost to an expiry) are reported.
          if (notHeld.some((r) => this.leases.has(resourceKey(r)))) this.hooks.failed(err, resources);
          // All or nothing: the ones still held were not renewed either, so they go again at once.
          this.remove(notHeld);
          for (const l of group) l.renewAt = Date.now();
        } else {
          this.hooks.failed(err, resources);
          for (const l of group) l.renewAt = Date.now() + Math.max(50, l.ttlMs / 10);
        }
      })
      .finally(() => {
        for (const l of group) l.busy = false;
        this.schedule();
      });
  }
}
