import type { Role, SessionInfo } from '../concurrency/index.ts';
import { LockstepError, RpcCode, RpcProtocolError } from '../protocol/errors.ts';
import { fastParse } from '../protocol/fast-params.ts';
import { methods, type MethodName, type ParamsOf, type ResultOf } from '../protocol/methods.ts';
import type { Coordinator } from './coordinator.ts';
import { handlers } from './handlers.ts';

export interface CallContext {
  session: SessionInfo;
  /** Runs after the reply has been written, so pushes caused by a call never overtake its answer. */
  afterReply(fn: () => void): void;
  /**
   * Charges the session's request rate `units` more requests for a call whose work grows with what
   * it touches (a diff over thousands of nodes is not one ping's worth).
   */
  charge(units: number): void;
}

export interface MethodSpec<M extends MethodName> {
  /** Roles allowed to call it; absent = every role. */
  roles?: readonly Role[];
  /** A promise when the call needs the program store; its reply is written once it settles. */
  handle(c: Coordinator, ctx: CallContext, params: ParamsOf<M>): ResultOf<M> | Promise<ResultOf<M>>;
}

export type HandlerTable = { [M in Exclude<MethodName, 'session.hello'>]: MethodSpec<M> };

/** Looked up twice a call (to run it, and to label its timing): a Set is the cheapest lookup. */
const METHOD_NAMES: ReadonlySet<string> = new Set(Object.keys(methods));

export function isMethod(name: string): name is MethodName {
  return METHOD_NAMES.has(name);
}

/**
 * Runs one call of an open session: role, then params schema, then the handler. Throws
 * LockstepError or RpcProtocolError; the transport turns either into a JSON-RPC error.
 */
export function dispatch(
  c: Coordinator,
  ctx: CallContext,
  method: Exclude<MethodName, 'session.hello'>,
  raw: unknown,
): unknown {
  const spec = handlers[method] as MethodSpec<typeof method>;
  if (spec.roles !== undefined && !spec.roles.includes(ctx.session.role)) {
    throw new LockstepError('FORBIDDEN', `a session with role "${ctx.session.role}" may not call ${method}`, {
      method,
      role: ctx.session.role,
    });
  }
  const params = validate(method, raw);
  return spec.handle(c, ctx, params as never);
}

export function validate<M extends MethodName>(method: M, raw: unknown): ParamsOf<M> {
  const fast = fastParse(method, raw ?? {});
  if (fast !== undefined) return fast as ParamsOf<M>;
  const parsed = methods[method].params.safeParse(raw ?? {});
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new RpcProtocolError(
      RpcCode.INVALID_PARAMS,
      `Invalid params for ${method}: ${first ? `${first.path.join('.') || '(params)'}: ${first.message}` : 'invalid'}`,
      {
        issues: parsed.error.issues.map((i) => ({ path: i.path, message: i.message, code: i.code })),
      },
    );
  }
  return parsed.data as ParamsOf<M>;
}
