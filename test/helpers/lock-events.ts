import type { LockEvents } from '../../src/concurrency/index.ts';

// Every event the lock core emits, for tests that record them all. A Record, so that typecheck
// fails here when an event is added to LockEvents and not to this list.
const ALL: Record<keyof LockEvents, true> = {
  granted: true,
  queued: true,
  position: true,
  released: true,
  downgraded: true,
  renewed: true,
  denied: true,
  expiring: true,
  expired: true,
  waitTimeout: true,
  cancelled: true,
  deadlock: true,
  waiters: true,
};

export const LOCK_EVENT_NAMES = Object.keys(ALL) as Array<keyof LockEvents>;
