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
        reject(LockstepClientError.local('DISCONNECTED', `not connected: ${method} was not sent`, method));
        return;
      }
      const id = this.nextId++;
      const text = JSON.stringify({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) });
      const limit = options.maxBytes;
      if (limit !== undefined && text.length * 3 > limit) {
        const bytes = encoder.encode(text).byteLength;
        if (bytes > limit) {
          reject(new LockstepClientError({ type: 'PAYLOAD_TOO_LARGE', code: 413, message: `${method} is ${bytes} bytes, over the server's limit of ${limit}`, retryable: false, data: { bytes, limit }, method }));
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
      this.pending.set(id, { method, resolve, reject, onResult: options.onResult, onLate: options.onLate, timer, timedOut: false });
      this.ws.send(text);
    });
  }

  close(code = 1000, reason = ''): void {
    if (this.ws.readyState <= OPEN) this.ws.close(code, reason);
  }

  private onMessage(data: unknown): void {
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
    this.markClosed();
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      if (!p.timedOut) p.reject(LockstepClientError.local('DISCONNECTED', `connection closed (${event.code}) before ${p.method} was answered`, p.method));
    }
    this.pending.clear();
    this.handlers.closed(this, { code: event.code, reason: event.reason });
  }
}
