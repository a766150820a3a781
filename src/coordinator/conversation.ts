import type { SessionInfo } from '../concurrency/index.ts';
import { LockstepError, RpcCode, RpcProtocolError } from '../protocol/errors.ts';
import type { Coordinator, DisconnectReason, Sink } from './coordinator.ts';
import { dispatch, isMethod } from './dispatch.ts';
import { hello } from './session-handlers.ts';

/** What a call may ask of the connection it came on. */
export interface CallHooks {
  /** Runs after the reply has been written, so pushes caused by a call never overtake its answer. */
  afterReply(fn: () => void): void;
  /** Charges the connection's request rate for a call worth more than one request. */
  charge(units: number): void;
}

/**
 * One connection's side of the coordinator: the session it speaks for (none until
 * session.hello) and every call it makes. The transport hands it methods and params as they came
 * and gets back a result, or a LockstepError / RpcProtocolError to answer with.
 */
export class Conversation {
  private session: SessionInfo | undefined;

  constructor(
    private readonly c: Coordinator,
    private readonly sink: Sink,
    private readonly onSession: () => void,
  ) {}

  /** Who is speaking, for logs. */
  get who(): { sessionId?: string; name?: string } {
    return this.session === undefined ? {} : { sessionId: this.session.id, name: this.session.name };
  }

  call(method: string, params: unknown, hooks: CallHooks): unknown {
    const started = performance.now();
    let outcome = 'ok';
    try {
      return this.run(method, params, hooks);
    } catch (err) {
      outcome =
        err instanceof LockstepError ? err.type : err instanceof RpcProtocolError ? String(err.code) : 'internal';
      throw err;
    } finally {
      const label = isMethod(method) ? method : 'unknown';
      this.c.metrics.requests.observe({ method: label, outcome }, (performance.now() - started) / 1000);
    }
  }

  /** The connection is gone, however it went: the session goes with it (see Coordinator.disconnect). */
  disconnect(why: DisconnectReason): void {
    const session = this.session;
    if (session === undefined) return;
    this.session = undefined;
    this.c.disconnect(session.id, why, this.sink);
  }

  /** The coordinator closed the connection and has already dealt with the session. */
  forget(): void {
    this.session = undefined;
  }

  /** The connection was dropped for not reading what it was sent. */
  countSlowConsumer(): void {
    this.c.metrics.slowConsumers.inc();
  }

  private run(method: string, params: unknown, hooks: CallHooks): unknown {
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
      this.session = opened.session;
      this.onSession();
      return opened.result;
    }
    const session = this.session;
    if (session === undefined) {
      throw new LockstepError('SESSION_REQUIRED', `call session.hello before ${method}`, { method });
    }
    this.c.sessions.touch(session.id);
    return dispatch(this.c, { session, ...hooks }, method, params);
  }
}
