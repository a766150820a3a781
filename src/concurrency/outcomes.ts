import type { LockstepError } from '../protocol/errors.ts';
import type { AcquireResult } from './lock-types.ts';

export type Outcome = { result: AcquireResult } | { error: LockstepError };

/**
 * First outcomes of a session's keyed acquires, so a retried request (whose reply was lost) gets
 * the same answer instead of queueing twice. Bounded: the oldest keys go first.
 */
export class OutcomeCache {
  private readonly byKey = new Map<string, Outcome>();

  constructor(private readonly limit: number) {}

  get(key: string): Outcome | undefined {
    return this.byKey.get(key);
  }

  set(key: string, outcome: Outcome): void {
    this.byKey.set(key, outcome);
    if (this.byKey.size > this.limit) this.byKey.delete(this.byKey.keys().next().value!);
  }
}
