import { EventEmitter } from 'eventemitter3';
import type { ParamsOf, ResultOf } from '../protocol/methods.ts';
import { DEFAULT_PROGRAM, lockSpecs } from '../protocol/limits.ts';
import { NOTIFICATION_NAMES, type NotificationName } from '../protocol/notifications.ts';
import { isPath, type Resource } from '../protocol/resource.ts';
import type { Grant } from '../protocol/wire.ts';
import { DEFAULT_BACKOFF } from './backoff.ts';
import type { Channel } from './channel.ts';
import { type ClientState, Connection } from './connection.ts';
import { isLockstepError, LockstepClientError, toClientError } from './errors.ts';
import { abortable } from './abortable.ts';
import { resolveOptions } from './client-options.ts';
import { waitForGrant } from './grant-waiter.ts';
import { askAgain, isKeyed, Resends, withKey } from './keyed-calls.ts';
import { Leases } from './leases.ts';
import { LockHandle, type LockOwner } from './lock-handle.ts';
import { namespace, type Send } from './namespaces.ts';
import { Resume } from './resume.ts';
import { byProgram, selector } from './selectors.ts';
import { SessionState, type TrackOptions } from './session-state.ts';
import type {
  ArgsOf,
  CallableMethod,
  CallOptions,
  ClientEvents,
  ClientOptions,
  HelloResult,
  Namespaces,
  PathContent,
  QueueUpdate,
} from './types.ts';

export type { ClientState };

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

/**
 * A Lockstep session over one WebSocket, kept across drops: typed calls, typed pushes as events,
 * waiting acquires, lease renewal, and reconnect with backoff that takes the session back when the
 * server's resume grace allows (the connection's life cycle is ./connection.ts).
 */
export class LockstepClient extends EventEmitter<ClientEvents> implements LockOwner, Namespaces {
  /** Every node the client may connect to: `urls`, or `[url]`. */
  readonly urls: readonly string[];
  readonly session: Namespaces['session'];
  readonly agent: Namespaces['agent'];
  readonly lock: Namespaces['lock'];
  readonly program: Namespaces['program'];
  readonly function: Namespaces['function'];
  readonly edit: Namespaces['edit'];
  readonly history: Namespaces['history'];
  readonly checkpoint: Namespaces['checkpoint'];
  readonly events: Namespaces['events'];
  readonly paths: Namespaces['paths'];
  /** Per-call reply timeout unless a call names its own. */
  private readonly callTimeoutMs: number;
  private readonly connection: Connection;
  private readonly leases: Leases;
  /** What the client knows of its session: held locks, tickets, watches, topics. */
  private readonly known: SessionState;
  /** Keyed calls whose reply a drop lost, waiting for the session to be resumed. */
  private readonly resends = new Resends();
  /** The session across a drop of its socket. */
  private readonly resume: Resume;
  /** lock.acquire calls sent and not answered yet (giveBack waits for them). */
  private readonly acquiring = new Set<Promise<void>>();

  /** Connects and says hello; resolves once the session is open. */
  static async connect(options: ClientOptions | string): Promise<LockstepClient> {
    const client = new LockstepClient(typeof options === 'string' ? { url: options } : options);
    await client.connect();
    return client;
  }

  constructor(options: ClientOptions) {
    super();
    const o = resolveOptions(options);
    this.urls = o.urls;
    this.callTimeoutMs = o.callTimeoutMs;
    const { backoff, cluster } = o;
    this.connection = new Connection(
      {
        urls: o.urls,
        name: options.name,
        role: options.role,
        token: options.token,
        WebSocket: o.WebSocket,
        backoff,
        connectTimeoutMs: o.connectTimeoutMs,
        callTimeoutMs: o.callTimeoutMs,
        maxNotLeaderWaitMs: (backoff ?? DEFAULT_BACKOFF).maxDelayMs,
      },
      {
        push: (method, params) => this.onPush(method, params),
        dropped: (drop) => this.resume.dropped(drop),
        started: (channel, s) => this.resume.started(channel, s),
        finished: (error, byClose) => this.resume.finished(error, byClose),
      },
      this,
    );
    this.leases = new Leases(
      {
        renew: async (program, resources, ttlMs) =>
          this.emit('renewed', (await this.send('lock.renew', { ...selector(program, resources), ttlMs }, {})).grants),
        failed: (error, resources) => this.emit('renewFailed', { error, resources }),
        lost: (lock) => this.tell('lost', lock),
      },
      options.renewFraction ?? 0.5,
    );
    this.known = new SessionState(this.leases, {
      ttlFor: (ttlMs) => this.ttlFor(ttlMs),
      autoRenew: options.autoRenew ?? false,
      abandoned: (grants) => this.abandoned(grants),
    });
    this.resume = new Resume({
      leases: this.leases,
      known: this.known,
      resends: this.resends,
      tell: (event, ...args) => this.tell(event, ...args),
      cluster,
      timeoutMs: this.callTimeoutMs,
      acquire: (channel, params, o) =>
        this.requestOn(channel, 'lock.acquire', params, o, Date.now() + this.callTimeoutMs),
    });
    const send: Send = (method, params, o) => this.send(method, params as never, o);
    this.session = namespace('session', send);
    this.agent = namespace('agent', send);
    this.lock = namespace('lock', send);
    this.program = namespace('program', send);
    this.function = namespace('function', send);
    this.edit = namespace('edit', send);
    this.history = namespace('history', send);
    this.checkpoint = namespace('checkpoint', send);
    this.events = namespace('events', send);
    this.paths = namespace('paths', send);
  }

