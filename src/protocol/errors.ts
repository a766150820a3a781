// Errors are values with stable codes. Every layer throws LockstepError; the transport turns it
// into a JSON-RPC error object without ever looking at the message text.

/** JSON-RPC 2.0 reserved codes (the framing errors). */
export const RpcCode = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
} as const;

/**
 * Application errors: `code` is the HTTP-like status, `retryable` says whether sending the very
 * same request again can succeed (after `retryAfterMs` when the server knows it). CONFLICT,
 * STALE_FENCE and LOCK_REQUIRED are not retryable as such: the agent must re-read or re-lock first.
 */
export const ERRORS = {
  SESSION_REQUIRED: { code: 400, retryable: false },
  UNAUTHORIZED: { code: 401, retryable: false },
  FORBIDDEN: { code: 403, retryable: false },
  NOT_FOUND: { code: 404, retryable: false },
  CONFLICT: { code: 409, retryable: false },
  DEADLOCK: { code: 409, retryable: true },
  NOT_HELD: { code: 409, retryable: false },
  STALE_FENCE: { code: 409, retryable: false },
  PAYLOAD_TOO_LARGE: { code: 413, retryable: false },
  INVALID_EDIT: { code: 422, retryable: false },
  LOCK_DENIED: { code: 423, retryable: true },
  LOCK_REQUIRED: { code: 428, retryable: false },
  RATE_LIMITED: { code: 429, retryable: true },
  SHUTTING_DOWN: { code: 503, retryable: true },
  STORE_UNAVAILABLE: { code: 503, retryable: true },
  NOT_LEADER: { code: 421, retryable: true },
} as const;

export type ErrorType = keyof typeof ERRORS;
export const ERROR_TYPES = Object.keys(ERRORS) as ErrorType[];

export interface RpcErrorObject {
  code: number;
  message: string;
  data?: Record<string, unknown>;
}

/** An application error: `type` names it, `details` are merged into the JSON-RPC `data`. */
export class LockstepError extends Error {
  readonly type: ErrorType;
  readonly code: number;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  readonly details: Record<string, unknown>;

  constructor(type: ErrorType, message: string, details: Record<string, unknown> = {}, retryAfterMs?: number) {
    super(message);
    this.name = 'LockstepError';
    this.type = type;
    this.code = ERRORS[type].code;
    this.retryable = ERRORS[type].retryable;
    this.retryAfterMs = retryAfterMs === undefined ? undefined : Math.max(0, Math.ceil(retryAfterMs));
    this.details = details;
  }

  toRpcError(): RpcErrorObject {
    const data: Record<string, unknown> = { type: this.type, retryable: this.retryable, ...this.details };
    if (this.retryAfterMs !== undefined) data.retryAfterMs = this.retryAfterMs;
    return { code: this.code, message: this.message, data };
  }
}

/** A JSON-RPC framing error (-32700 .. -32603). */
export class RpcProtocolError extends Error {
  readonly code: number;
  readonly data: Record<string, unknown> | undefined;

  constructor(code: number, message: string, data?: Record<string, unknown>) {
    super(message);
    this.name = 'RpcProtocolError';
    this.code = code;
    this.data = data;
  }

  toRpcError(): RpcErrorObject {
    return this.data === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, data: this.data };
  }
}
