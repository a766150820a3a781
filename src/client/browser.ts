// The client without any Node dependency: bundlers pick this entry for browsers, where
// globalThis.WebSocket is used (or the one passed as options.WebSocket).
export { type AcquireOptions, type ClientState, LockstepClient } from './client.ts';
export { setDefaultWebSocket } from './client-options.ts';
export { backoffDelay, type ReconnectOptions } from './backoff.ts';
export {
  isLockstepError,
  LockstepClientError,
  type ClientErrorType,
  type LocalErrorType,
  type RpcErrorType,
} from './errors.ts';
export { LockHandle, type LockState } from './lock-handle.ts';
export { freePathLabel, type PathNode, pathTree, pathTreeLines } from './path-tree.ts';
export type { WebSocketConstructor, WebSocketLike } from './socket.ts';
export type * from './types.ts';
export type { MethodName, ParamsOf, ResultOf } from '../protocol/methods.ts';
export type { NotificationName, NotificationParams } from '../protocol/notifications.ts';
export type { EditOp, FunctionBody } from '../protocol/program.ts';
