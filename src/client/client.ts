import { EventEmitter } from 'eventemitter3';
import { CloseCode } from '../protocol/close-codes.ts';
import { METHOD_NAMES, PROTOCOL_VERSION, type ParamsOf, type ResultOf } from '../protocol/methods.ts';
import { DEFAULT_PROGRAM, lockSpecs } from '../protocol/limits.ts';
import { NOTIFICATION_NAMES, type NotificationName } from '../protocol/notifications.ts';
import type { Resource } from '../protocol/resource.ts';
import type { Grant } from '../protocol/wire.ts';
import { backoffDelay, DEFAULT_BACKOFF, type Backoff } from './backoff.ts';
import { Channel } from './channel.ts';
import { isLockstepError, LockstepClientError } from './errors.ts';
import { waitForGrant } from './grant-waiter.ts';
import { Leases } from './leases.ts';
import { LockHandle, type LockOwner } from './lock-handle.ts';
import { restoreSession } from './restore.ts';
import { byProgram, selector } from './selectors.ts';
import { SessionState, type TrackOptions } from './session-state.ts';
import { openSocket, type WebSocketConstructor, type WebSocketLike } from './socket.ts';
import type {
  ArgsOf,
  CallableMethod,
  CallOptions,
  ClientEvents,
  ClientOptions,
  HelloResult,
  Namespaces,
  QueueUpdate,
} from './types.ts';

export type ClientState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

/** lock.acquire params, waiting by default, plus what only the client can do. */
export interface AcquireOptions extends Omit<ParamsOf<'lock.acquire'>, 'wait'> {
  /** Queue when not grantable now (default true); false fails with LOCK_DENIED instead. */
  wait?: boolean;
  /** Abort withdraws the queued ticket (lock.cancel), or gives back a grant that raced the abort. */
  signal?: AbortSignal;
  /** The starting queue positions, then every change (lock.queue). */
  onQueue?: (update: QueueUpdate) => void;
  /** Renew these locks automatically until released (default: the client's autoRenew). */
  autoRenew?: boolean;
  /** Reply timeout of the lock.acquire call itself; waiting in the queue is bounded by waitTimeoutMs. */
  timeoutMs?: number;
}

interface SendOptions extends CallOptions, TrackOptions {
  /** Stops waiting for a connection, without the call as a whole being abortable. */
  openSignal?: AbortSignal;
}

interface ReadyWaiter {
  resolve(channel: Channel): void;
  reject(err: LockstepClientError): void;
}

const DEFAULT_CALL_TIMEOUT_MS = 30_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** How long close() waits for the close handshake of a server that may be gone. */
const CLOSE_WAIT_MS = 1_000;

let fallbackWebSocket: WebSocketConstructor | undefined;

/** The WebSocket used when neither the options nor globalThis provide one (the Node entry sets `ws`). */
export function setDefaultWebSocket(ctor: WebSocketConstructor): void {
  fallbackWebSocket = ctor;
}

// The namespaces (client.lock.acquire, client.program.get, ...) are built at run time from the
// protocol's method table, so every method has one; typing the base class as also constructing
// them gives them their types (the base is EventEmitter itself at run time).
const ClientBase = EventEmitter as unknown as new () => EventEmitter<ClientEvents> & Namespaces;

/**
 * A Lockstep session over one WebSocket, kept across drops: typed calls, typed pushes as events,
 * waiting acquires, lease renewal, and reconnect with backoff that takes the session back when the
 * server's resume grace allows.
 */
export class LockstepClient extends ClientBase implements LockOwner {
  readonly url: string;
  private readonly options: ClientOptions;
  private readonly WebSocketImpl: WebSocketConstructor;
  private readonly backoff: Backoff | undefined;
  private readonly leases: Leases;
  /** Not `session`: that name is the session.* methods' namespace. */
  private readonly known: SessionState;
  private current: ClientState = 'idle';
  private channel: Channel | undefined;
  private helloResult: HelloResult | undefined;
  private connecting: Promise<HelloResult> | undefined;
  private readyWaiters: ReadyWaiter[] = [];
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private wake: (() => void) | undefined;
  /** Aborts a socket still opening when close() is called. */
  private opening: AbortController | undefined;

  /** Connects and says hello; resolves once the session is open. */
  static async connect(options: ClientOptions | string): Promise<LockstepClient> {
    const client = new LockstepClient(typeof options === 'string' ? { url: options } : options);
    await client.connect();
    return client;
  }

