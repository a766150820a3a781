import { type Backoff, DEFAULT_BACKOFF } from './backoff.ts';
import type { WebSocketConstructor } from './socket.ts';
import type { ClientOptions } from './types.ts';

const DEFAULT_CALL_TIMEOUT_MS = 30_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/**
 * With several nodes a node that does not answer (paused, cut off) must not hold up the search for
 * the leader past the resume grace.
 */
const DEFAULT_CLUSTER_CONNECT_TIMEOUT_MS = 3_000;

let fallbackWebSocket: WebSocketConstructor | undefined;

/** The WebSocket used when neither the options nor globalThis provide one (the Node entry sets `ws`). */
export function setDefaultWebSocket(ctor: WebSocketConstructor): void {
  fallbackWebSocket = ctor;
}

/** The client's options with every default filled in. */
export interface ResolvedOptions {
  urls: string[];
  /** Several nodes: a cluster, whose drops may be failovers. */
  cluster: boolean;
  WebSocket: WebSocketConstructor;
  /** undefined: a drop closes the client. */
  backoff: Backoff | undefined;
  connectTimeoutMs: number;
  callTimeoutMs: number;
}

export function resolveOptions(options: ClientOptions): ResolvedOptions {
  if ((options.url === undefined) === (options.urls === undefined))
    throw new TypeError('pass exactly one of options.url and options.urls');
  const urls = options.urls ?? [options.url as string];
  if (urls.length === 0) throw new TypeError('options.urls is empty');
  const WebSocket =
    options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket ?? fallbackWebSocket;
  if (WebSocket === undefined) throw new TypeError('no WebSocket implementation: pass options.WebSocket');
  const r = options.reconnect ?? true;
  const cluster = urls.length > 1;
  return {
    urls,
    cluster,
    WebSocket,
    backoff: r === false ? undefined : { ...DEFAULT_BACKOFF, ...(r === true ? {} : r) },
    connectTimeoutMs:
      options.connectTimeoutMs ?? (cluster ? DEFAULT_CLUSTER_CONNECT_TIMEOUT_MS : DEFAULT_CONNECT_TIMEOUT_MS),
    callTimeoutMs: options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS,
  };
}
