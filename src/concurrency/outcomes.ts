import type { LockstepError } from '../protocol/errors.ts';
import type { AcquireResult } from './lock-types.ts';

export type Outcome = { result: AcquireResult } | { error: LockstepError };

/**
 * Outcomes of a session's keyed acquires, so a retried request (whose reply was lost) gets the
 * same answer instead of queueing twice: the first outcome, or, for a request that queued, how its
 * ticket ended (granted, or withdrawn). Bounded: the oldest keys go first.
 */
export class OutcomeCache {
  private readonly byKey = new Map<string, Outcome>();

  constructor(private readonly limit: number) {}

  get(key: string): Outcome | undefined {
    return this.byKey.get(key);
  }

  /** How a keyed request ended, for a key still remembered (an evicted one stays forgotten). */
  update(key: string, outcome: Outcome): void {
    if (this.byKey.has(key)) this.byKey.set(key, outcome);
  }

  forget(key: string): void {
    this.byKey.delete(key);
  }

  set(key: string, outcome: Outcome): void {
    this.byKey.set(key, outcome);
    if (this.byKey.size > this.limit) this.byKey.delete(this.byKey.keys().next().value!);
  }
}
