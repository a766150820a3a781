import { LockstepClientError } from './errors.ts';

/**
 * The part of the WebSocket API the client uses: the DOM WebSocket and the `ws` package both fit.
 * Listener parameters are `never` so that either one's event types are accepted; the client reads
 * the events through the narrow shapes below.
 */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: never) => void) | null;
  onmessage: ((event: never) => void) | null;
  onclose: ((event: never) => void) | null;
  onerror: ((event: never) => void) | null;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface MessageEventLike {
  data: unknown;
}

export interface CloseEventLike {
  code: number;
  reason: string;
}

/** WebSocket.OPEN in both implementations. */
export const OPEN = 1;

/** Opens a socket, or fails with CONNECT_FAILED when it closes or errors first, or takes too long. */
export function openSocket(
  Ctor: WebSocketConstructor,
  url: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<WebSocketLike> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(LockstepClientError.local('CLOSED', 'the client was closed while connecting'));
      return;
    }
    let ws: WebSocketLike;
    try {
      ws = new Ctor(url);
    } catch (err) {
      reject(LockstepClientError.local('CONNECT_FAILED', `cannot connect to ${url}: ${String(err)}`));
      return;
    }
    const fail = (why: string, error?: LockstepClientError) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      ws.onopen = ws.onclose = null;
      // Keep swallowing errors: an unhandled 'error' from a half-open `ws` socket would crash Node.
      ws.onerror = () => undefined;
      try {
        ws.close();
      } catch {
        // Closing a socket that never opened can throw in some implementations; it is gone either way.
      }
      reject(error ?? LockstepClientError.local('CONNECT_FAILED', `cannot connect to ${url}: ${why}`));
    };
    const onAbort = () => fail('closed', LockstepClientError.local('CLOSED', 'the client was closed while connecting'));
    signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => fail(`no answer in ${timeoutMs} ms`), timeoutMs);
    ws.onerror = (event: { message?: unknown }) =>
      fail(typeof event.message === 'string' ? event.message : 'socket error');
    ws.onclose = (event: CloseEventLike) => fail(`closed with ${event.code}`);
    ws.onopen = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      ws.onopen = ws.onclose = ws.onerror = null;
      resolve(ws);
    };
  });
}
