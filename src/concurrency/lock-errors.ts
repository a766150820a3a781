import { LockstepError } from '../protocol/errors.ts';
import type { Blocker } from './lock-types.ts';

// The lock core's refusals that carry data the wire states differently: the coordinator formats
// them (ISO times, JSON-RPC codes), so the core keeps epoch milliseconds and plain values.

/** LOCK_DENIED: the blockers of each resource not grantable now, their leases in epoch ms. */
export class LockDenied extends LockstepError {
  constructor(
    message: string,
    readonly blockers: Blocker[],
    retryAfterMs: number | undefined,
  ) {
    super('LOCK_DENIED', message, { blockers }, retryAfterMs);
  }
}

/** An idempotency key the session already used for a different request: the caller's mistake. */
export class KeyReused extends Error {
  constructor(readonly key: string) {
    super(`key "${key}" was already used for a different request`);
    this.name = 'KeyReused';
  }
}
