import type { EventEmitter } from 'eventemitter3';
import { CloseCode } from '../protocol/close-codes.ts';
import { PROTOCOL_VERSION } from '../protocol/methods.ts';
import { type Backoff, backoffDelay } from './backoff.ts';
import { Channel } from './channel.ts';
import { isLockstepError, LockstepClientError, toClientError } from './errors.ts';
import { LeaderSearch } from './leader-search.ts';
import { openSocket, type WebSocketConstructor, type WebSocketLike } from './socket.ts';
import type { ClientEvents, HelloResult } from './types.ts';

export type ClientState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface ConnectionOptions {
  /** The cluster's nodes (or one server, or a load balancer in front of a cluster). */
  urls: readonly string[];
  name: string | undefined;
  role: 'agent' | 'observer' | undefined;
  token: string | undefined;
  WebSocket: WebSocketConstructor;
  /** undefined: a drop closes the client. */
  backoff: Backoff | undefined;
  connectTimeoutMs: number;
  callTimeoutMs: number;
  /** Cap on the wait a NOT_LEADER asks for before the next node is tried. */
  maxNotLeaderWaitMs: number;
}

/** How a session came up: the session before it, if any, and where each was. */
export interface SessionStart {
  hello: HelloResult;
  previous: HelloResult | undefined;
  /** The node the previous session was on. */
  previousUrl: string | undefined;
  url: string;
  resumed: boolean;
  reconnect: boolean;
}

/** How a socket ended, as the connection saw it. */
export interface Drop {
  error: LockstepClientError;
  code: number;
  /** The client will reconnect. */
  reconnect: boolean;
  /** ... and the server keeps the session for a resume (the hello gave a resume secret). */
  resumable: boolean;
  /** A close 4002: the node stopped leading, another one leads or soon will. */
  notLeader: boolean;
}

/** What the session on top needs to hear from the connection beneath it. */
export interface ConnectionHooks {
  push(method: string, params: unknown): void;
  /**
   * A session is up on `channel` (after hello, before any waiting call is let through): carry the
   * client's state over to it. `previous` is the hello of the session before, if there was one.
   */
  started(channel: Channel, s: SessionStart): Promise<void>;
  /**
   * The session's socket is gone (also one that died while the session was being set up on it);
   * the server withdrew every queued ticket with it.
   */
  dropped(drop: Drop): void;
  /** The client is closed for good (`byClose`: by close()): what waits fails with `error`. */
  finished(error: LockstepClientError, byClose: boolean): void;
}

interface ReadyWaiter {
  resolve(channel: Channel): void;
  reject(err: LockstepClientError): void;
}

/** How long close() waits for the close handshake of a server that may be gone. */
const CLOSE_WAIT_MS = 1_000;

/**
 * The life cycle of the client's connection: opening a socket to the node that leads (./leader-search.ts),
 * saying hello (taking the old session back when the server allows), the reconnect loop with
 * backoff, and letting calls wait for the connection to be open. It knows nothing of locks; the
 * session on top does (hooks).
 */
export class Connection {
  private current: ClientState = 'idle';
  private channel: Channel | undefined;
  private helloResult: HelloResult | undefined;
  /** The node the current (or last) session is on. */
  private sessionUrl: string | undefined;
  private readonly search: LeaderSearch;
  private connecting: Promise<HelloResult> | undefined;
  private readyWaiters: ReadyWaiter[] = [];
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private wake: (() => void) | undefined;
  /** Aborts a socket still opening when close() is called. */
  private opening: AbortController | undefined;

  constructor(
    private readonly options: ConnectionOptions,
    private readonly hooks: ConnectionHooks,
    private readonly events: EventEmitter<ClientEvents>,
  ) {
    this.search = new LeaderSearch(options.urls, options.maxNotLeaderWaitMs);
  }

  /** The node connected to, or being tried. */
  get url(): string {
    return this.search.current;
  }

  get state(): ClientState {
    return this.current;
  }

  get hello(): HelloResult | undefined {
    return this.helloResult;
  }

  async connect(): Promise<HelloResult> {
    if (this.current === 'open' && this.helloResult !== undefined) return this.helloResult;
    if (this.current === 'closed') throw LockstepClientError.local('CLOSED', 'the client is closed');
    if (this.connecting !== undefined) return this.connecting;
    if (this.current === 'reconnecting') {
      await this.whenOpen(this.options.connectTimeoutMs, 'connect');
      return this.helloResult as HelloResult;
    }
    this.current = 'connecting';
    this.connecting = this.dial(false);
    try {
      return await this.connecting;
    } catch (err) {
      if (this.current === 'connecting') this.current = 'idle';
      this.rejectReady(toClientError(err));
      throw err;
    } finally {
      this.connecting = undefined;
    }
  }

