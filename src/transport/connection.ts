import type { Logger } from 'pino';
import type { RawData, WebSocket } from 'ws';
import type { SessionInfo } from '../concurrency/index.ts';
import type { Coordinator, DisconnectReason, Sink } from '../coordinator/coordinator.ts';
import { dispatch, isMethod, validate } from '../coordinator/dispatch.ts';
import { hello } from '../coordinator/session-handlers.ts';
import { LockstepError, RpcCode, RpcProtocolError, type RpcErrorObject } from '../protocol/errors.ts';
import {
  errorFrame,
  isBadCall,
  notificationFrame,
  parseCall,
  resultFrame,
  type IncomingCall,
  type RequestId,
} from '../protocol/jsonrpc.ts';
import type { NotificationName, NotificationParams } from '../protocol/notifications.ts';
import { TokenBucket } from './token-bucket.ts';

/** Pongs a socket may miss in a row before it is taken for dead (spec: two). */
const MAX_MISSED_PONGS = 2;
/**
 * Close codes of a client saying goodbye (normal, going away, or a close frame without a code):
 * the session ends at once. Anything else (1006 above all: no close frame) is a connection lost.
 */
const GOODBYE_CODES = new Set([1000, 1001, 1005]);
/** How long a dropped slow consumer's close frame gets before the socket is cut. */
const SLOW_CONSUMER_CLOSE_MS = 1_000;

export interface ConnectionOptions {
  /** How long the socket may stay without a session before it is closed (1008). */
  helloTimeoutMs: number;
  /** The socket now has a session (it no longer counts as pending). */
  onSession(): void;
}

/**
 * One socket = one session. Turns frames into calls and results into frames; every decision about
 * locks, edits and sessions is the coordinator's.
 */
