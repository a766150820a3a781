import type { LockMode, Resource } from '../protocol/resource.ts';

/** One lock held by one session. Times are epoch ms. */
export interface Grant {
  resource: Resource;
  mode: LockMode;
  fence: number;
  grantedAt: number;
  expiresAt: number;
  description?: string;
}

/** A lock put back after a failover (LockManager.restore): its lease ends at expiresAt, renewals give ttlMs. */
export interface RestoredLock extends Grant {
  ttlMs: number;
}

/** 1 = next in that resource's queue. */
export interface QueuePosition {
  resource: Resource;
  position: number;
}

export interface AcquireRequest {
  resources: Resource[];
  mode: LockMode;
  ttlMs?: number;
  description?: string;
  wait?: boolean;
  waitTimeoutMs?: number;
  /** Idempotency key: a retry with the same key gets the first outcome back. */
  key?: string;
}

export type AcquireResult =
  | { status: 'granted'; grants: Grant[] }
  | { status: 'queued'; ticket: string; positions: QueuePosition[] };

export interface TicketInfo {
  ticket: string;
  sessionId: string;
  resources: Resource[];
  mode: LockMode;
  positions: QueuePosition[];
  enqueuedAt: number;
  description?: string;
}

export interface ResourceStatus {
  resource: Resource;
  holders: Array<{
    sessionId: string;
    mode: LockMode;
    fence: number;
    grantedAt: number;
    expiresAt: number;
    description?: string;
  }>;
  queue: Array<{
    ticket: string;
    sessionId: string;
    mode: LockMode;
    position: number;
    /** A read holder waiting to turn its read into write. */
    upgrade: boolean;
    /**
     * Waits in the front section of the queue because its session held this resource when it
     * queued (upgrades, and held parts of a batch) and had no earlier ticket further back; front
     * entries keep their own FIFO order.
     */
    front: boolean;
    description?: string;
  }>;
}

export type ReleaseReason = 'release' | 'expired' | 'disconnect' | 'removed' | 'shutdown';

export type CancelReason = 'cancel' | 'disconnect' | 'removed' | 'timeout' | 'shutdown';

export interface Blocker {
  resource: Resource;
  holders: Array<{
    sessionId: string;
    name?: string;
    mode: LockMode;
    /** A path lock's blocker names the lock it holds: the path asked for, one above it or one below. */
    resource?: Resource;
    description?: string;
    expiresAt: number;
  }>;
  /** Tickets waiting there: on a path, those a new request would queue behind. */
  queueLength: number;
}

/** One step of a wait-for cycle: this session waits (through ticket, on resource) for the next entry's session. */
export interface CycleEntry {
  sessionId: string;
  name?: string;
  ticket?: string;
  resource?: Resource;
}

/** One lock of a holder that others wait for: how many tickets, and how long the oldest has waited. */
export interface HolderWaiters {
  resource: Resource;
  mode: LockMode;
  waiting: number;
  oldestWaitMs: number;
}

/** The eventemitter3 event map; every listener gets one object. */
export interface LockEvents {
  /** Every grant, immediate (ticket null) or from a queue, including upgrades and refreshes. */
  granted: (e: { sessionId: string; ticket: string | null; grants: Grant[] }) => void;
  queued: (e: {
    sessionId: string;
    ticket: string;
    mode: LockMode;
    resources: Resource[];
    positions: QueuePosition[];
  }) => void;
  /**
   * Only for tickets whose position on some resource changed, coalesced by queuePushMs; carries
   * all of the ticket's positions as they are now.
   */
  position: (e: { sessionId: string; ticket: string; positions: QueuePosition[] }) => void;
  released: (e: { sessionId: string; locks: Grant[]; reason: ReleaseReason }) => void;
  downgraded: (e: { sessionId: string; locks: Grant[] }) => void;
  renewed: (e: { sessionId: string; locks: Grant[] }) => void;
  denied: (e: { sessionId: string; mode: LockMode; resources: Resource[]; blockers: Blocker[] }) => void;
  expiring: (e: { sessionId: string; locks: Grant[] }) => void;
  /** Emitted before the matching 'released' with reason 'expired'. */
  expired: (e: { sessionId: string; locks: Grant[] }) => void;
  waitTimeout: (e: { sessionId: string; ticket: string }) => void;
  /** Every withdrawal of a waiting ticket. */
  cancelled: (e: { sessionId: string; ticket: string; reason: CancelReason }) => void;
  deadlock: (e: { sessionId: string; cycle: CycleEntry[] }) => void;
  /** Others queue behind the session's locks (coalesced per waitersPushMs; off by default). */
  waiters: (e: { sessionId: string; locks: HolderWaiters[] }) => void;
}
