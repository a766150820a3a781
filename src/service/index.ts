export { ProgramService } from './program-service.ts';
export type {
  CheckpointInfo,
  ConflictDetail,
  EditMeta,
  EditResult,
  FunctionSummary,
  LockNeed,
  RevisionDiff,
  RevisionInfo,
  ServiceClock,
} from './service-types.ts';
export { isPostgresLocation, shownLocation, sqliteFileOf } from './open-store.ts';
export type { CheckedStatement, WriteFence } from './pg-connection.ts';
export { migrate, migrateBeforeLease } from './pg-schema.ts';
export type { SharedDatabase } from './pg-store.ts';
export { claimedResource } from './fence-claims.ts';
export type { FenceClaim } from './fence-claims.ts';
export { StoreError } from './store.ts';
export type { PathContentRecord, ProgramStore, RevisionKind } from './store.ts';
export { ServiceOp, RestoreFunctionOp } from './ops.ts';
export type { FenceSource, ReservedFences } from './fences.ts';
export { FENCE_BLOCK } from './fences.ts';
export { canonicalFunction, functionHash } from './hash.ts';
export type { HashableFunction } from './hash.ts';
export { diffFunctions } from './diff.ts';
