import { METHOD_NAMES } from '../protocol/methods.ts';
import type { CallableMethod, CallOptions, NamespaceName, Namespaces } from './types.ts';

export type Send = (method: CallableMethod, params: unknown, options: CallOptions) => Promise<unknown>;

/** `client.lock`, `client.program`, ...: one method per protocol method of that namespace. */
export function namespace<N extends NamespaceName>(name: N, send: Send): Namespaces[N] {
  const ops: Record<string, (params?: unknown, options?: CallOptions) => Promise<unknown>> = {};
  for (const method of METHOD_NAMES) {
    if (method === 'session.hello' || !method.startsWith(`${name}.`)) continue;
    ops[method.slice(name.length + 1)] = (params, options) => send(method, params, options ?? {});
  }
  return ops as Namespaces[N];
}