  /**
   * The open channel, or the next one. A channel already closing counts as gone (its close event
   * may not have fired yet): a call waits for the reconnect rather than failing on it. `signal`
   * gives up waiting at once, before anything was sent.
   */
  whenOpen(timeoutMs: number, method: string, signal?: AbortSignal): Promise<Channel> {
    if (this.current === 'open' && this.channel?.open === true) return Promise.resolve(this.channel);
    if (signal?.aborted === true)
      return Promise.reject(LockstepClientError.local('ABORTED', `${method} aborted`, method));
    if (this.current === 'closed')
      return Promise.reject(
        LockstepClientError.local('CLOSED', `the client is closed: ${method} was not sent`, method),
      );
    if (this.current === 'idle')
      return Promise.reject(
        LockstepClientError.local(
          'DISCONNECTED',
          `not connected (call connect() first): ${method} was not sent`,
          method,
        ),
      );
    return new Promise((resolve, reject) => {
      const settle = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.readyWaiters = this.readyWaiters.filter((w) => w !== waiter);
      };
      const waiter: ReadyWaiter = {
        resolve: (ch) => {
          settle();
          resolve(ch);
        },
        reject: (err) => {
          settle();
          reject(err);
        },
      };
      const onAbort = () => waiter.reject(LockstepClientError.local('ABORTED', `${method} aborted`, method));
      const timer = setTimeout(
        () =>
          waiter.reject(
            LockstepClientError.local('TIMEOUT', `${method}: not connected within ${timeoutMs} ms`, method, {
              sent: false,
            }),
          ),
        timeoutMs,
      );
      signal?.addEventListener('abort', onAbort, { once: true });
      this.readyWaiters.push(waiter);
    });
  }

  /**
   * Ends the connection for good. `releaseFirst`: with resume grace on, the server would keep the
   * session's locks for the grace period after a plain close, so they are released first.
   */
  async close(releaseFirst: boolean): Promise<void> {
    if (this.current === 'closed') return;
    const channel = this.channel;
    if (releaseFirst && channel?.open === true && this.helloResult?.resumeSecret !== undefined) {
      await channel.request('lock.releaseAll', undefined, { timeoutMs: CLOSE_WAIT_MS }).catch(() => undefined);
    }
    this.finish();
    if (channel === undefined) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    channel.close(CloseCode.NORMAL, 'client closed', (method) =>
      LockstepClientError.local('CLOSED', `the client was closed before ${method} was answered`, method),
    );
    const handshake = await Promise.race([
      channel.closed.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), CLOSE_WAIT_MS);
      }),
    ]);
    clearTimeout(timer);
    // A server that does not answer the close frame (gone, partitioned) must not keep the socket open.
    if (!handshake) channel.terminate(CloseCode.ABNORMAL, 'client closed');
  }

  /** A method, not a field read, so that checks after an await are not narrowed away. */
  isClosed(): boolean {
    return this.current === 'closed';
  }

  /**
   * One round over the nodes until one of them serves the session: a standby's NOT_LEADER sends
   * it to the leader it names, or (none named, mid-failover) to the next node after the wait the
   * standby asked for. Fails with the last error once every node failed, or at once on an error
   * that retrying cannot fix.
   */
  private async dial(reconnect: boolean): Promise<HelloResult> {
    for (;;) {
      try {
        const hello = await this.establish(this.search.current, reconnect);
        this.search.connected();
        return hello;
      } catch (err) {
        const e = toClientError(err);
        if (!e.retryable || this.isClosed()) throw e;
        const hop = this.search.failed(e);
        if (hop.roundOver) throw e;
        await this.pause(hop.waitMs);
        if (this.isClosed()) throw LockstepClientError.local('CLOSED', 'the client was closed while connecting');
      }
    }
  }

  /** Waits, cut short by close(). */
  private pause(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.wake = resolve;
      this.reconnectTimer = setTimeout(resolve, ms);
    });
  }

  /** Opens a socket to `url` and a session on it: the old one taken back when possible, else a new one. */
  private async establish(url: string, reconnect: boolean): Promise<HelloResult> {
    const opening = new AbortController();
    this.opening = opening;
    let ws: WebSocketLike;
    try {
      ws = await openSocket(this.options.WebSocket, url, this.options.connectTimeoutMs, opening.signal);
    } finally {
      if (this.opening === opening) this.opening = undefined;
    }
    const channel = new Channel(ws, {
      notification: (method, params) => this.hooks.push(method, params),
      strayError: (err) => this.events.emit('error', err),
      closed: (ch, event) => this.onClosed(ch, event),
    });
    let started = false;
    try {
      if (this.isClosed()) throw LockstepClientError.local('CLOSED', 'the client was closed while connecting');
      const previous = this.helloResult;
      const previousUrl = this.sessionUrl;
      const { hello, resumed } = await this.sayHello(channel, previous);
      this.helloResult = hello;
      this.sessionUrl = url;
      channel.startKeepalive(hello.heartbeatMs);
      started = true;
      await this.hooks.started(channel, { hello, previous, previousUrl, url, resumed, reconnect });
      if (!channel.open)
        throw LockstepClientError.local('DISCONNECTED', 'connection closed while the session was being set up');
      if (this.isClosed()) throw LockstepClientError.local('CLOSED', 'the client was closed while connecting');
      this.channel = channel;
      this.current = 'open';
      const ready = this.readyWaiters;
      this.readyWaiters = [];
      for (const w of ready) w.resolve(channel);
      this.events.emit('connected', { hello, resumed, reconnect });
      return hello;
    } catch (err) {
      channel.close();
      // The session was being set up on this socket: losing it is a drop like any other.
      if (started && reconnect && !this.isClosed())
        this.hooks.dropped(this.drop(toClientError(err), CloseCode.ABNORMAL));
      throw err;
    }
  }

  private drop(error: LockstepClientError, code: number): Drop {
    const reconnect = this.options.backoff !== undefined;
    return {
      error,
      code,
      reconnect,
      resumable: reconnect && this.helloResult?.resumeSecret !== undefined,
      notLeader: code === CloseCode.NOT_LEADER,
    };
  }

  private async sayHello(
    channel: Channel,
    previous: HelloResult | undefined,
  ): Promise<{ hello: HelloResult; resumed: boolean }> {
    const { name, role, token, callTimeoutMs: timeoutMs } = this.options;
    const params = {
      protocol: PROTOCOL_VERSION,
      ...(name === undefined ? {} : { name }),
      ...(role === undefined ? {} : { role }),
      ...(token === undefined ? {} : { token }),
    };
    const secret = previous?.resumeSecret;
    let refused: LockstepClientError | undefined;
    if (previous !== undefined && secret !== undefined) {
      try {
        const hello = (await channel.request(
          'session.hello',
          { ...params, resume: { sessionId: previous.sessionId, secret } },
          { timeoutMs },
        )) as HelloResult;
        return { hello, resumed: true };
      } catch (err) {
        // The grace ran out (NOT_FOUND) or the server restarted: carry on with a new session.
        if (!isLockstepError(err, 'NOT_FOUND', 'UNAUTHORIZED')) throw err;
        if (isLockstepError(err, 'UNAUTHORIZED')) refused = err;
      }
    }
    try {
      if (refused !== undefined && !channel.open) throw refused;
      return { hello: (await channel.request('session.hello', params, { timeoutMs })) as HelloResult, resumed: false };
    } catch (err) {
      // The server closes the socket after UNAUTHORIZED (e.g. a revoked token): that is final, not a
      // drop to retry, or the client would loop on it forever.
      if (refused !== undefined && isLockstepError(err, 'DISCONNECTED', 'UNAUTHORIZED')) throw refused;
      throw err;
    }
  }

  private onClosed(channel: Channel, event: { code: number; reason: string }): void {
    if (channel !== this.channel) return;
    this.channel = undefined;
    // close() has ended everything already (finished).
    if (this.current === 'closed') return;
    const backoff = this.options.backoff;
    this.events.emit('disconnected', { ...event, willReconnect: backoff !== undefined });
    this.hooks.dropped(
      this.drop(
        LockstepClientError.local(
          'DISCONNECTED',
          `connection closed (${event.code}) while waiting for the lock`,
          'lock.acquire',
        ),
        event.code,
      ),
    );
    if (backoff === undefined) {
      this.finish(LockstepClientError.local('DISCONNECTED', `connection closed (${event.code} ${event.reason})`));
      return;
    }
    this.current = 'reconnecting';
    // 4002: this node stopped leading (or never did). Another one leads or soon will: look for it
    // at once rather than after a backoff meant for a server that is down.
    void this.reconnectLoop(backoff, event.code === CloseCode.NOT_LEADER);
  }

  private async reconnectLoop(b: Backoff, atOnce: boolean): Promise<void> {
    let lastError: LockstepClientError | undefined;
    for (let attempt = 1; this.current === 'reconnecting'; attempt++) {
      if (attempt > b.maxAttempts) {
        this.finish(
          LockstepClientError.local(
            'CLOSED',
            `gave up reconnecting after ${b.maxAttempts} attempts${lastError ? `: ${lastError.message}` : ''}`,
          ),
        );
        return;
      }
      const delayMs = atOnce && attempt === 1 ? 0 : backoffDelay(attempt, b);
      this.events.emit('reconnecting', {
        attempt,
        delayMs,
        ...(lastError === undefined ? {} : { error: lastError }),
      });
      await this.pause(delayMs);
      if (this.current !== 'reconnecting') return;
      try {
        await this.dial(true);
        return;
      } catch (err) {
        lastError = toClientError(err);
        if (!lastError.retryable) {
          this.finish(lastError);
          return;
        }
      }
    }
  }

  private rejectReady(err: LockstepClientError): void {
    const waiting = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of waiting) w.reject(err);
  }

  private finish(error?: LockstepClientError): void {
    if (this.current === 'closed') return;
    this.current = 'closed';
    this.channel = undefined;
    clearTimeout(this.reconnectTimer);
    this.wake?.();
    this.opening?.abort();
    const closed = error ?? LockstepClientError.local('CLOSED', 'the client is closed');
    this.hooks.finished(closed, error === undefined);
    this.rejectReady(closed);
    this.events.emit('closed', error === undefined ? {} : { error });
  }
}
