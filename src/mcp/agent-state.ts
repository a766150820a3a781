import { type Resource, resourceKey } from '../protocol/resource.ts';

/** What the holder of a lock was last told of the agents queued behind it. */
export interface Waiters {
  waiting: number;
  /** How long the first of them had waited when told, and when that was (local ms). */
  oldestWaitMs: number;
  at: number;
}

/**
 * What the bridge knows of its agent beyond the session: the hash of what it last read (or wrote)
 * of each function, the commit each path write lock was granted at, who waits behind its locks,
 * when it last called a tool, and what happened since its last call.
 */
export class AgentState {
  private readonly hashes = new Map<string, string>();
  private readonly bases = new Map<string, { head: string | undefined }>();
  private readonly waiters = new Map<string, Waiters>();
  private lastCallAt: number;
  /** Each with the key of what it reports on, when a newer notice of that replaces it. */
  private notices: Array<{ text: string; key: string | undefined }> = [];

  constructor(
    /** After this long without a tool call the agent counts as idle: its leases are left to run out (0: always). */
    private readonly idleReleaseMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.lastCallAt = now();
  }

  touch(): void {
    this.lastCallAt = this.now();
  }

  get active(): boolean {
    return this.now() - this.lastCallAt < this.idleReleaseMs;
  }

  remember(program: string, functionId: number, hash: string): void {
    this.hashes.set(`${program}\u0000${functionId}`, hash);
  }

  hashOf(program: string, functionId: number): string | undefined {
    return this.hashes.get(`${program}\u0000${functionId}`);
  }

  /** HEAD (undefined: no commit yet) when the lock on `r` under `fence` was granted; a reentrant grant keeps the first. */
  setBase(r: Resource, fence: number, head: string | undefined): void {
    const key = `${resourceKey(r)}\u0000${fence}`;
    if (!this.bases.has(key)) this.bases.set(key, { head });
  }

  baseOf(r: Resource, fence: number): { head: string | undefined } | undefined {
    return this.bases.get(`${resourceKey(r)}\u0000${fence}`);
  }

  forgetBase(r: Resource, fence: number): void {
    this.bases.delete(`${resourceKey(r)}\u0000${fence}`);
    this.waiters.delete(resourceKey(r));
  }

  setWaiters(r: Resource, waiting: number, oldestWaitMs: number): void {
    if (waiting === 0) this.waiters.delete(resourceKey(r));
    else this.waiters.set(resourceKey(r), { waiting, oldestWaitMs, at: this.now() });
  }

  waitersOf(r: Resource): Waiters | undefined {
    return this.waiters.get(resourceKey(r));
  }

  /** A notice for the next result; one with a key replaces the one before it with the same key (the latest count of waiters on a lock, say). */
  notice(text: string, key?: string): void {
    if (key !== undefined) this.dropNotice(key);
    this.notices.push({ text, key });
  }

  /** Takes back the notice with this key not yet shown: what it told is no longer so. */
  dropNotice(key: string): void {
    this.notices = this.notices.filter((n) => n.key !== key);
  }

  /** What happened since the last call, once. */
  drain(): string[] {
    const out = this.notices.map((n) => n.text);
    this.notices = [];
    return out;
  }
}
