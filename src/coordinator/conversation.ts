import type { SessionInfo } from '../concurrency/index.ts';
import { LockstepError, RpcCode, RpcProtocolError } from '../protocol/errors.ts';
import type { Coordinator, DisconnectReason, Sink } from './coordinator.ts';
import type { CallContext, CallHooks } from './call-context.ts';
import { dispatch, isMethod } from './dispatch.ts';
import { hello } from './session-handlers.ts';

/**
 * One connection's side of the coordinator: the session it speaks for (none until
 * session.hello) and every call it makes. The transport hands it methods and params as they came
 * and gets back a result, or a LockstepError / RpcProtocolError to answer with.
 */
export class Conversation {
  /** The session's call context, built once at hello: calls are the hot path. */
  private ctx: CallContext | undefined;

  constructor(
    private readonly c: Coordinator,
    private readonly sink: Sink,
    private readonly hooks: CallHooks,
    /**
     * true: a hello opened this connection's session (in cluster mode while it is still being
     * recorded: the client said hello in time, however long the journal takes); false: that
     * session could not be recorded and is gone, the connection has none again.
     */
    private readonly onSession: (open: boolean) => void,
  ) {}

  private get session(): SessionInfo | undefined {
    return this.ctx?.session;
  }

  /** Who is speaking, for logs. */
  get who(): { sessionId?: string; name?: string } {
    const session = this.session;
    return session === undefined ? {} : { sessionId: session.id, name: session.name };
  }

  /**
   * The call's result, or a promise of it when the call needs the program store. The promise is
   * handed back as the handler made it, not wrapped: a disconnect waits for that very promise
   * (Coordinator.committing), and the reply and its after-reply work must come first.
   */
  call(method: string, params: unknown): unknown {
    const started = performance.now();
    let result: unknown;
    try {
      result = this.run(method, params);
    } catch (err) {
      this.observe(method, started, err);
      throw err;
    }
    // Only a store call makes closures; the synchronous path (every lock call) allocates none.
    if (result instanceof Promise)
      result.then(
        () => this.observe(method, started, undefined),
        (err: unknown) => this.observe(method, started, err),
      );
    else this.observe(method, started, undefined);
    return result;
  }

  /** Times one call into the request histogram, by method and outcome. */
  private observe(method: string, started: number, err: unknown): void {
    const outcome =
      err === undefined
        ? 'ok'
        : err instanceof LockstepError
          ? err.type
          : err instanceof RpcProtocolError
            ? String(err.code)
            : 'internal';
    const label = isMethod(method) ? method : 'unknown';
    this.c.metrics.requests.observe(label, outcome, (performance.now() - started) / 1000);
  }

  /** The connection is gone, however it went: the session goes with it (see Coordinator.disconnect). */
  disconnect(why: DisconnectReason): void {
    const session = this.session;
    if (session === undefined) return;
    this.ctx = undefined;
    this.c.disconnect(session.id, why, this.sink);
  }

  /** The coordinator closed the connection and has already dealt with the session. */
  forget(): void {
    this.ctx = undefined;
  }

  /** The connection was dropped for not reading what it was sent. */
  countSlowConsumer(): void {
    this.c.metrics.slowConsumers.inc();
  }

  private run(method: string, params: unknown): unknown {
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
      const opened = hello(this.c, params, this.sink);
      this.ctx = { session: opened.session, ...this.hooks };
      this.onSession(true);
      if (opened.recorded === undefined) return opened.result;
      // Cluster: answered once the journal has it; if it cannot be written, a new session never
      // was and a resumed one is dropped again (the agent is told STORE_UNAVAILABLE and may say
      // hello again, or resume again).
      const { session } = opened;
      return opened.recorded.then(
        () => opened.result,
        (err: unknown) => {
          if (this.session === session) {
            this.ctx = undefined;
            this.c.disconnect(session.id, opened.result.resumed === true ? 'dropped' : 'closed', this.sink);
            this.onSession(false);
          }
          throw err;
        },
      );
    }
    const ctx = this.ctx;
    if (ctx === undefined) {
      throw new LockstepError('SESSION_REQUIRED', `call session.hello before ${method}`, { method });
    }
    this.c.sessions.touch(ctx.session.id);
    return dispatch(this.c, ctx, method, params);
  }
}
