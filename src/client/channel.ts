import { CloseCode } from '../protocol/close-codes.ts';
import { isRecord, LockstepClientError, type RpcErrorFrame } from './errors.ts';
import { OPEN, type CloseEventLike, type MessageEventLike, type WebSocketLike } from './socket.ts';

export interface ChannelHandlers {
  notification(method: string, params: unknown): void;
  /** An error frame that answers no call of ours (id null: e.g. a frame the server could not read). */
  strayError(error: LockstepClientError): void;
  closed(channel: Channel, event: CloseEventLike): void;
}

export interface RequestOptions {
  timeoutMs: number;
  /** Runs when the result frame is read, before any later frame: tickets are known before their pushes. */
  onResult?: (result: unknown) => void;
  /** Largest frame the server accepts; bigger calls fail here instead of being answered with id null. */
  maxBytes?: number;
  /** A result that arrives after the call timed out: the server did act on it. */
  onLate?: (result: unknown) => void;
}

interface Pending {
  method: string;
  resolve(result: unknown): void;
  reject(err: LockstepClientError): void;
  onResult: ((result: unknown) => void) | undefined;
  onLate: ((result: unknown) => void) | undefined;
  timer: ReturnType<typeof setTimeout>;
  timedOut: boolean;
}

const encoder = new TextEncoder();

/** One open socket: JSON-RPC requests matched to their responses, notifications handed on. */
export class Channel {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private gone = false;
  private markClosed!: () => void;
  /** Local time of the last frame read; the keepalive measures silence from it. */
  private lastFrameAt = Date.now();
  private keepaliveTimer: ReturnType<typeof setInterval> | undefined;
  /** What calls still waiting are failed with when the socket ends (CLOSED after the client's close()). */
  private endError: ((method: string, code: number) => LockstepClientError) | undefined;
  /** Settles when the socket has closed, however. */
  readonly closed = new Promise<void>((resolve) => (this.markClosed = resolve));

  constructor(
    private readonly ws: WebSocketLike,
    private readonly handlers: ChannelHandlers,
  ) {
    ws.onmessage = (event: MessageEventLike) => this.onMessage(event.data);
    ws.onclose = (event: CloseEventLike) => this.onClose(event);
    // Errors are always followed by close, which does the work; an unhandled one would crash Node.
    ws.onerror = () => undefined;
  }

  get open(): boolean {
    return !this.gone && this.ws.readyState === OPEN;
  }

