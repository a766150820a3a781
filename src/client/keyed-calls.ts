import { v4 as uuidv4 } from 'uuid';
import { pause } from './abortable.ts';
import type { Channel } from './channel.ts';
import type { Connection } from './connection.ts';
import { isLockstepError, LockstepClientError } from './errors.ts';
import type { CallableMethod } from './types.ts';

/**
 * The calls the server carries out at most once per `key` (docs/protocol.md, `edit.apply`): a
 * retry with the same key answers with the first result instead of applying again, on this leader
 * or the next, since the key is stored with the revision. The client gives each of them a key, so
 * that one whose outcome it did not hear can safely be asked for again.
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
 * The params as first sent, with a fresh key unless the caller gave one (uuid rather than
 * crypto.randomUUID, which browsers offer only in secure contexts). Its `fences` are copied: a
 * call asked again carries the fences it was first sent with, never newer ones, whatever becomes
 * of the caller's object (the first commit may have landed under them).
 */
export function withKey<P>(params: P): P {
  const p = params as { key?: unknown; fences?: Record<string, number> } | undefined;
  return {
    ...params,
    ...(p?.key === undefined ? { key: uuidv4() } : {}),
    ...(p?.fences === undefined ? {} : { fences: { ...p.fences } }),
  } as P;
}

export interface AskAgain<T> {
  method: CallableMethod;
  /** Sends the call again, same params and key, on `channel`. */
  request(channel: Channel): Promise<T>;
  connection: Connection;
  resends: Resends;
  /** The session the call was first sent in. */
  sessionId: string | undefined;
  deadline: number;
  signal: AbortSignal | undefined;
}

/**
 * The outcome of a keyed call that failed with `err`: asked for again where its key makes that
 * safe and the failure left the outcome unknown, else `err`.
 * - A drop lost the reply: sent again by the resume, once the session is back (./resume.ts), once
 *   only (a second drop fails the call as any drop does).
 * - STORE_UNAVAILABLE: the store lost its connection while committing, so the commit may have
 *   landed and the refusal does not say "not applied". Asked again after each wait the refusal
 *   names, as soon as the store is back, while the call's time lasts.
 */
export async function askAgain<T>(err: unknown, o: AskAgain<T>): Promise<T> {
  if (isLockstepError(err, 'DISCONNECTED')) return o.resends.after(err, o);
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

interface Waiting {
  sessionId: string | undefined;
  /** The drop that lost the reply: what the call fails with when its session is not resumed. */
  lost: LockstepClientError;
  send(channel: Channel): void;
  fail(err: LockstepClientError): void;
}

/**
 * Keyed calls whose reply a drop lost, waiting for the session to be resumed to be sent again, in
 * the order they were made, within each call's time and signal. Only on the same session: keys
 * are the session's own (docs/protocol.md), so a call whose session was lost fails with the drop's
 * DISCONNECTED, its outcome unknown as before; its locks are gone anyway.
 */
export class Resends {
  private waiting: Waiting[] = [];
  private closed = false;

  after<T>(lost: LockstepClientError, o: AskAgain<T>): Promise<T> {
    if (this.closed) return Promise.reject(lost);
    if (o.signal?.aborted === true)
      return Promise.reject(LockstepClientError.local('ABORTED', `${o.method} aborted`, o.method));
    return new Promise<T>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        o.signal?.removeEventListener('abort', onAbort);
        this.waiting = this.waiting.filter((w) => w !== entry);
      };
      const entry: Waiting = {
        sessionId: o.sessionId,
        lost,
        send: (channel) => {
          done();
          o.request(channel).then(resolve, reject);
        },
        fail: (err) => {
          done();
          reject(err);
        },
      };
      const onAbort = () => entry.fail(LockstepClientError.local('ABORTED', `${o.method} aborted`, o.method));
      const timer = setTimeout(
        () => entry.fail(LockstepClientError.local('TIMEOUT', `${o.method}: no reply before its timeout`, o.method)),
        left(o.deadline),
      );
      o.signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(entry);
    });
  }

  /** Session `sessionId` is back on `channel`: its calls go out again now, in order; any other's fail. */
  resend(channel: Channel, sessionId: string): void {
    for (const w of [...this.waiting]) {
      if (w.sessionId === sessionId) w.send(channel);
      else w.fail(w.lost);
    }
  }

  /** The session was lost: every waiting call fails with the drop that lost its reply. */
  fail(): void {
    for (const w of [...this.waiting]) w.fail(w.lost);
  }

  /** The client is closed: nothing is resumed any more. */
  close(): void {
    this.closed = true;
    this.fail();
  }
}

/** What is left of the call's time, at least 1 ms (a timer of 0 would not wait at all). */
function left(deadline: number): number {
  return Math.max(1, deadline - Date.now());
}
