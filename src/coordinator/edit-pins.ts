import type { LockManager } from '../concurrency/index.ts';
import { type Resource, resourceKey } from '../protocol/resource.ts';

interface Pinned {
  keys: ReadonlySet<string>;
  lifted: Promise<void>;
}

/**
 * The locks edits in commit have pinned (LockManager.pin keeps them from expiring), remembered
 * per session with the promise of each commit's end, so that a release or downgrade of a pinned
 * lock by the same session takes effect only once that commit has ended: check and commit are
 * one step (docs/protocol.md, edit.apply). One socket of a session runs its calls one at a time,
 * so only a second socket (a resume while the first socket's edit commits) can get here first.
 */
export class EditPins {
  private readonly bySession = new Map<string, Set<Pinned>>();

  constructor(private readonly locks: LockManager) {}

  /** Pins the session's locks on `resources` until the returned function is called. */
  pin(sessionId: string, resources: readonly Resource[]): () => void {
    const unpin = this.locks.pin(sessionId, resources);
    let lift!: () => void;
    const pinned: Pinned = {
      keys: new Set(resources.map(resourceKey)),
      lifted: new Promise<void>((resolve) => (lift = resolve)),
    };
    let pins = this.bySession.get(sessionId);
    if (pins === undefined) {
      pins = new Set();
      this.bySession.set(sessionId, pins);
    }
    const own = pins;
    own.add(pinned);
    return () => {
      if (!own.delete(pinned)) return;
      if (own.size === 0 && this.bySession.get(sessionId) === own) this.bySession.delete(sessionId);
      unpin();
      lift();
    };
  }

  /**
   * `fn` at once when no edit of the session in commit pins any of `resources` (undefined: any
   * lock of the session), else once every such commit has ended (and nothing pins them again).
   */
  after<T>(sessionId: string, resources: readonly Resource[] | undefined, fn: () => T | Promise<T>): T | Promise<T> {
    const pins = this.bySession.get(sessionId);
    if (pins === undefined) return fn();
    const keys = resources?.map(resourceKey);
    const blocking = [...pins].filter((p) => keys === undefined || keys.some((k) => p.keys.has(k)));
    if (blocking.length === 0) return fn();
    const lifted = Promise.all(blocking.map((p) => p.lifted));
    return (async (): Promise<T> => {
      await lifted;
      return this.after(sessionId, resources, fn);
    })();
  }
}
