import { v4 as uuidv4 } from 'uuid';
import type { CallableMethod } from './types.ts';

/**
 * The calls the server carries out at most once per `key` (spec: cluster, rule 6): a retry with
 * the same key answers with the first result instead of applying again, on this leader or the
 * next, since the key is stored with the revision. The client gives each of them a key, so that
 * one whose reply was lost with a dropped socket can safely be sent again.
 */
const KEYED: ReadonlySet<CallableMethod> = new Set<CallableMethod>([
  'edit.apply',
  'history.undo',
  'history.redo',
  'checkpoint.restore',
]);

export function isKeyed(method: CallableMethod): boolean {
  return KEYED.has(method);
}

/**
 * The params with a fresh key, unless the caller gave one. uuid rather than crypto.randomUUID,
 * which browsers offer only in secure contexts (a page served over plain http has none).
 */
export function withKey<P>(params: P): P {
  const given = (params as { key?: unknown } | undefined)?.key;
  return given === undefined ? ({ ...params, key: uuidv4() } as P) : params;
}
