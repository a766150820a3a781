export { systemClock } from './clock.ts';
export type { Clock } from './clock.ts';
export { FakeClock } from './fake-clock.ts';
export { Deadlines } from './deadlines.ts';
export type { Deadline } from './deadlines.ts';
export { Outbox } from './outbox.ts';
export { memoryFences } from './fences.ts';
export type { FenceSource } from './fences.ts';
export { KeyReused, LockDenied } from './lock-errors.ts';
export { LockManager } from './lock-manager.ts';
export { PUSH_SLICE } from './position-pushes.ts';
export type { LockManagerOptions } from './lock-manager.ts';
export type {
  AcquireRequest,
  AcquireResult,
  Blocker,
  CancelReason,
  CycleEntry,
  Grant,
  HolderWaiters,
  LockEvents,
  QueuePosition,
  ReleaseReason,
  ResourceStatus,
  RestoredLock,
  TicketInfo,
} from './lock-types.ts';
export { SessionRegistry } from './sessions.ts';
export type { LeaveReason, Role, SessionEvents, SessionInfo, SessionRegistryOptions } from './sessions.ts';
