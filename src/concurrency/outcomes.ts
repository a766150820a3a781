import { LockstepError } from '../protocol/errors.ts';
import type { LockMode, Resource } from '../protocol/resource.ts';
import { resourceKey } from '../protocol/resource.ts';
import { KeyReused } from './lock-errors.ts';
import type { AcquireResult, CancelReason, Grant } from './lock-types.ts';
import type { Ticket } from './resource-slot.ts';
import { positionsOf } from './snapshots.ts';

export type Outcome = { result: AcquireResult } | { error: LockstepError };

/** A keyed request as remembered: what it asked for (to spot a key reused for another) and its outcome. */
export interface Remembered {
  request: string;
  outcome: Outcome;
}

/** What an acquire asks for, resources already normalized: the same request in any order is the same. */
export function requestOf(mode: LockMode, wait: boolean, resources: readonly Resource[]): string {
  return `${mode}|${wait}|${resources.map(resourceKey).join(',')}`;
}

/**
 * Outcomes of a session's keyed acquires, so a retried request (whose reply was lost) gets the
 * same answer instead of queueing twice: the first outcome, or, for a request that queued, how its
 * ticket ended (granted, or withdrawn). Bounded: the oldest keys go first.
 */
export class OutcomeCache {
  private readonly byKey = new Map<string, Remembered>();

  constructor(private readonly limit: number) {}

  has(key: string): boolean {
    return this.byKey.has(key);
  }

  /**
   * The answer to a retry: undefined for a key not remembered; the first error thrown again; the
   * first result, except that a ticket still waiting answers with where it stands now, not where
   * it started. Throws KeyReused when the key came with a different request: answering it with the
   * first one's outcome would hand out locks nobody asked for under that key.
   */
  replay(key: string, request: string, waiting: (ticket: string) => Ticket | undefined): AcquireResult | undefined {
    const known = this.byKey.get(key);
    if (known === undefined) return undefined;
    if (known.request !== request) throw new KeyReused(key);
    const first = known.outcome;
    if ('error' in first) throw first.error;
    const ticket = first.result.status === 'queued' ? waiting(first.result.ticket) : undefined;
    return ticket === undefined
      ? first.result
      : { status: 'queued', ticket: ticket.id, positions: positionsOf(ticket) };
  }

  set(key: string, request: string, outcome: Outcome): void {
    this.byKey.set(key, { request, outcome });
    if (this.byKey.size > this.limit) this.byKey.delete(this.byKey.keys().next().value!);
  }

  /** The outcome was undone (a grant its journal refused): a retry asks afresh. */
  forget(key: string): void {
    this.byKey.delete(key);
  }

  /** The reply to the acquire said "queued"; a retry after a lost lock.granted must learn it won. */
  granted(key: string, grants: Grant[]): void {
    this.update(key, { result: { status: 'granted', grants } });
  }

  /**
   * A retry must not wait for a grant that can no longer come. A ticket lost with its connection
   * (resume grace) is forgotten instead: the resumed session's retry queues afresh.
   */
  withdrawn(key: string, ticket: string, reason: CancelReason): void {
    if (reason === 'disconnect') {
      this.byKey.delete(key);
      return;
    }
    this.update(key, {
      error: new LockstepError('NOT_FOUND', `the request with key "${key}" was withdrawn (${reason})`, {
        ticket,
        reason,
      }),
    });
  }

  /** How a keyed request ended, for a key still remembered (an evicted one stays forgotten). */
  private update(key: string, outcome: Outcome): void {
    const known = this.byKey.get(key);
    if (known !== undefined) known.outcome = outcome;
  }
}
