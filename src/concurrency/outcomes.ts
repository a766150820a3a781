import type { LockstepError } from '../protocol/errors.ts';
import type { AcquireResult } from './lock-types.ts';

export type Outcome = { result: AcquireResult } | { error: LockstepError };

/** A keyed request as remembered: what it asked for (to spot a key reused for another) and its outcome. */
export interface Remembered {
  request: string;
  outcome: Outcome;
}

/**
 * Outcomes of a session's keyed acquires, so a retried request (whose reply was lost) gets the
 * same answer instead of queueing twice: the first outcome, or, for a request that queued, how its
 * ticket ended (granted, or withdrawn). Bounded: the oldest keys go first.
 */
export class OutcomeCache {
  private readonly byKey = new Map<string, Remembered>();

  constructor(private readonly limit: number) {}

  get(key: string): Remembered | undefined {
    return this.byKey.get(key);
  }

  /** How a keyed request ended, for a key still remembered (an evicted one stays forgotten). */
  update(key: string, outcome: Outcome): void {
    const known = this.byKey.get(key);
    if (known !== undefined) known.outcome = outcome;
  }

  forget(key: string): void {
    this.byKey.delete(key);
  }

  set(key: string, request: string, outcome: Outcome): void {
    this.byKey.set(key, { request, outcome });
    if (this.byKey.size > this.limit) this.byKey.delete(this.byKey.keys().next().value!);
  }
}
