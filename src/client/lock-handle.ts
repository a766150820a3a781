import { isStructure, type Resource } from '../protocol/resource.ts';
import type { Grant } from '../protocol/wire.ts';

/** What a handle needs from its client. */
export interface LockOwner {
  releaseHeld(resources: readonly Resource[]): Promise<Resource[]>;
  renewHeld(resources: readonly Resource[], ttlMs?: number): Promise<Grant[]>;
  downgradeHeld(resources: readonly Resource[]): Promise<Grant[]>;
  heldGrant(resource: Resource): Grant | undefined;
  /** Whether the lock granted under `fence` is still held (that grant, or an upgrade of it). */
  heldUnder(resource: Resource, fence: number): boolean;
}

/** Locks granted by one acquire(): their fences for edit.apply, and release / renew / downgrade. */
export class LockHandle {
  readonly resources: readonly Resource[];

  constructor(
    private readonly owner: LockOwner,
    readonly program: string,
    /** The grants as given (fence, mode, first expiry). */
    readonly grants: readonly Grant[],
    /** The ticket it waited under; undefined when granted at once. */
    readonly ticket: string | undefined,
  ) {
    this.resources = grants.map((g) => g.resource);
  }

  get queued(): boolean {
    return this.ticket !== undefined;
  }

  /** Ids of the locked functions. */
  get functions(): number[] {
    return this.resources.flatMap((r) => (isStructure(r) ? [] : [r.function]));
  }

  /**
   * In the shape edit.apply takes: `{"<function id>" | "structure": fence}`. The fence of the lock
   * as held now: an upgrade's, or a new grant's when the lock was lost in a failover and acquired
   * again; the grant's own once the lock is no longer held.
   */
  get fences(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const g of this.grants) {
      const now = this.owner.heldUnder(g.resource, g.fence) ? this.owner.heldGrant(g.resource)?.fence : undefined;
      out[isStructure(g.resource) ? 'structure' : String(g.resource.function)] = now ?? g.fence;
    }
    return out;
  }

  /**
   * Whether the client still holds every lock of this handle (no expiry, release or loss since):
   * under this handle's fence, or an upgrade of it, not a later grant of the same resource.
   */
  get held(): boolean {
    return this.grants.every((g) => this.owner.heldUnder(g.resource, g.fence));
  }

  /**
   * Releases what is still held of this handle; safe to call twice. Resolves with what was released.
   * A resource that is now held under another fence (this lease ended and the resource was granted
   * again, e.g. to another task of this client) is not this handle's and is left alone.
   */
  release(): Promise<Resource[]> {
    return this.owner.releaseHeld(this.own());
  }

  /** Extends what is still held of this handle (not a later grant of the same resources). */
  renew(ttlMs?: number): Promise<Grant[]> {
    const own = this.own();
    return own.length === 0 ? Promise.resolve([]) : this.owner.renewHeld(own, ttlMs);
  }

  /** Write locks still held of this handle become read locks; the fences stay. */
  downgrade(): Promise<Grant[]> {
    const own = this.own();
    return own.length === 0 ? Promise.resolve([]) : this.owner.downgradeHeld(own);
  }

  /** This handle's resources still held under its grants (or their upgrades). */
  private own(): Resource[] {
    return this.grants.filter((g) => this.owner.heldUnder(g.resource, g.fence)).map((g) => g.resource);
  }
}
