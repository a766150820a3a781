import type { Role, SessionInfo } from '../concurrency/index.ts';
import type { MethodName, ParamsOf, ResultOf } from '../protocol/methods.ts';
import type { Coordinator } from './coordinator.ts';

// What a method handler is and what it is called with: the types every handler file and the
// dispatch share, kept apart from dispatch so that no handler imports the code that calls it.

/** What a call may ask of the connection it came on. */
export interface CallHooks {
  /** Runs after the reply has been written, so pushes caused by a call never overtake its answer. */
  afterReply(fn: () => void): void;
  /**
   * Charges the session's request rate `units` more requests for a call whose work grows with what
   * it touches (a diff over thousands of nodes is not one ping's worth).
   */
  charge(units: number): void;
}

/** One call of an open session: who makes it, and its connection's hooks. */
export interface CallContext extends CallHooks {
  session: SessionInfo;
}

export interface MethodSpec<M extends MethodName> {
  /** Roles allowed to call it; absent = every role. */
  roles?: readonly Role[];
  /** A promise when the call needs the program store; its reply is written once it settles. */
  handle(c: Coordinator, ctx: CallContext, params: ParamsOf<M>): ResultOf<M> | Promise<ResultOf<M>>;
}

/** Every method but session.hello, which the connection handles before a session exists. */
export type HandlerTable = { [M in Exclude<MethodName, 'session.hello'>]: MethodSpec<M> };