  constructor(options: ClientOptions) {
    super();
    this.options = options;
    this.url = options.url;
    const Impl =
      options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket ?? fallbackWebSocket;
    if (Impl === undefined) throw new TypeError('no WebSocket implementation: pass options.WebSocket');
    this.WebSocketImpl = Impl;
    const r = options.reconnect ?? true;
    this.backoff = r === false ? undefined : { ...DEFAULT_BACKOFF, ...(r === true ? {} : r) };
    this.leases = new Leases(
      {
        renew: async (program, resources, ttlMs) =>
          this.emit('renewed', (await this.send('lock.renew', { ...selector(program, resources), ttlMs }, {})).grants),
        failed: (error, resources) => this.emit('renewFailed', { error, resources }),
      },
      options.renewFraction ?? 0.5,
    );
    this.known = new SessionState(this.leases, {
      ttlFor: (ttlMs) => this.ttlFor(ttlMs),
      autoRenew: options.autoRenew ?? false,
      giveBack: (grants) => this.giveBack(grants),
    });
    const namespaces: Record<string, Record<string, unknown>> = {};
    for (const method of METHOD_NAMES) {
      if (method === 'session.hello') continue;
      const [ns, op] = method.split('.') as [string, string];
      namespaces[ns] ??= {};
      namespaces[ns][op] = (params?: unknown, opts?: CallOptions) => this.send(method, params as never, opts ?? {});
    }
    Object.assign(this, namespaces);
  }

  get state(): ClientState {
    return this.current;
  }

  /** The last hello result (session id, limits, lock defaults); undefined before the first. */
  get hello(): HelloResult | undefined {
    return this.helloResult;
  }

  get sessionId(): string | undefined {
    return this.helloResult?.sessionId;
  }

  /** Locks this session holds, as the server has told it. */
  held(): Grant[] {
    return this.leases.held();
  }

  heldGrant(resource: Resource): Grant | undefined {
    return this.leases.get(resource);
  }

  heldUnder(resource: Resource, fence: number): boolean {
    return this.leases.heldUnder(resource, fence);
  }

