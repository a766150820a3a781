import type { Logger } from 'pino';
import type { RawData, WebSocket } from 'ws';
import type { Conversation, CoordinatorPort, DisconnectReason, Sink } from '../coordinator/index.ts';
import { CloseCode } from '../protocol/close-codes.ts';
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
import { onCloseFrame } from './close-frame.ts';
import { Intake } from './intake.ts';
import { TokenBucket } from './token-bucket.ts';

/** Pongs a socket may miss in a row before it is taken for dead (docs/protocol.md, "Sessions": two). */
const MAX_MISSED_PONGS = 2;
/**
 * Close codes of a client saying goodbye (normal, going away, or a close frame without a code):
 * the session ends at once. Anything else (1006 above all: no close frame) is a connection lost.
 */
const GOODBYE_CODES = new Set<number>([CloseCode.NORMAL, CloseCode.GOING_AWAY, CloseCode.NO_STATUS]);
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
 * locks, edits and sessions is the coordinator's, reached through this socket's Conversation.
 */
export class Connection implements Sink {
  private readonly conversation: Conversation;
  private missedPongs = 0;
  /**
   * While a call of this session runs, pushes to it wait here so the reply goes first (a release
   * that moves this session's own ticket up must answer before the lock.queue it causes), and a
   * slow consumer found mid-call is dropped only after the call's after-reply work.
   */
  private inCall = false;
  private readonly held: string[] = [];
  /** What the current call left to run after its reply. */
  private readonly after: Array<() => void> = [];
  private droppedInCall = false;
  private readonly bucket: TokenBucket;
  private readonly intake: Intake;
  private helloTimer: unknown;

  constructor(
    private readonly ws: WebSocket,
    private readonly c: CoordinatorPort,
    private readonly log: Logger,
    opts: ConnectionOptions,
  ) {
    const { rateLimit, rateBurst } = c.limits;
    this.bucket = new TokenBucket(rateLimit, rateBurst, () => c.clock.now());
    this.intake = new Intake(ws, this.bucket, {
      run: (data, isBinary) => this.onMessage(data, isBinary),
      refuse: (data, isBinary, waitMs) => this.refuse(data, isBinary, waitMs),
    });
    const hooks = {
      afterReply: (fn: () => void) => {
        this.after.push(fn);
      },
      charge: (units: number) => this.bucket.charge(units),
    };
    // An unauthenticated socket costs memory and a file descriptor while doing nothing useful: it
    // is closed unless a hello opens a session in time, counted on the coordinator's clock.
    const awaitHello = () =>
      c.clock.setTimeout(() => ws.close(CloseCode.POLICY_VIOLATION, 'no session.hello in time'), opts.helloTimeoutMs);
    this.conversation = c.open(this, hooks, (open) => {
      c.clock.clearTimeout(this.helloTimer);
      if (!open) this.helloTimer = awaitHello();
      else opts.onSession();
    });
    this.helloTimer = awaitHello();
    ws.on('message', (data, isBinary) => this.intake.push(data, isBinary));
    ws.on('pong', () => {
      this.missedPongs = 0;
    });
    // A client's close frame ends its session at once, so that its close returning means its
    // locks are free; the socket's end (any end) catches every other way of going.
    const gone = (code: number) => {
      c.clock.clearTimeout(this.helloTimer);
      this.intake.stop();
      this.onGone(GOODBYE_CODES.has(code) ? 'closed' : 'dropped');
    };
    onCloseFrame(ws, gone);
    ws.on('close', gone);
    ws.on('error', (err) => {
      this.log.debug({ err, ...this.conversation.who }, 'socket error');
    });
  }

