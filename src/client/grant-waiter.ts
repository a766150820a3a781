import type { Grant, QueuePosition } from '../protocol/wire.ts';
import { LockstepClientError } from './errors.ts';
import type { QueueUpdate } from './types.ts';

/** What the client tells one acquire() about its request, in the order the server says it. */
export interface TicketWaiter {
  queued(ticket: string, positions: QueuePosition[]): void;
  moved(positions: QueuePosition[]): void;
  /** `previous[i]`: what the session held of grants[i]'s resource before (reentrant or upgraded). */
  granted(grants: Grant[], previous: (Grant | undefined)[]): void;
  failed(err: LockstepClientError): void;
  /** lock.cancel succeeded for this ticket. */
  cancelled(): void;
  /** The ticket went with the socket; the request is to be queued again on the next one. */
  suspend(): void;
  /** Nobody waits any more (settled or aborted): nothing to queue again. */
  readonly done: boolean;
}

export interface GrantWaitOptions<T> {
  method: string;
  signal: AbortSignal | undefined;
  onQueue: ((update: QueueUpdate) => void) | undefined;
  /** Where a throwing onQueue goes: it runs while a reply is being read, which must not be cut short. */
  onError(err: unknown): void;
  cancel(ticket: string): Promise<unknown>;
  /**
   * Gives back locks granted after the caller stopped wanting them: only what the grant added to
   * `previous` (what the session already held is not the aborted request's to give back).
   */
  release(grants: Grant[], previous: (Grant | undefined)[]): Promise<unknown>;
  done(grants: Grant[], ticket: string | undefined): T;
}

/**
 * The promise of one acquire(): resolves on the grant, at once or after queueing; rejects on the
 * server's refusal, wait timeout, withdrawal or a disconnect. Abort withdraws the ticket and only
 * rejects once the server confirmed, so no lock or queue place outlives the rejection.
 */
export function waitForGrant<T>(o: GrantWaitOptions<T>): { waiter: TicketWaiter; promise: Promise<T> } {
  let ticket: string | undefined;
  let aborted = false;
  let settled = false;
  let suspended = false;
  let resolve!: (v: T) => void;
  let reject!: (e: LockstepClientError) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const abortError = () => LockstepClientError.local('ABORTED', 'acquire aborted', o.method);
  const settle = (fn: () => void) => {
    if (settled) return;
    settled = true;
    o.signal?.removeEventListener('abort', onAbort);
    fn();
  };
  const withdraw = (t: string) => {
    // Success arrives as cancelled(); a failure means the ticket already ended (granted, timed out or
    // dropped with the socket), which the other callbacks settle.
    o.cancel(t).catch(() => undefined);
  };
  const onAbort = () => {
    aborted = true;
    // A suspended request has no ticket on any server: nothing to withdraw, no need to wait.
    if (suspended) settle(() => reject(abortError()));
    else if (ticket !== undefined && !settled) withdraw(ticket);
  };
  o.signal?.addEventListener('abort', onAbort, { once: true });
  const report = (update: QueueUpdate) => {
    try {
      o.onQueue?.(update);
    } catch (err) {
      o.onError(err);
    }
  };

  const waiter: TicketWaiter = {
    queued(t, positions) {
      ticket = t;
      suspended = false;
      if (aborted) withdraw(t);
      else report({ ticket: t, positions, initial: true });
    },
    moved(positions) {
      if (!settled && !aborted && ticket !== undefined) report({ ticket, positions, initial: false });
    },
    granted(grants, previous) {
      if (aborted) {
        o.release(grants, previous).catch(() => undefined);
        settle(() => reject(abortError()));
      } else {
        settle(() => resolve(o.done(grants, ticket)));
      }
    },
    failed(err) {
      settle(() => reject(aborted ? abortError() : err));
    },
    cancelled() {
      settle(() =>
        reject(
          aborted
            ? abortError()
            : LockstepClientError.local('CANCELLED', `ticket ${ticket ?? '?'} was cancelled`, o.method, { ticket }),
        ),
      );
    },
    suspend() {
      suspended = true;
      ticket = undefined;
    },
    get done() {
      return settled || aborted;
    },
  };
  return { waiter, promise };
}
