import { z } from 'zod';
import { RpcCode, RpcProtocolError } from './errors.ts';

// JSON-RPC 2.0 envelopes. Only the envelope is checked here; params belong to each method's schema.

export const RequestId = z.union([z.string().max(256), z.number().finite(), z.null()]);
export type RequestId = z.infer<typeof RequestId>;

export const Envelope = z.object({
  jsonrpc: z.literal('2.0'),
  id: RequestId.optional(),
  method: z.string().min(1).max(128),
  params: z.union([z.record(z.string(), z.unknown()), z.array(z.unknown())]).optional(),
});

export interface IncomingCall {
  /** undefined for a notification (the client expects no answer). */
  id: RequestId | undefined;
  method: string;
  params: unknown;
}

/** A frame that is not a usable call: answered with `id` (null when it could not be read). */
export interface BadCall {
  id: RequestId;
  error: RpcProtocolError;
}

/** Parses one text frame into a call, or says why it is not one. */
export function parseCall(text: string): IncomingCall | BadCall {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { id: null, error: new RpcProtocolError(RpcCode.PARSE_ERROR, 'Parse error: the frame is not valid JSON') };
  }
  // JSON.parse makes "__proto__" an own key, but spreading or assigning such an object later sets
  // a prototype instead. Refuse the key outright; the substring test keeps the common path free.
  if (text.includes('__proto__') && hasProtoKey(value, 0)) {
    return {
      id: idOf(value) ?? null,
      error: new RpcProtocolError(RpcCode.INVALID_REQUEST, 'Invalid request: keys named "__proto__" are not accepted'),
    };
  }
  if (Array.isArray(value)) {
    // Batches would let one frame fan out into unbounded work; one call per frame keeps the
    // per-session rate limit and ordering meaningful.
    return {
      id: null,
      error: new RpcProtocolError(
        RpcCode.INVALID_REQUEST,
        'Invalid request: batches are not supported, send one call per frame',
      ),
    };
  }
  const fast = plainCall(value);
  if (fast !== undefined) return fast;
  const parsed = Envelope.safeParse(value);
  if (!parsed.success) {
    return {
      id: idOf(value) ?? null,
      error: new RpcProtocolError(RpcCode.INVALID_REQUEST, 'Invalid request: expected a JSON-RPC 2.0 request object', {
        issues: parsed.error.issues.map((i) => ({ path: i.path, message: i.message })),
      }),
    };
  }
  return { id: parsed.data.id, method: parsed.data.method, params: parsed.data.params };
}

/**
 * The envelope check for a well-formed call, without zod: accepts exactly what Envelope accepts
 * (and returns what it would), and leaves everything else to Envelope for its issues.
 */
function plainCall(value: unknown): IncomingCall | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const { jsonrpc, id, method, params } = value as Record<string, unknown>;
  if (jsonrpc !== '2.0' || typeof method !== 'string' || method.length < 1 || method.length > 128) return undefined;
  const idOk =
    id === undefined ||
    id === null ||
    (typeof id === 'string' && id.length <= 256) ||
    (typeof id === 'number' && Number.isFinite(id));
  if (!idOk || (params !== undefined && (params === null || typeof params !== 'object'))) return undefined;
  return { id: id as RequestId | undefined, method, params };
}

export function isBadCall(call: IncomingCall | BadCall): call is BadCall {
  return 'error' in call;
}

/** Deeper than the size limit lets any real message go; past it the scan stops (no stack blow-up). */
const MAX_SCAN_DEPTH = 1000;

function hasProtoKey(value: unknown, depth: number): boolean {
  if (value === null || typeof value !== 'object' || depth > MAX_SCAN_DEPTH) return false;
  if (Array.isArray(value)) return value.some((v) => hasProtoKey(v, depth + 1));
  return Object.keys(value).some(
    (k) => k === '__proto__' || hasProtoKey((value as Record<string, unknown>)[k], depth + 1),
  );
}

/** The id of an invalid request, when it has a valid one, so the error can be correlated. */
function idOf(value: unknown): RequestId | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const id = RequestId.safeParse((value as Record<string, unknown>).id);
  return id.success ? id.data : undefined;
}

// Frames are written as strings around the serialized parts: the same bytes as stringifying the
// whole envelope, without building it (replies and pushes are the hot path).

export function resultFrame(id: RequestId, result: unknown): string {
  return `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":${JSON.stringify(result) ?? 'null'}}`;
}

export function errorFrame(id: RequestId, error: { code: number; message: string; data?: unknown }): string {
  return JSON.stringify({ jsonrpc: '2.0', id, error });
}

export function notificationFrame(method: string, params: unknown): string {
  return `{"jsonrpc":"2.0","method":${JSON.stringify(method)},"params":${JSON.stringify(params) ?? 'null'}}`;
}
