import { isFunction, isPath, isStructure, type Resource } from '../protocol/resource.ts';
import type { Grant } from '../protocol/wire.ts';
import type { LostLock, PathContent } from './types.ts';

/** What a handle asks of its client's locks. */
export interface LockOwner {
  releaseHeld(resources: readonly Resource[], contents?: readonly PathContent[]): Promise<Resource[]>;
  renewHeld(resources: readonly Resource[], ttlMs?: number): Promise<Grant[]>;
  downgradeHeld(resources: readonly Resource[]): Promise<Grant[]>;
}

/** What a handle reads of its client's locks (./leases.ts). */
export interface LockView {
  /** The lock on the resource as held now, if it is the one granted under `fence` (or an upgrade of it), suspended or not. */
  grantUnder(resource: Resource, fence: number): Grant | undefined;
  /** Aborted when the lock granted under `fence` is lost. */
  signalUnder(resource: Resource, fence: number): AbortSignal | undefined;
  readonly suspended: boolean;
}

/**
 * - `held`: every lock of the handle is held under its grant (or an upgrade of it);
 * - `suspended`: they were when the socket dropped, and the client cannot know yet whether they
 *   still are (the session is being resumed): not held, not lost;
 * - `lost`: one of them was lost (`lost` says which, and why; `signal` is aborted);
 * - `released`: one of them was released (or the client closed).
 */
export type LockState = 'held' | 'suspended' | 'lost' | 'released';

/** Locks granted by one acquire(): their fences for edit.apply, and release / renew / downgrade. */
export class LockHandle {
  readonly resources: readonly Resource[];
  private readonly loss = new AbortController();
  private firstLoss: LostLock | undefined;

  constructor(
    private readonly owner: LockOwner,
    private readonly view: LockView,
    readonly program: string,
    /** The grants as given (fence, mode, first expiry). */
    readonly grants: readonly Grant[],
    /** The ticket it waited under; undefined when granted at once. */
    readonly ticket: string | undefined,
  ) {
    this.resources = grants.map((g) => g.resource);
    for (const g of grants) {
      const signal = view.signalUnder(g.resource, g.fence);
      if (signal === undefined) continue;
      const lose = () => {
        this.firstLoss ??= (signal.reason as { data: LostLock }).data;
        this.loss.abort(signal.reason);
      };
      if (signal.aborted) lose();
      else signal.addEventListener('abort', lose, { once: true });
    }
  }

  get queued(): boolean {
    return this.ticket !== undefined;
  }

  /** Ids of the locked functions. */
  get functions(): number[] {
    return this.resources.flatMap((r) => (isFunction(r) ? [r.function] : []));
  }

  /** The locked paths (each covers everything below it). */
  get paths(): string[] {
    return this.resources.flatMap((r) => (isPath(r) ? [r.path] : []));
  }

  /**
   * In the shape edit.apply takes: `{"<function id>" | "structure": fence}`. The fence of the lock
   * as held now (an upgrade's), suspended or not; the grant's own once it is no longer held, which
   * the server refuses (STALE_FENCE, LOCK_REQUIRED): a lost lock's edits never commit.
   */
  get fences(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const g of this.grants) {
      if (isPath(g.resource)) continue;
      out[isStructure(g.resource) ? 'structure' : String(g.resource.function)] = this.fenceOf(g);
    }
    return out;
  }

  /**
   * Path -> fence of each path lock, as `fences` gives them for functions: what a store that checks
   * fences (a deploy, a shared bucket) compares against the highest it has seen.
   */
  get pathFences(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const g of this.grants) if (isPath(g.resource)) out[g.resource.path] = this.fenceOf(g);
    return out;
  }

  private fenceOf(g: Grant): number {
    return this.view.grantUnder(g.resource, g.fence)?.fence ?? g.fence;
  }

  get state(): LockState {
    if (this.firstLoss !== undefined) return 'lost';
    if (!this.grants.every((g) => this.view.grantUnder(g.resource, g.fence) !== undefined)) return 'released';
    return this.view.suspended ? 'suspended' : 'held';
  }

  /**
   * Whether the client holds every lock of this handle now (no expiry, release or loss since, and
   * not suspended): under this handle's fence, or an upgrade of it, not a later grant of the same
   * resources.
   */
  get held(): boolean {
    return this.state === 'held';
  }

  /** The first of its locks that was lost, and why; undefined while none was. */
  get lost(): LostLock | undefined {
    return this.firstLoss;
  }

  /**
   * Aborted when one of its locks is lost, with a LockstepClientError of type LOCK_LOST whose
   * `data` is the LostLock (`signal.reason`). Not aborted by a release.
   */
  get signal(): AbortSignal {
    return this.loss.signal;
  }

  /**
   * Releases what is still held of this handle; safe to call twice. Resolves with what was released.
   * A resource that is now held under another fence (this lease ended and the resource was granted
   * again, e.g. to another task of this client) is not this handle's and is left alone. While
   * suspended, it waits for the session to be back (a lost lock then has nothing to release).
   *
   * `contents`: the git blob ids of the files changed under its path write locks (null for one
   * deleted), and the commit that holds them (see `changedContents`): the server records them, and
   * `lockstep guard` refuses a later commit of those files based on an older copy.
   */
  release(o: { contents?: readonly PathContent[] } = {}): Promise<Resource[]> {
    return this.owner.releaseHeld(this.own(), o.contents);
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

  /** This handle's resources still held (or suspended) under its grants (or their upgrades). */
  private own(): Resource[] {
    return this.grants.filter((g) => this.view.grantUnder(g.resource, g.fence) !== undefined).map((g) => g.resource);
  }
}
