import { RpcCode, RpcProtocolError } from '../protocol/errors.ts';
import { fastParse } from '../protocol/fast-params.ts';
import { methods, type MethodName, type ParamsOf } from '../protocol/methods.ts';

/**
 * A method's params as its schema reads them (the hot calls' common shapes by plain checks,
 * src/protocol/fast-params.ts), or -32602 naming the first issue's path.
 */
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