  async connect(): Promise<HelloResult> {
    if (this.current === 'open' && this.helloResult !== undefined) return this.helloResult;
    if (this.current === 'closed') throw LockstepClientError.local('CLOSED', 'the client is closed');
    if (this.connecting !== undefined) return this.connecting;
    if (this.current === 'reconnecting') {
      await this.whenOpen(this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS, 'connect');
      return this.helloResult as HelloResult;
    }
    this.current = 'connecting';
    this.connecting = this.establish(false);
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

  /** Any method by name, with typed params and result. */
  call<M extends CallableMethod>(method: M, ...args: ArgsOf<M>): Promise<ResultOf<M>> {
    const [params, options] = args as [ParamsOf<M> | undefined, CallOptions | undefined];
    return this.send(method, params, options ?? {});
  }

  /**
   * Locks and resolves when granted, at once or after queueing. Rejects with the server's error
   * (LOCK_DENIED without wait, DEADLOCK, NOT_FOUND, ...), WAIT_TIMEOUT, CANCELLED, DISCONNECTED
   * or ABORTED.
   */
  acquire(request: AcquireOptions): Promise<LockHandle> {
    const { signal, onQueue, autoRenew, timeoutMs, wait = true, ...params } = request;
    if (signal?.aborted === true)
      return Promise.reject(LockstepClientError.local('ABORTED', 'acquire aborted', 'lock.acquire'));
    const program = params.program ?? DEFAULT_PROGRAM;
    const { waiter, promise } = waitForGrant({
      method: 'lock.acquire',
      signal,
      onQueue,
      onError: (err) => this.emit('error', toClientError(err)),
      cancel: (ticket) => this.send('lock.cancel', { ticket }, {}),
      release: (grants, previous) => this.undoGrants(grants, previous),
      done: (grants, ticket) => new LockHandle(this, program, grants, ticket),
    });
    // The signal stops a wait for the connection (nothing sent yet); once sent, the waiter handles
    // the abort (cancel the ticket, or give back a grant that raced it).
    this.send(
      'lock.acquire',
      { ...params, wait },
      { timeoutMs, autoRenew, waiter, ...(signal === undefined ? {} : { openSignal: signal }) },
    ).catch((err: unknown) => waiter.failed(toClientError(err)));
    return promise;
  }

  /** Runs fn under the locks and releases them however fn ends (a failed release is emitted as 'error'). */
  async withLocks<T>(request: AcquireOptions, fn: (lock: LockHandle) => T | Promise<T>): Promise<T> {
    const lock = await this.acquire(request);
    try {
      return await fn(lock);
    } finally {
      await lock.release().catch((err: unknown) => this.emit('error', toClientError(err)));
    }
  }

  async releaseHeld(resources: readonly Resource[], retried = false): Promise<Resource[]> {
    const held = resources.filter((r) => this.leases.get(r) !== undefined);
    if (this.current !== 'open' && this.helloResult !== undefined && this.helloResult.resumeSecret === undefined) {
      // Without resume grace the server released everything with the socket: there is nothing to
      // wait for a new connection to release.
      this.leases.remove(held);
      return [];
    }
    const released: Resource[] = [];
    try {
      for (const [program, rs] of byProgram(held))
        released.push(...(await this.send('lock.release', selector(program, rs), {})).released);
      return released;
    } catch (err) {
      if (isLockstepError(err, 'NOT_HELD') && Array.isArray(err.data.resources) && err.data.resources.length > 0) {
        // An expiry crossed the release: forget those and release the rest.
        this.leases.remove(err.data.resources as Resource[]);
        return [...released, ...(await this.releaseHeld(resources, retried))];
      }
      if (isLockstepError(err, 'DISCONNECTED') && !retried && this.current !== 'closed')
        return [...released, ...(await this.releaseHeld(resources, true))];
      throw err;
    }
  }

  async renewHeld(resources: readonly Resource[], ttlMs?: number): Promise<Grant[]> {
    const out: Grant[] = [];
    for (const [program, rs] of byProgram(resources)) {
      out.push(
        ...(await this.send('lock.renew', { ...selector(program, rs), ...(ttlMs === undefined ? {} : { ttlMs }) }, {}))
          .grants,
      );
    }
    return out;
  }

  async downgradeHeld(resources: readonly Resource[]): Promise<Grant[]> {
    const out: Grant[] = [];
    for (const [program, rs] of byProgram(resources))
      out.push(...(await this.send('lock.downgrade', selector(program, rs), {})).grants);
    return out;
  }

  /**
   * Ends the session. With resume grace on, the server would keep the locks for the grace period
   * after a plain close, so they are released first.
   */
  async close(): Promise<void> {
    if (this.current === 'closed') return;
    const channel = this.channel;
    if (channel?.open === true && this.helloResult?.resumeSecret !== undefined && this.leases.size > 0) {
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
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), CLOSE_WAIT_MS))),
    ]);
    clearTimeout(timer);
    // A server that does not answer the close frame (gone, partitioned) must not keep the socket open.
    if (!handshake) channel.terminate(CloseCode.ABNORMAL, 'client closed');
  }

  /**
   * Undoes grants made to an acquire nobody waits for any more (aborted, timed out), leaving what
   * the session held before as it was: a new lock is released, an upgrade of a held read lock is
   * downgraded back to read, and a reentrant grant of a lock already held (same fence) is left alone.
   */
  private async undoGrants(grants: readonly Grant[], previous: readonly (Grant | undefined)[]): Promise<void> {
    const release: Resource[] = [];
    const downgrade: Resource[] = [];
    grants.forEach((g, i) => {
      const before = previous[i];
      if (before === undefined) release.push(g.resource);
      else if (before.fence !== g.fence && before.mode === 'read' && g.mode === 'write') downgrade.push(g.resource);
    });
    if (release.length > 0) await this.releaseHeld(release);
    if (downgrade.length > 0) await this.downgradeHeld(downgrade.filter((r) => this.leases.get(r) !== undefined));
  }

  private async send<M extends CallableMethod>(
    method: M,
    params: ParamsOf<M> | undefined,
    o: SendOptions,
  ): Promise<ResultOf<M>> {
    const timeoutMs = o.timeoutMs ?? this.options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    const call = async () => {
      const channel = await this.whenOpen(timeoutMs, method, o.openSignal);
      if (this.isClosed())
        throw LockstepClientError.local('CLOSED', `the client is closed: ${method} was not sent`, method);
      const maxBytes = this.helloResult?.limits.maxMessageBytes;
      return (await channel.request(method, params, {
        timeoutMs: Math.max(1, deadline - Date.now()),
        onResult: (result) => this.known.afterResult(method, params, result, o),
        ...(maxBytes === undefined ? {} : { maxBytes }),
        ...(method === 'lock.acquire'
          ? { onLate: (result: unknown) => this.abandon(result as ResultOf<'lock.acquire'>) }
          : {}),
      })) as ResultOf<M>;
    };
    return o.signal === undefined ? call() : abortable(call(), o.signal, method);
  }

  /**
   * The open channel, or the next one. A channel already closing counts as gone (its close event
   * may not have fired yet): a call waits for the reconnect rather than failing on it. `signal`
   * gives up waiting at once, before anything was sent.
   */
  private whenOpen(timeoutMs: number, method: string, signal?: AbortSignal): Promise<Channel> {
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
            LockstepClientError.local('TIMEOUT', `${method}: not connected within ${timeoutMs} ms`, method),
          ),
        timeoutMs,
      );
      signal?.addEventListener('abort', onAbort, { once: true });
      this.readyWaiters.push(waiter);
    });
  }

  /** Opens a socket and a session on it: the old one taken back when possible, else a new one. */
  private async establish(reconnect: boolean): Promise<HelloResult> {
    const opening = new AbortController();
    this.opening = opening;
    let ws: WebSocketLike;
    try {
      ws = await openSocket(
        this.WebSocketImpl,
        this.url,
        this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
        opening.signal,
      );
    } finally {
      if (this.opening === opening) this.opening = undefined;
    }
    const channel = new Channel(ws, {
      notification: (method, params) => this.onPush(method, params),
      strayError: (err) => this.emit('error', err),
      closed: (ch, event) => this.onClosed(ch, event),
    });
    try {
      if (this.isClosed()) throw LockstepClientError.local('CLOSED', 'the client was closed while connecting');
      const previous = this.helloResult;
      const { hello, resumed } = await this.sayHello(channel, previous);
      this.helloResult = hello;
      channel.startKeepalive(hello.heartbeatMs);
      if (previous !== undefined && !resumed) {
        const locks = this.leases.held();
        this.leases.clear();
        this.emit('sessionLost', { previousSessionId: previous.sessionId, locks });
      }
      if (reconnect) await this.restore(channel, hello, resumed);
      if (!channel.open)
        throw LockstepClientError.local('DISCONNECTED', 'connection closed while the session was being set up');
      if (this.isClosed()) throw LockstepClientError.local('CLOSED', 'the client was closed while connecting');
      this.channel = channel;
      this.current = 'open';
      const ready = this.readyWaiters;
      this.readyWaiters = [];
      for (const w of ready) w.resolve(channel);
      this.emit('connected', { hello, resumed, reconnect });
      return hello;
    } catch (err) {
      channel.close();
      throw err;
    }
  }

  private async restore(channel: Channel, hello: HelloResult, resumed: boolean): Promise<void> {
    const since = this.known.lastSeq;
    const { errors } = await restoreSession(channel, {
      resumed,
      sessionId: hello.sessionId,
      leases: this.leases,
      ttlMs: this.ttlFor(undefined),
      topics: this.known.topics,
      watching: this.known.watching,
      lastSeq: since,
      runId: this.known.runId,
      timeoutMs: this.options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS,
      // Runs as the reply is read, before the replayed events behind it reach the app, so a gap
      // is announced before anything that follows it.
      subscribed: (events) => {
        // After a gap the stream restarts from the server's seq.
        this.known.lastSeq = events.truncated ? events.seq : Math.max(this.known.lastSeq, events.seq);
        this.known.runId = events.runId;
        if (events.truncated) this.emit('resync', { topics: events.topics, since });
      },
    });
    for (const err of errors) this.emit('error', err);
  }

  private async sayHello(
    channel: Channel,
    previous: HelloResult | undefined,
  ): Promise<{ hello: HelloResult; resumed: boolean }> {
    const { name, role, token } = this.options;
    const params = {
      protocol: PROTOCOL_VERSION,
      ...(name === undefined ? {} : { name }),
      ...(role === undefined ? {} : { role }),
      ...(token === undefined ? {} : { token }),
    };
    const timeoutMs = this.options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
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
    // The server withdraws every queued ticket when the socket goes, resume grace or not.
    this.known.failTickets(
      LockstepClientError.local(
        'DISCONNECTED',
        `connection closed (${event.code}) while waiting for the lock`,
        'lock.acquire',
      ),
    );
    if (this.current === 'closed') return;
    const willReconnect = this.backoff !== undefined;
    this.emit('disconnected', { ...event, willReconnect });
    if (!willReconnect) {
      this.finish(LockstepClientError.local('DISCONNECTED', `connection closed (${event.code} ${event.reason})`));
      return;
    }
    this.current = 'reconnecting';
    void this.reconnectLoop(this.backoff as Backoff);
  }

  private async reconnectLoop(b: Backoff): Promise<void> {
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
      const delayMs = backoffDelay(attempt, b);
      this.emit('reconnecting', { attempt, delayMs, ...(lastError === undefined ? {} : { error: lastError }) });
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        this.reconnectTimer = setTimeout(resolve, delayMs);
      });
      if (this.current !== 'reconnecting') return;
      try {
        await this.establish(true);
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

  private onPush(method: string, params: unknown): void {
    if (!(NOTIFICATION_NAMES as string[]).includes(method)) return;
    this.known.afterPush(method as NotificationName, params);
    (this.emit as (event: string, arg: unknown) => boolean)(method, params);
  }

  /** The caller gave up on this acquire (its call timed out), but the server carried it out. */
  private abandon(result: ResultOf<'lock.acquire'>): void {
    if (result.status === 'granted') this.giveBack(result.grants);
    else this.send('lock.cancel', { ticket: result.ticket }, {}).catch(() => undefined);
  }

  /**
   * Releases locks granted to a request nobody waits for any more (a timed-out acquire), except
   * what the session already held before: those belong to a live handle.
   */
  private giveBack(grants: readonly Grant[]): void {
    const fresh = grants.filter((g) => this.leases.get(g.resource) === undefined);
    const upgraded = grants.filter((g) => {
      const held = this.leases.get(g.resource);
      return held !== undefined && held.fence !== g.fence && held.mode === 'read' && g.mode === 'write';
    });
    if (upgraded.length > 0) {
      this.leases.update(upgraded);
      this.downgradeHeld(upgraded.map((g) => g.resource)).catch((err: unknown) =>
        this.emit('error', toClientError(err)),
      );
    }
    if (fresh.length === 0) return;
    this.leases.add(fresh, this.ttlFor(undefined), false);
    this.releaseHeld(fresh.map((g) => g.resource)).catch((err: unknown) => this.emit('error', toClientError(err)));
  }

  /** A method, not a field read, so that checks after an await are not narrowed away. */
  private isClosed(): boolean {
    return this.current === 'closed';
  }

  private rejectReady(err: LockstepClientError): void {
    const waiting = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of waiting) w.reject(err);
  }

  /** The lease length the server will give, for scheduling renewals. */
  private ttlFor(ttlMs: number | undefined): number {
    const lock = this.helloResult?.lock;
    // The protocol's default lease, assumed only before the first hello says the real one.
    if (lock === undefined) return ttlMs ?? lockSpecs.defaultTtlMs.default;
    return Math.min(lock.maxTtlMs, Math.max(lock.minTtlMs, ttlMs ?? lock.defaultTtlMs));
  }

  private finish(error?: LockstepClientError): void {
    if (this.current === 'closed') return;
    this.current = 'closed';
    this.channel = undefined;
    clearTimeout(this.reconnectTimer);
    this.wake?.();
    this.opening?.abort();
    this.leases.clear();
    const closed = LockstepClientError.local('CLOSED', 'the client is closed');
    this.known.failTickets(error ?? closed);
    this.rejectReady(error ?? closed);
    this.emit('closed', error === undefined ? {} : { error });
  }
}

function toClientError(err: unknown): LockstepClientError {
  return err instanceof LockstepClientError
    ? err
    : new LockstepClientError({
        type: 'INTERNAL_ERROR',
        code: 0,
        message: err instanceof Error ? err.message : String(err),
        retryable: false,
      });
}

function abortable<T>(promise: Promise<T>, signal: AbortSignal, method: string): Promise<T> {
  if (signal.aborted) return Promise.reject(LockstepClientError.local('ABORTED', `${method} aborted`, method));
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(LockstepClientError.local('ABORTED', `${method} aborted`, method));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
