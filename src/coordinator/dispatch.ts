import { LockstepError } from '../protocol/errors.ts';
import { methods, type MethodName } from '../protocol/methods.ts';
import type { CallContext, MethodSpec } from './call-context.ts';
import type { Coordinator } from './coordinator.ts';
import { handlers } from './handlers.ts';
import { validate } from './validate.ts';

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