export class Connection implements Sink {
  session: SessionInfo | undefined;
  private missedPongs = 0;
  /**
   * While a call of this session runs, pushes to it wait here so the reply goes first (a release
   * that moves this session's own ticket up must answer before the lock.queue it causes), and a
   * slow consumer found mid-call is dropped only after the call's after-reply work.
   */
  private inCall = false;
  private readonly held: string[] = [];
  private droppedInCall = false;
  /**
   * A call that needs the program store answers asynchronously; the frames that arrive meanwhile
   * wait here and run in order after it, so a session's calls still run one at a time.
   */
  private busy = false;
  private readonly waiting: Array<() => void> = [];
  private readonly bucket: TokenBucket;
  private helloTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ws: WebSocket,
    private readonly c: Coordinator,
    private readonly log: Logger,
    private readonly opts: ConnectionOptions,
  ) {
    const { rateLimit, rateBurst } = c.options.limits;
    this.bucket = new TokenBucket(rateLimit, rateBurst, () => c.clock.now());
    // An unauthenticated socket costs memory and a file descriptor while doing nothing useful.
    this.helloTimer = setTimeout(() => ws.close(1008, 'no session.hello in time'), opts.helloTimeoutMs);
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('pong', () => {
      this.missedPongs = 0;
    });
    ws.on('close', (code) => {
      clearTimeout(this.helloTimer);
      this.onGone(GOODBYE_CODES.has(code) ? 'closed' : 'dropped');
    });
    ws.on('error', (err) => {
      this.log.debug({ err, sessionId: this.session?.id }, 'socket error');
    });
  }

  /** Called every heartbeat interval by the server. */
  heartbeat(): void {
    if (this.missedPongs >= MAX_MISSED_PONGS) {
      this.log.info({ sessionId: this.session?.id, name: this.session?.name }, 'missed pongs, terminating');
      this.ws.terminate();
      this.onGone();
      return;
    }
    this.missedPongs++;
    this.ws.ping();
  }

  notify<N extends NotificationName>(method: N, params: NotificationParams<N>): void {
    const frame = notificationFrame(method, params);
    if (this.inCall) this.held.push(frame);
    else this.send(frame);
  }

  /** Closed by the coordinator, which has already dealt with the session. */
  close(code: number, reason: string): void {
    this.session = undefined;
    this.ws.close(code, reason);
  }

  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  /** The socket is gone (close, error, terminate): the session goes with it, in this tick. */
  private onGone(why: DisconnectReason = 'dropped'): void {
    const session = this.session;
    if (session === undefined) return;
    this.session = undefined;
    this.c.disconnect(session.id, why, this);
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.busy) {
      this.waiting.push(() => this.onMessage(data, isBinary));
      return;
    }
    if (isBinary) {
      this.replyError(
        null,
        new RpcProtocolError(RpcCode.PARSE_ERROR, 'Parse error: binary frames are not accepted, send JSON text'),
      );
      return;
    }
    const bytes = Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength;
    const { maxMessageBytes } = this.c.options.limits;
    if (bytes > maxMessageBytes) {
      this.replyError(
        null,
        new LockstepError('PAYLOAD_TOO_LARGE', `message of ${bytes} bytes is over the limit of ${maxMessageBytes}`, {
          bytes,
          limit: maxMessageBytes,
        }),
      );
      return;
    }
    const call = parseCall(textOf(data));
    const waitMs = this.bucket.take();
    if (waitMs > 0) {
      // A JSON-RPC notification (no id) is never answered, not even to refuse it.
      if (!isBadCall(call) && call.id === undefined) return;
      const { rateLimit, rateBurst } = this.c.options.limits;
      this.replyError(
        call.id ?? null,
        new LockstepError(
          'RATE_LIMITED',
          `over ${rateLimit} requests per second (burst ${rateBurst})`,
          { limit: 'rateLimit', rateLimit, rateBurst },
          waitMs,
        ),
      );
      return;
    }
    if (isBadCall(call)) {
      this.replyError(call.id, call.error);
      return;
    }
    this.handle(call);
  }

  private handle(call: IncomingCall): void {
    const after: Array<() => void> = [];
    const started = performance.now();
    this.inCall = true;
    let result: unknown;
    try {
      result = this.run(call, after);
    } catch (err) {
      this.finish(call, after, started, { err });
      return;
    }
    if (!(result instanceof Promise)) {
      this.finish(call, after, started, { value: result });
      return;
    }
    this.busy = true;
    result
      .then(
        (value: unknown) => this.finish(call, after, started, { value }),
        (err: unknown) => this.finish(call, after, started, { err }),
      )
      .finally(() => {
        this.busy = false;
        while (!this.busy) {
          const next = this.waiting.shift();
          if (next === undefined) break;
          next();
        }
      });
  }

  private finish(
    call: IncomingCall,
    after: Array<() => void>,
    started: number,
    settled: { value: unknown } | { err: unknown },
  ): void {
    let outcome = 'ok';
    if ('value' in settled) {
      if (call.id !== undefined) this.send(resultFrame(call.id, settled.value));
    } else {
      const { err } = settled;
      outcome =
        err instanceof LockstepError ? err.type : err instanceof RpcProtocolError ? String(err.code) : 'internal';
      if (call.id !== undefined) this.replyError(call.id, err);
      else this.logUnexpected(err, call.method);
      if (err instanceof LockstepError && err.type === 'UNAUTHORIZED') {
        this.log.info({ method: call.method }, 'unauthorized, closing');
        this.ws.close(1008, 'unauthorized');
      }
    }
    const method = isMethod(call.method) ? call.method : 'unknown';
    this.c.metrics.requests.observe({ method, outcome }, (performance.now() - started) / 1000);
    try {
      for (const fn of after) fn();
    } finally {
      this.inCall = false;
      for (const frame of this.held.splice(0)) this.send(frame);
      if (this.droppedInCall) this.onGone();
    }
  }

  private run(call: IncomingCall, after: Array<() => void>): unknown {
    const { method } = call;
    if (!isMethod(method)) {
      throw new RpcProtocolError(RpcCode.METHOD_NOT_FOUND, `Method not found: ${method.slice(0, 128)}`, {
        method: method.slice(0, 128),
      });
    }
    if (method === 'session.hello') {
      if (this.session !== undefined) {
        throw new RpcProtocolError(RpcCode.INVALID_REQUEST, 'Invalid request: this connection already has a session', {
          sessionId: this.session.id,
        });
      }
      const opened = hello(this.c, validate('session.hello', call.params), this);
      this.session = opened.session;
      clearTimeout(this.helloTimer);
      this.opts.onSession();
      return opened.result;
    }
    const session = this.session;
    if (session === undefined) {
      throw new LockstepError('SESSION_REQUIRED', `call session.hello before ${method}`, { method });
    }
    this.c.sessions.touch(session.id);
    return dispatch(this.c, { session, afterReply: (fn) => after.push(fn) }, method, call.params);
  }

  private replyError(id: RequestId, err: unknown): void {
    this.send(errorFrame(id, this.toRpcError(err)));
  }

  private toRpcError(err: unknown): RpcErrorObject {
    if (err instanceof LockstepError || err instanceof RpcProtocolError) return err.toRpcError();
    this.logUnexpected(err);
    return { code: RpcCode.INTERNAL_ERROR, message: 'Internal error' };
  }

  private logUnexpected(err: unknown, method?: string): void {
    if (err instanceof LockstepError || err instanceof RpcProtocolError) return;
    this.log.error({ err, method, sessionId: this.session?.id, name: this.session?.name }, 'unexpected error');
  }

  private send(frame: string): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    const { maxBufferedBytes } = this.c.options.limits;
    if (this.ws.bufferedAmount > maxBufferedBytes) {
      this.log.warn(
        { sessionId: this.session?.id, name: this.session?.name, buffered: this.ws.bufferedAmount },
        'slow consumer dropped',
      );
      this.c.metrics.slowConsumers.inc();
      this.ws.close(1013, 'slow consumer: too much unsent data');
      // The close frame queues behind the unsent data; a reader that never reads again would keep
      // it all until ws's 30 s close timeout, so cut the socket soon after.
      setTimeout(() => this.ws.terminate(), SLOW_CONSUMER_CLOSE_MS).unref();
      // Releasing the session's locks before the call's commit event and watchers' pushes went
      // out would put a commit on the stream after its lock had passed to someone else.
      if (this.inCall) this.droppedInCall = true;
      else this.onGone();
      return;
    }
    this.ws.send(frame);
  }
}

/** The frame's text. ws hands a Buffer unless the socket was told otherwise; no copy then. */
function textOf(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  return (Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)).toString('utf8');
}
