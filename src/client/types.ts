import type { MethodName, ParamsOf, ResultOf, Topic } from '../protocol/methods.ts';
import type { NotificationName, NotificationParams } from '../protocol/notifications.ts';
import type { LockMode, Resource } from '../protocol/resource.ts';
import type { Grant, NotRestored, QueuePosition } from '../protocol/wire.ts';
import type { ReconnectOptions } from './backoff.ts';
import type { LockstepClientError } from './errors.ts';
import type { WebSocketConstructor } from './socket.ts';

export type { Grant, LockMode, NotRestored, QueuePosition, Resource, Topic };

export interface ClientOptions {
  /** ws://host:port/ws: one server, or a load balancer in front of a cluster. Exactly one of url and urls. */
  url?: string;
  /**
   * A cluster's nodes: the client connects to the one that leads, following the leader a standby
   * names, and after a failover looks for the new leader and resumes there (see the `failover` event).
   */
  urls?: string[];
  name?: string;
  role?: 'agent' | 'observer';
  token?: string;
  /** Defaults to globalThis.WebSocket, and in Node to the `ws` package. */
  WebSocket?: WebSocketConstructor;
  /** Per-call reply timeout, including any wait for a reconnect (default 30 s). */
  callTimeoutMs?: number;
  /** Time for a socket to open (default 10 s; 3 s with several urls, so that a hung node is passed over in time). */
  connectTimeoutMs?: number;
  /** Reconnect after an unexpected drop (default on, with the defaults of ReconnectOptions). */
  reconnect?: boolean | ReconnectOptions;
  /** Keep locks alive automatically (default off; acquire() can turn it on per request). */
  autoRenew?: boolean;
  /** Fraction of a lease's ttl after which an automatic renewal is sent (default 0.5). */
  renewFraction?: number;
}

export interface CallOptions {
  timeoutMs?: number;
  /** Stops waiting for the reply (the server may still carry the call out). */
  signal?: AbortSignal;
}

/** Methods the application calls; session.hello is the client's own business. */
export type CallableMethod = Exclude<MethodName, 'session.hello'>;

/** Params are optional exactly when every field is. */
export type ArgsOf<M extends CallableMethod> =
  Record<never, never> extends ParamsOf<M>
    ? [params?: ParamsOf<M>, options?: CallOptions]
    : [params: ParamsOf<M>, options?: CallOptions];

type NamespaceOf<M extends string> = M extends `${infer N}.${string}` ? N : never;
type OperationOf<M extends string> = M extends `${string}.${infer O}` ? O : never;

export type NamespaceName = NamespaceOf<CallableMethod>;

/** `client.lock.acquire(params)`, `client.program.get()`, ...: one typed method per protocol method. */
export type Namespaces = {
  [N in NamespaceName]: {
    [M in CallableMethod as NamespaceOf<M> extends N ? OperationOf<M> : never]: (
      ...args: ArgsOf<M>
    ) => Promise<ResultOf<M>>;
  };
};

export type HelloResult = ResultOf<'session.hello'>;

/**
 * A file changed under a path write lock, told with its release: its git blob id (null: deleted),
 * and the commit that holds it (`changedContents` finds them).
 */
export type PathContent = NonNullable<ParamsOf<'lock.release'>['contents']>[number];

export interface QueueUpdate {
  ticket: string;
  positions: QueuePosition[];
  /** True for the position the acquire result gave; false for each later lock.queue. */
  initial: boolean;
}

type NotificationEvents = { [N in NotificationName]: [params: NotificationParams<N>] };

/**
 * Why a lock the client held was lost:
 * - `expired`: its lease ran out (lock.expired; a renewal or release answered NOT_HELD; a resume
 *   that did not give it back, the new leader saying so or the lease over by the client's clock);
 * - `fence-moved`: another grant of the resource came after it (a new leader found a newer record,
 *   or an edit under a newer fence; or a resume gave the resource back under another fence or mode);
 * - `resource-gone`: a new leader found its function or program gone;
 * - `not-restored`: a resume did not give it back, and neither the server nor the client's clock
 *   says why;
 * - `session-lost`: the session could not be resumed (or the client ended without close()).
 */
export type LossReason = 'expired' | 'fence-moved' | 'resource-gone' | 'not-restored' | 'session-lost';

/** A lock the client held and lost: the `lost` event, `LockHandle.lost`, a failover's `lost`. */
export interface LostLock {
  resource: Resource;
  mode: LockMode;
  /** Every fence it was held under (its grant's, then its upgrades'): what its handles' edits named. */
  fences: number[];
  reason: LossReason;
}

export interface FailoverInfo {
  /** The node the session was on, and the new leader's. */
  from: string;
  to: string;
  /** Every lock the new leader gave back (the hello's `restored`). */
  restored: Grant[];
  /** Those of them the client did not believe it held (same resource, mode and fence): given back. */
  released: Grant[];
  /** The locks the client held and did not get back, each also emitted as `lost`. */
  lost: LostLock[];
}

/** Every server push under its method name, and the client's own life-cycle events. */
export interface ClientEvents extends NotificationEvents {
  /** A session is open: the first one, a resumed one, or a fresh one after the old was lost. */
  connected: [info: { hello: HelloResult; resumed: boolean; reconnect: boolean }];
  disconnected: [info: { code: number; reason: string; willReconnect: boolean }];
  reconnecting: [info: { attempt: number; delayMs: number; error?: LockstepClientError }];
  /**
   * The socket dropped and the session may be resumed: until it is, the client cannot know whether
   * these locks are still its own. Their handles are `suspended` (not `held`) until the session is
   * back (`connected` with `resumed: true`: each is held again or `lost`) or not (`sessionLost`).
   */
  suspended: [info: { locks: Grant[] }];
  /**
   * A lock the client held is lost (see LossReason): its handles are no longer held and their
   * `signal` is aborted. The client never acquires it again on its own: someone else may have held
   * the resource and changed it since, so anything read under it is stale.
   */
  lost: [lock: LostLock];
  /**
   * The session resumed on a new leader after a failover, and the client has settled its locks:
   * what the new leader gave back, what of it was released, and what was lost. Emitted before
   * `connected`; waiting acquire() calls were queued again.
   */
  failover: [info: FailoverInfo];
  /** A reconnect could not take the old session back: its locks are gone (each also `lost`, `session-lost`). */
  sessionLost: [info: { previousSessionId: string; locks: Grant[] }];
  /** Events after the last seen sequence number are no longer buffered: resync from lock.status etc. */
  resync: [info: { topics: Topic[]; since: number }];
  renewed: [grants: Grant[]];
  renewFailed: [info: { error: unknown; resources: Resource[] }];
  closed: [info: { error?: LockstepClientError }];
  /** A failure no caller is waiting for (a stray error frame, a failed restore after reconnect). */
  error: [error: LockstepClientError];
}
