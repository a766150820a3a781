import { ERRORS, RpcCode, type ErrorType } from '../protocol/errors.ts';

/** JSON-RPC framing errors, named after their code. */
export type RpcErrorType = 'PARSE_ERROR' | 'INVALID_REQUEST' | 'METHOD_NOT_FOUND' | 'INVALID_PARAMS' | 'INTERNAL_ERROR';

/**
 * Errors raised by the client itself (code 0: the server never said them).
 * TIMEOUT: no reply within the call timeout. DISCONNECTED: the socket dropped with the call or
 * ticket outstanding. CLOSED: the client was closed or gave up reconnecting. ABORTED: the caller's
 * AbortSignal fired. WAIT_TIMEOUT: the server's lock.waitTimeout. CANCELLED: the server withdrew the
 * ticket (lock.cancelled) or lock.cancel was called on it. CONNECT_FAILED: the socket did not open.
 * LOCK_LOST: a lock the client held is lost (the reason of a handle's aborted signal; `data` is the
 * LostLock: resource, mode, fences, reason). A TIMEOUT or DISCONNECTED with `data.sent` false
 * never left the client (no connection to send it on): calling again cannot do it twice.
 */
export type LocalErrorType =
  | 'TIMEOUT'
  | 'DISCONNECTED'
  | 'CLOSED'
  | 'ABORTED'
  | 'WAIT_TIMEOUT'
  | 'CANCELLED'
  | 'CONNECT_FAILED'
  | 'LOCK_LOST';

export type ClientErrorType = ErrorType | RpcErrorType | LocalErrorType;

const RPC_TYPES: Record<number, RpcErrorType> = {
  [RpcCode.PARSE_ERROR]: 'PARSE_ERROR',
  [RpcCode.INVALID_REQUEST]: 'INVALID_REQUEST',
  [RpcCode.METHOD_NOT_FOUND]: 'METHOD_NOT_FOUND',
  [RpcCode.INVALID_PARAMS]: 'INVALID_PARAMS',
  [RpcCode.INTERNAL_ERROR]: 'INTERNAL_ERROR',
};

const LOCAL_RETRYABLE: Record<LocalErrorType, boolean> = {
  TIMEOUT: true,
  DISCONNECTED: true,
  CLOSED: false,
  ABORTED: false,
  WAIT_TIMEOUT: true,
  CANCELLED: false,
  CONNECT_FAILED: true,
  LOCK_LOST: false,
};

export interface RpcErrorFrame {
  code: number;
  message: string;
  data?: unknown;
}

/**
 * Every failure the client reports, from the server or its own. Agents branch on `type` and
 * `retryable` (and wait `retryAfterMs` when given) instead of parsing messages; `data` is the
 * protocol's error data as sent (blockers, conflicts with diffs, the deadlock cycle, ...).
 */
export class LockstepClientError extends Error {
  readonly type: ClientErrorType;
  /** The JSON-RPC error code: HTTP-like for application errors, -327xx for framing, 0 for local. */
  readonly code: number;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  readonly data: Record<string, unknown>;
  /** The method whose call failed, when there was one. */
  readonly method: string | undefined;

  constructor(init: {
    type: ClientErrorType;
    code: number;
    message: string;
    retryable: boolean;
    retryAfterMs?: number | undefined;
    data?: Record<string, unknown>;
    method?: string | undefined;
  }) {
    super(init.message);
    this.name = 'LockstepClientError';
    this.type = init.type;
    this.code = init.code;
    this.retryable = init.retryable;
    this.retryAfterMs = init.retryAfterMs;
    this.data = init.data ?? {};
    this.method = init.method;
  }

  /** Whether this is one of the given error types. */
  is(...types: ClientErrorType[]): boolean {
    return types.includes(this.type);
  }

  static fromRpc(error: RpcErrorFrame, method?: string): LockstepClientError {
    const data = isRecord(error.data) ? error.data : {};
    const named =
      typeof data.type === 'string' && Object.hasOwn(ERRORS, data.type) ? (data.type as ErrorType) : undefined;
    const type: ClientErrorType = named ?? RPC_TYPES[error.code] ?? 'INTERNAL_ERROR';
    const retryable =
      typeof data.retryable === 'boolean' ? data.retryable : named !== undefined && ERRORS[named].retryable;
    const retryAfterMs = typeof data.retryAfterMs === 'number' ? data.retryAfterMs : undefined;
    return new LockstepClientError({
      type,
      code: error.code,
      message: error.message,
      retryable,
      retryAfterMs,
      data,
      method,
    });
  }

  static local(
    type: LocalErrorType,
    message: string,
    method?: string,
    data?: Record<string, unknown>,
  ): LockstepClientError {
    return new LockstepClientError({
      type,
      code: 0,
      message,
      retryable: LOCAL_RETRYABLE[type],
      method,
      ...(data === undefined ? {} : { data }),
    });
  }
}

export function isLockstepError(err: unknown, ...types: ClientErrorType[]): err is LockstepClientError {
  return err instanceof LockstepClientError && (types.length === 0 || types.includes(err.type));
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Any failure as a LockstepClientError (an unexpected throw becomes INTERNAL_ERROR). */
export function toClientError(err: unknown): LockstepClientError {
  return err instanceof LockstepClientError
    ? err
    : new LockstepClientError({
        type: 'INTERNAL_ERROR',
        code: 0,
        message: err instanceof Error ? err.message : String(err),
        retryable: false,
      });
}