  get state(): ClientState {
    return this.connection.state;
  }

  /** The node connected to, or the one being tried. */
  get url(): string {
    return this.connection.url;
  }

  /** The last hello result (session id, limits, lock defaults); undefined before the first. */
  get hello(): HelloResult | undefined {
    return this.connection.hello;
  }

  get sessionId(): string | undefined {
    return this.connection.hello?.sessionId;
  }

  /** Locks this session holds, as the server has told it (suspended ones too: see `suspended`). */
  held(): Grant[] {
    return this.leases.held();
  }

  heldGrant(resource: Resource): Grant | undefined {
    return this.leases.get(resource);
  }

  /** Whether the lock granted under `fence` (or an upgrade of it) is held now, and not suspended. */
  heldUnder(resource: Resource, fence: number): boolean {
    return !this.leases.suspended && this.leases.grantUnder(resource, fence) !== undefined;
  }

  /**
   * Whether the locks are in doubt: the socket dropped and the session may be resumed. Each is then
   * held again or lost (the `suspended` and `lost` events).
   */
  get suspended(): boolean {
    return this.leases.suspended;
  }

  connect(): Promise<HelloResult> {
    return this.connection.connect();
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
      release: (grants, previous) => this.giveBack(grants, previous),
      done: (grants, ticket) => new LockHandle(this, this.leases, program, grants, ticket),
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

  /**
   * Runs fn under the locks and releases them however fn ends (a failed release is emitted as
   * 'error'). `lock.signal` aborts if a lock is lost while fn runs: fn should stop, as anything it
   * read under the lock may be stale and its edits under `lock.fences` are refused.
   */
  async withLocks<T>(request: AcquireOptions, fn: (lock: LockHandle) => T | Promise<T>): Promise<T> {
    const lock = await this.acquire(request);
    try {
      return await fn(lock);
    } finally {
      await lock.release().catch((err: unknown) => this.emit('error', toClientError(err)));
    }
  }

  /**
   * Releases what of `resources` is still held, one call per program. `contents` (the files changed
   * under path write locks among them) go with the call of the program whose locks are released.
   */
  async releaseHeld(
    resources: readonly Resource[],
    contents: readonly PathContent[] = [],
    retried = false,
  ): Promise<Resource[]> {
    const held = resources.filter((r) => this.leases.get(r) !== undefined);
    const released: Resource[] = [];
    try {
      for (const [program, rs] of byProgram(held)) {
        const params = {
          ...selector(program, rs),
          ...(contents.length > 0 && rs.some(isPath) ? { contents: [...contents] } : {}),
        };
        released.push(...(await this.send('lock.release', params, {})).released);
      }
      return released;
    } catch (err) {
      if (isLockstepError(err, 'NOT_HELD') && Array.isArray(err.data.resources) && err.data.resources.length > 0) {
        // An expiry crossed the release: those are lost (SessionState.afterError); release the rest.
        return [...released, ...(await this.releaseHeld(resources, contents, retried))];
      }
      if (isLockstepError(err, 'DISCONNECTED') && !retried && !this.connection.isClosed())
        return [...released, ...(await this.releaseHeld(resources, contents, true))];
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
  close(): Promise<void> {
    return this.connection.close(this.leases.size > 0);
  }

  /**
   * Gives back locks granted to a request nobody waits for any more (aborted, timed out, or a
   * ticket the client no longer knows), leaving what the session held before as it was: a new lock
   * is released, an upgrade of a held read lock is downgraded back to read, and a reentrant grant
   * of a lock already held (same fence) is left alone. `previous[i]`: what was held of grants[i].
   */
  private async giveBack(grants: readonly Grant[], previous: readonly (Grant | undefined)[]): Promise<void> {
    // An acquire of the same resource sent before this release would reach the server is answered
    // there as reentrant, with this very lock, which the release would then end under its new
    // handle. So the acquires in flight are let finish first, and a lock one of them was answered
    // with is that one's now, not this grant's to give back.
    const claims = grants.map((g) => this.leases.claims(g.resource));
    while (this.acquiring.size > 0) await Promise.allSettled([...this.acquiring]);
    const release: Resource[] = [];
    const downgrade: Resource[] = [];
    grants.forEach((g, i) => {
      const before = previous[i];
      if (this.leases.claims(g.resource) !== claims[i]) return;
      if (before === undefined) release.push(g.resource);
      else if (before.fence !== g.fence && before.mode === 'read' && g.mode === 'write') downgrade.push(g.resource);
    });
    try {
      if (release.length > 0) await this.releaseHeld(release);
      const still = downgrade.filter((r) => this.leases.get(r) !== undefined);
      if (still.length > 0) await this.downgradeHeld(still);
    } catch (err) {
      this.emit('error', toClientError(err));
    }
  }

  /** Grants the client was not waiting for: recorded as held (so a release is sent), then given back. */
  private abandoned(grants: readonly Grant[]): void {
    const previous = grants.map((g) => this.leases.get(g.resource));
    this.leases.update(grants);
    this.leases.add(
      grants.filter((_, i) => previous[i] === undefined),
      this.ttlFor(undefined),
      false,
      false,
    );
    void this.giveBack(grants, previous);
  }

  private async send<M extends CallableMethod>(
    method: M,
    params: ParamsOf<M> | undefined,
    o: SendOptions,
  ): Promise<ResultOf<M>> {
    const timeoutMs = o.timeoutMs ?? this.callTimeoutMs;
    const deadline = Date.now() + timeoutMs;
    const keyed = isKeyed(method);
    const sent = keyed ? withKey(params) : params;
    const request = (channel: Channel) => this.requestOn(channel, method, sent, o, deadline);
    const call = async () => {
      const channel = await this.connection.whenOpen(timeoutMs, method, o.openSignal);
      if (this.connection.isClosed())
        throw LockstepClientError.local('CLOSED', `the client is closed: ${method} was not sent`, method);
      const sessionId = this.connection.hello?.sessionId;
      try {
        return await request(channel);
      } catch (err) {
        if (!keyed) throw err;
        return askAgain(err, {
          method,
          request,
          connection: this.connection,
          resends: this.resends,
          sessionId,
          deadline,
          signal: o.signal,
        });
      }
    };
    return o.signal === undefined ? call() : abortable(call(), o.signal, method);
  }

  /** One call on `channel`, what it says of the session's locks and tickets read as its reply is. */
  private async requestOn<M extends CallableMethod>(
    channel: Channel,
    method: M,
    params: ParamsOf<M> | undefined,
    o: SendOptions,
    deadline: number,
  ): Promise<ResultOf<M>> {
    const maxBytes = this.connection.hello?.limits.maxMessageBytes;
    const request = channel.request(method, params, {
      timeoutMs: Math.max(1, deadline - Date.now()),
      onResult: (result) => this.known.afterResult(method, params, result, o),
      ...(maxBytes === undefined ? {} : { maxBytes }),
      ...(method === 'lock.acquire'
        ? { onLate: (result: unknown) => this.abandon(result as ResultOf<'lock.acquire'>) }
        : {}),
    });
    if (method === 'lock.acquire') {
      const answered = request.then(
        () => undefined,
        () => undefined,
      );
      this.acquiring.add(answered);
      void answered.then(() => this.acquiring.delete(answered));
    }
    try {
      return (await request) as ResultOf<M>;
    } catch (err) {
      this.known.afterError(method, err);
      throw err;
    }
  }

  private onPush(method: string, params: unknown): void {
    if (!(NOTIFICATION_NAMES as string[]).includes(method)) return;
    this.known.afterPush(method as NotificationName, params);
    (this.emit as (event: string, arg: unknown) => boolean)(method, params);
  }

  /**
   * Emits to the application's listeners. One that throws must not cut short what the client is
   * doing (a resume, a reply being read): its error goes to 'error' instead.
   */
  private tell<E extends keyof ClientEvents>(event: E, ...args: ClientEvents[E]): void {
    try {
      (this.emit as (event: E, ...args: ClientEvents[E]) => boolean)(event, ...args);
    } catch (err) {
      this.emit('error', toClientError(err));
    }
  }

  /** The caller gave up on this acquire (its call timed out), but the server carried it out. */
  private abandon(result: ResultOf<'lock.acquire'>): void {
    if (result.status === 'granted') this.abandoned(result.grants);
    else this.send('lock.cancel', { ticket: result.ticket }, {}).catch(() => undefined);
  }

  /** The lease length the server will give, for scheduling renewals. */
  private ttlFor(ttlMs: number | undefined): number {
    const lock = this.connection.hello?.lock;
    // The protocol's default lease, assumed only before the first hello says the real one.
    if (lock === undefined) return ttlMs ?? lockSpecs.defaultTtlMs.default;
    return Math.min(lock.maxTtlMs, Math.max(lock.minTtlMs, ttlMs ?? lock.defaultTtlMs));
  }
}
