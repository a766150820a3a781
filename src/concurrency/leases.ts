import { resourceKey } from '../protocol/resource.ts';
import type { Resource } from '../protocol/resource.ts';
import type { Clock } from './clock.ts';
import type { Deadlines } from './deadlines.ts';
import type { Hold } from './resource-slot.ts';

/** The lease options with their defaults applied (LockManagerOptions, lock-manager.ts). */
export interface LeaseLimits {
  defaultTtlMs: number;
  minTtlMs: number;
  maxTtlMs: number;
  warningMs: number;
}

/**
 * The leases of held locks: their warning and expiry on the lock core's deadlines, handed on per
 * session (a session's locks due at the same instant give one 'expiring' and one 'expired'), and
 * the pins that keep a lock from expiring while an edit made under it is committing: a lease that
 * runs out meanwhile ends when its last pin is lifted.
 */
export class Leases {
  /** Session and resource key of each pinned lock, with how many pins it has. */
  private readonly pins = new Map<string, number>();

  constructor(
    readonly limits: LeaseLimits,
    private readonly clock: Clock,
    /** The lock manager's deadlines: a lock call runs the due ones first (its catch-up). */
    private readonly deadlines: Deadlines,
    /** The session's locks now. */
    private readonly holdsOf: (sessionId: string) => Iterable<Hold>,
    /** The session's locks whose warning is due now. */
    private readonly warn: (sessionId: string, due: Hold[]) => void,
    /** The session's locks whose lease has ended, none of them pinned. */
    private readonly expire: (sessionId: string, due: Hold[]) => void,
  ) {}

  /** A requested ttl within the limits. */
  clamp(ttlMs: number): number {
    return Math.min(this.limits.maxTtlMs, Math.max(this.limits.minTtlMs, ttlMs));
  }

  /** A lease of `ttlMs` from now, or (a lock restored after a failover) one that ends at `expiresAt`. */
  start(hold: Hold, ttlMs: number, expiresAt = this.clock.now() + ttlMs): void {
    this.deadlines.cancel(hold.warning);
    this.deadlines.cancel(hold.expiry);
    hold.ttlMs = ttlMs;
    hold.expiresAt = expiresAt;
    const lead = Math.min(this.limits.warningMs, ttlMs / 5);
    hold.warnAt = hold.expiresAt - lead;
    hold.warning = lead > 0 ? this.deadlines.add(hold.warnAt, () => this.warnDue(hold.sessionId)) : undefined;
    hold.expiry = this.deadlines.add(hold.expiresAt, () => this.expireDue(hold.sessionId));
  }

  /** The lock is gone: nothing more is told of its lease. */
  end(hold: Hold): void {
    this.deadlines.cancel(hold.warning);
    this.deadlines.cancel(hold.expiry);
    hold.warning = undefined;
    hold.expiry = undefined;
  }

  /** Keeps the session's locks on `resources` from expiring until the returned function is called. */
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
      this.expireDue(sessionId);
    };
  }

  private warnDue(sessionId: string): void {
    const now = this.clock.now();
    const due: Hold[] = [];
    for (const h of this.holdsOf(sessionId)) {
      if (h.warning !== undefined && h.warnAt <= now) {
        this.deadlines.cancel(h.warning);
        h.warning = undefined;
        due.push(h);
      }
    }
    this.warn(sessionId, due);
  }

  private expireDue(sessionId: string): void {
    const now = this.clock.now();
    const due = [...this.holdsOf(sessionId)].filter((h) => h.expiresAt <= now && !this.isPinned(h));
    if (due.length > 0) this.expire(sessionId, due);
  }

  private isPinned(h: Hold): boolean {
    return this.pins.size > 0 && this.pins.has(`${h.sessionId}\n${h.key}`);
  }
}