  request(method: string, params: unknown, options: RequestOptions): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (!this.open) {
        reject(
          this.endError?.(method, 0) ??
            LockstepClientError.local('DISCONNECTED', `not connected: ${method} was not sent`, method, {
              sent: false,
            }),
        );
        return;
      }
      const id = this.nextId++;
      const text = JSON.stringify({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) });
      const limit = options.maxBytes;
      if (limit !== undefined && text.length * 3 > limit) {
        const bytes = encoder.encode(text).byteLength;
        if (bytes > limit) {
          reject(
            new LockstepClientError({
              type: 'PAYLOAD_TOO_LARGE',
              code: 413,
              message: `${method} is ${bytes} bytes, over the server's limit of ${limit}`,
              retryable: false,
              data: { bytes, limit },
              method,
            }),
          );
          return;
        }
      }
      const timer = setTimeout(() => {
        const entry = this.pending.get(id);
        // Kept while a late result can still matter; the socket's end clears it either way.
        if (entry?.onLate !== undefined) entry.timedOut = true;
        else this.pending.delete(id);
        reject(LockstepClientError.local('TIMEOUT', `${method}: no reply in ${options.timeoutMs} ms`, method));
      }, options.timeoutMs);
      this.pending.set(id, {
        method,
        resolve,
        reject,
        onResult: options.onResult,
        onLate: options.onLate,
        timer,
        timedOut: false,
      });
      this.ws.send(text);
    });
  }

  /**
   * Closes the socket. With `error`, calls still waiting fail with it rather than DISCONNECTED
   * (the client's own close() fails them with CLOSED).
   */
  close(code: number = CloseCode.NORMAL, reason = '', error?: (method: string) => LockstepClientError): void {
    this.stopKeepalive();
    if (error !== undefined) this.endError = error;
    if (this.ws.readyState <= OPEN) this.ws.close(code, reason);
  }

  /**
   * Ends the socket at once, without waiting for a close handshake a silent peer would never
   * finish (`ws`'s terminate(), else close()), and handles it as closed now.
   */
  terminate(code: number = CloseCode.ABNORMAL, reason = 'terminated'): void {
    this.stopKeepalive();
    const ws = this.ws as WebSocketLike & { terminate?: () => void };
    try {
      if (typeof ws.terminate === 'function') ws.terminate();
      else if (ws.readyState <= OPEN) ws.close(4000, reason);
    } catch {
      // Gone either way.
    }
    this.onClose({ code, reason });
  }

  /**
   * Client-side liveness: every heartbeatMs, a session.ping when nothing was read for about
   * heartbeatMs (which also keeps the server's idle timeout off a client waiting quietly in a
   * queue), and terminate() when nothing was read for about 3 heartbeatMs: a partitioned or
   * silently dropped connection is then handled as a drop instead of looking open forever.
   */
  startKeepalive(heartbeatMs: number): void {
    this.stopKeepalive();
    if (!(heartbeatMs > 0) || this.gone) return;
    this.lastFrameAt = Date.now();
    const timer = setInterval(() => {
      if (this.gone) {
        this.stopKeepalive();
        return;
      }
      const silent = Date.now() - this.lastFrameAt;
      if (silent >= heartbeatMs * 3 - heartbeatMs / 4) {
        this.terminate(CloseCode.ABNORMAL, `no frame from the server in ${silent} ms`);
        return;
      }
      if (silent >= heartbeatMs - heartbeatMs / 4)
        this.request('session.ping', undefined, { timeoutMs: heartbeatMs * 3 }).catch(() => undefined);
    }, heartbeatMs);
    (timer as { unref?: () => void }).unref?.();
    this.keepaliveTimer = timer;
  }

  private stopKeepalive(): void {
    clearInterval(this.keepaliveTimer);
    this.keepaliveTimer = undefined;
  }

  private onMessage(data: unknown): void {
    this.lastFrameAt = Date.now();
    if (typeof data !== 'string') return;
    let frame: unknown;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (!isRecord(frame)) return;
    if (typeof frame.method === 'string' && frame.id === undefined) {
      this.handlers.notification(frame.method, frame.params);
      return;
    }
    const pending = typeof frame.id === 'number' ? this.pending.get(frame.id) : undefined;
    const error = isRecord(frame.error) ? (frame.error as unknown as RpcErrorFrame) : undefined;
    if (pending === undefined) {
      if (error !== undefined && frame.id === null) this.handlers.strayError(LockstepClientError.fromRpc(error));
      return;
    }
    this.pending.delete(frame.id as number);
    clearTimeout(pending.timer);
    if (pending.timedOut) {
      if (error === undefined) pending.onLate?.(frame.result);
      return;
    }
    if (error !== undefined) {
      pending.reject(LockstepClientError.fromRpc(error, pending.method));
      return;
    }
    pending.onResult?.(frame.result);
    pending.resolve(frame.result);
  }

  private onClose(event: CloseEventLike): void {
    if (this.gone) return;
    this.gone = true;
    this.stopKeepalive();
    this.markClosed();
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      if (!p.timedOut)
        p.reject(
          this.endError?.(p.method, event.code) ??
            LockstepClientError.local(
              'DISCONNECTED',
              `connection closed (${event.code}) before ${p.method} was answered`,
              p.method,
            ),
        );
    }
    this.pending.clear();
    this.handlers.closed(this, { code: event.code, reason: event.reason });
  }
}
