import type { MethodName } from './methods.ts';
import { isStorable } from './text.ts';

// Plain checks for the params of the calls an agent makes most (lock.acquire, release, renew,
// session.ping), written out once instead of walking the zod schema on every call. Each accepts
// only params its method's schema accepts, and unchanged by it (these schemas add no defaults and
// transform nothing); anything else goes to the schema, which also words the error.
// test/protocol/fast-params.test.ts holds them to that.

type Check = (p: Record<string, unknown>) => boolean;

const PROGRAM_NAME = /^[A-Za-z0-9_.-]+$/;

const optional = (v: unknown, ok: (v: unknown) => boolean) => v === undefined || ok(v);
const isBoolean = (v: unknown) => typeof v === 'boolean';
const isPositiveInt = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
const isProgram = (v: unknown) => typeof v === 'string' && v.length >= 1 && v.length <= 64 && PROGRAM_NAME.test(v);
/** Text as the schemas' Text(min, max) takes it (text.ts). */
const isText = (min: number, max: number) => (v: unknown) =>
  typeof v === 'string' && v.length >= min && v.length <= max && isStorable(v);
const isFunctionIds = (v: unknown) => Array.isArray(v) && v.length <= 1000 && v.every(isPositiveInt);

/** Own keys all among `keys`, and each present one passing its check. */
function strict(checks: Record<string, (v: unknown) => boolean>): Check {
  return (p) => {
    for (const key in p) {
      if (!Object.hasOwn(checks, key) || !optional(p[key], checks[key]!)) return false;
    }
    return true;
  };
}

const selector = { program: isProgram, functions: isFunctionIds, structure: isBoolean };
/** The refinement of every selector: at least one function, or the structure. */
const namesSomething: Check = (p) => (Array.isArray(p.functions) && p.functions.length > 0) || p.structure === true;

const acquire = strict({
  ...selector,
  mode: (v) => v === 'read' || v === 'write',
  ttlMs: isPositiveInt,
  description: isText(0, 1024),
  wait: isBoolean,
  waitTimeoutMs: isPositiveInt,
  key: isText(1, 128),
});
const select = strict(selector);
const renew = strict({ ...selector, ttlMs: isPositiveInt });
const empty = strict({});

export const fastParams: Partial<Record<MethodName, Check>> = {
  'session.ping': empty,
  'lock.acquire': (p) => p.mode !== undefined && acquire(p) && namesSomething(p),
  'lock.release': (p) => select(p) && namesSomething(p),
  'lock.renew': (p) => renew(p) && namesSomething(p),
};

/** The params as they are, when they pass the method's plain check; undefined otherwise. */
export function fastParse(method: MethodName, raw: unknown): Record<string, unknown> | undefined {
  const check = fastParams[method];
  if (check === undefined || raw === null || typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  if (Object.getPrototypeOf(raw) !== Object.prototype) return undefined;
  const p = raw as Record<string, unknown>;
  return check(p) ? p : undefined;
}
