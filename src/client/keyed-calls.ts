import { v4 as uuidv4 } from 'uuid';
import { pause } from './abortable.ts';
import type { Channel } from './channel.ts';
import type { Connection } from './connection.ts';
import { isLockstepError, LockstepClientError } from './errors.ts';
import type { CallableMethod } from './types.ts';

/**
 * The calls the server carries out at most once per `key` (spec: cluster, rule 6): a retry with
 * the same key answers with the first result instead of applying again, on this leader or the
 * next, since the key is stored with the revision. The client gives each of them a key, so that
 * one whose outcome it did not hear can safely be asked for again.
 */
const KEYED: ReadonlySet<CallableMethod> = new Set<CallableMethod>([
  'edit.apply',
  'history.undo',
  'history.redo',
  'checkpoint.restore',
]);

/** Least wait between two askings of a keyed call the store refused, when the refusal names none. */
const STORE_RETRY_MIN_MS = 50;

export function isKeyed(method: CallableMethod): boolean {
  return KEYED.has(method);
}

/**
 * The params with a fresh key, unless the caller gave one. uuid rather than crypto.randomUUID,
 * which browsers offer only in secure contexts (a page served over plain http has none).
 */
export function withKey<P>(params: P): P {
  const given = (params as { key?: unknown } | undefined)?.key;
  return given === undefined ? ({ ...params, key: uuidv4() } as P) : params;
}

export interface AskAgain<T> {
  method: CallableMethod;
  /** Sends the call again, same params and key, on `channel`. */
  request(channel: Channel): Promise<T>;
  connection: Connection;
  /** The session the call was first sent in. */
  sessionId: string | undefined;
  deadline: number;
  signal: AbortSignal | undefined;
}

/**
 * The outcome of a keyed call that failed with `err`: asked for again where its key makes that
 * safe and the failure left the outcome unknown, else `err`.
 * - A drop lost the reply: sent again once the session is resumed, once only (a second drop fails
 *   the call as any drop does).
 * - STORE_UNAVAILABLE: the store lost its connection while committing, so the commit may have
 *   landed and the refusal does not say "not applied". Asked again after each wait the refusal
 *   names, as soon as the store is back, while the call's time lasts.
 */
export async function askAgain<T>(err: unknown, o: AskAgain<T>): Promise<T> {
  if (isLockstepError(err, 'DISCONNECTED')) return o.request(await resumed(err, o));
  let refusal = err;
  while (isLockstepError(refusal, 'STORE_UNAVAILABLE')) {
    const wait = Math.max(refusal.retryAfterMs ?? 0, STORE_RETRY_MIN_MS);
    if (Date.now() + wait >= o.deadline) break;
    await pause(wait, o.signal, o.method);
    try {
      return await o.request(await o.connection.whenOpen(left(o.deadline), o.method, o.signal));
    } catch (again) {
      refusal = again;
    }
  }
  throw refusal;
}

/**
 * The channel to send again a call whose reply was lost with the socket (`lost`), once the client
 * has reconnected, within the call's time and signal. Only on the same session: the spec makes
 * keys unique per session, so a new session does not lean on the server finding a key another
 * session sent (today's server happens to look keys up per program) and fails with `lost`, the
 * outcome unknown as before; its locks are gone anyway.
 */
async function resumed<T>(lost: LockstepClientError, o: AskAgain<T>): Promise<Channel> {
  if (o.connection.isClosed()) throw lost;
  let channel: Channel;
  try {
    channel = await o.connection.whenOpen(left(o.deadline), o.method, o.signal);
  } catch (err) {
    // CLOSED would say the call was not sent: it was, and may have been applied.
    throw isLockstepError(err, 'CLOSED') ? lost : err;
  }
  if (o.signal?.aborted === true) throw LockstepClientError.local('ABORTED', `${o.method} aborted`, o.method);
  if (o.connection.hello?.sessionId !== o.sessionId) throw lost;
  return channel;
}

/** What is left of the call's time, at least 1 ms (a timer of 0 would not wait at all). */
function left(deadline: number): number {
  return Math.max(1, deadline - Date.now());
}