  /** Called every heartbeat interval by the server. */
  heartbeat(): void {
    if (this.missedPongs >= MAX_MISSED_PONGS) {
      this.log.info(this.conversation.who, 'missed pongs, terminating');
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
    this.conversation.forget();
    this.ws.close(code, reason);
  }

  /** The socket is gone (close, error, terminate): the session goes with it, in this tick. */
  private onGone(why: DisconnectReason = 'dropped'): void {
    this.conversation.disconnect(why);
  }

  /** A promise while a call that waits for the program store is still running. */
  private onMessage(data: RawData, isBinary: boolean): Promise<void> | undefined {
    if (isBinary) {
      this.replyError(
        null,
        new RpcProtocolError(RpcCode.PARSE_ERROR, 'Parse error: binary frames are not accepted, send JSON text'),
      );
      return;
    }
    const bytes = byteLength(data);
    const { maxMessageBytes } = this.c.limits;
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
    if (isBadCall(call)) {
      this.replyError(call.id, call.error);
      return;
    }
    return this.handle(call);
  }

  /** Over the rate: answered without running (a notification, having no id, is not answered). */
  private refuse(data: RawData, isBinary: boolean, waitMs: number): void {
    const bytes = isBinary ? 0 : byteLength(data);
    const call = isBinary || bytes > this.c.limits.maxMessageBytes ? undefined : parseCall(textOf(data));
    if (call !== undefined && !isBadCall(call) && call.id === undefined) return;
    const { rateLimit, rateBurst } = this.c.limits;
    this.replyError(
      call?.id ?? null,
      new LockstepError(
        'RATE_LIMITED',
        `over ${rateLimit} requests per second (burst ${rateBurst})`,
        { limit: 'rateLimit', rateLimit, rateBurst },
        waitMs,
      ),
    );
  }

  /**
   * Runs one call. A call that needs the program store answers later: until then this session's
   * pushes are held (its reply still goes first) and its next frames wait in the Intake, so a
   * session's calls run one at a time and answer in order.
   */
  private handle(call: IncomingCall): Promise<void> | undefined {
    // A node that may no longer serve (cluster: its lease deadline passed) runs nothing more; it
    // is closing this socket.
    if (!this.c.serving()) return;
    this.inCall = true;
    let result: unknown;
    try {
      result = this.conversation.call(call.method, call.params);
    } catch (err) {
      this.answer(call, { err });
      return;
    }
    if (result instanceof Promise) {
      return result.then(
        (value: unknown) => this.answer(call, { value }),
        (err: unknown) => this.answer(call, { err }),
      );
    }
    this.answer(call, { value: result });
  }

  private answer(call: IncomingCall, settled: { value: unknown } | { err: unknown }): void {
    if ('value' in settled) {
      if (call.id !== undefined) this.send(resultFrame(call.id, settled.value));
    } else {
      const { err } = settled;
      if (call.id !== undefined) this.replyError(call.id, err);
      else this.logUnexpected(err, call.method);
      if (err instanceof LockstepError && err.type === 'UNAUTHORIZED') {
        this.log.info({ method: call.method }, 'unauthorized, closing');
        this.ws.close(CloseCode.POLICY_VIOLATION, 'unauthorized');
      }
    }
    try {
      for (const fn of this.after) fn();
    } finally {
      this.after.length = 0;
      this.inCall = false;
      for (const frame of this.held.splice(0)) this.send(frame);
      if (this.droppedInCall) this.onGone();
    }
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
    this.log.error({ err, method, ...this.conversation.who }, 'unexpected error');
  }

  /**
   * Frames go out one `ws.send` each, uncorked: ws already writes a frame's header and payload in
   * one writev, and corking the socket until the end of the tick was measured to batch nothing
   * (1.000 frames per socket per tick in the bench's uncontended run, 1.001 in its hand-over; a
   * closed-loop client has one call outstanding and pushes go to other sockets) while it delayed
   * the hand-over's grant push (p50 1.14x-1.15x in three runs). Kept off until clients pipeline.
   */
  private send(frame: string): void {
    // docs/cluster.md, rule 2: nothing leaves a node past its lease deadline, not even an answer computed
    // before it (the check is synchronous, right before the write).
    if (this.ws.readyState !== this.ws.OPEN || !this.c.serving()) return;
    const { maxBufferedBytes } = this.c.limits;
    if (this.ws.bufferedAmount > maxBufferedBytes) {
      this.log.warn({ ...this.conversation.who, buffered: this.ws.bufferedAmount }, 'slow consumer dropped');
      this.conversation.countSlowConsumer();
      this.ws.close(CloseCode.TRY_AGAIN_LATER, 'slow consumer: too much unsent data');
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

function byteLength(data: RawData): number {
  return Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength;
}

/** The frame's text. ws hands a Buffer unless the socket was told otherwise; no copy then. */
export function textOf(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  return (Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)).toString('utf8');
}
