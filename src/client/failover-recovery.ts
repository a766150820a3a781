import type { ParamsOf } from '../protocol/methods.ts';
import type { Resource } from '../protocol/resource.ts';
import type { Grant } from '../protocol/wire.ts';
import { type LockstepClientError, toClientError } from './errors.ts';
import { type TicketWaiter, waitForGrant } from './grant-waiter.ts';
import type { LostLock, Restored } from './restore.ts';
import { selector } from './selectors.ts';
import type { SuspendedTicket } from './session-state.ts';
import type { FailoverInfo, HelloResult } from './types.ts';

/** What recovery needs of the client: its calls, its leases, its events. */
export interface RecoveryHooks {
  /** lock.acquire through the client, tracked as any of its acquires is. */
  acquire(request: ParamsOf<'lock.acquire'>, o: { autoRenew: boolean; waiter: TicketWaiter }): Promise<unknown>;
  cancel(ticket: string): Promise<unknown>;
  giveBack(grants: readonly Grant[], previous: readonly (Grant | undefined)[]): Promise<void>;
  /** The new grant carries on the old one, known to its handles by these fences. */
  carryOn(resource: Resource, fences: readonly number[]): void;
  error(err: LockstepClientError): void;
  failover(info: FailoverInfo): void;
}

export type FailoverStart = NonNullable<Restored['failover']> & { from: string; to: string; hello: HelloResult };

type Reacquired = { grants: Grant[] } | { lost: Resource[] };

/**
 * Runs once the resumed session is open (its calls wait for that): acquires again what a failover
 * lost, then queues again what was waiting, in the order it was asked for, so that nothing this
 * client asked for later overtakes it. The `failover` event follows once every re-acquire ended.
 */
export async function recover(
  hooks: RecoveryHooks,
  failover: FailoverStart | undefined,
  waiting: readonly SuspendedTicket[],
): Promise<void> {
  const outcomes: Promise<Reacquired>[] = [];
  for (const group of groupLost(failover?.lost ?? [])) outcomes.push((await reacquire(hooks, group)).outcome);
  for (const t of waiting.filter((w) => !w.waiter.done))
    await hooks
      .acquire(t.request, { autoRenew: t.auto, waiter: t.waiter })
      .catch((err: unknown) => t.waiter.failed(toClientError(err)));
  if (failover === undefined) return;
  const settled = await Promise.all(outcomes);
  hooks.failover({
    from: failover.from,
    to: failover.to,
    restored: failover.hello.restored ?? [],
    released: failover.released,
    reacquired: settled.flatMap((o) => ('grants' in o ? o.grants : [])),
    lost: settled.flatMap((o) => ('lost' in o ? o.lost : [])),
  });
}

/**
 * Queues for locks lost in a failover, asking for them as they were asked for (mode, lease,
 * automatic renewal); resolves once queued or granted, with the outcome to come. The new
 * grant carries on the old one: its handles hold it and name its new fence.
 */
async function reacquire(hooks: RecoveryHooks, group: LostLock[]): Promise<{ outcome: Promise<Reacquired> }> {
  const first = group[0] as LostLock;
  const program = first.grant.resource.program;
  const resources = group.map((l) => l.grant.resource);
  const { waiter, promise } = waitForGrant({
    method: 'lock.acquire',
    signal: undefined,
    onQueue: undefined,
    onError: (err) => hooks.error(toClientError(err)),
    cancel: (ticket) => hooks.cancel(ticket),
    release: (grants, previous) => hooks.giveBack(grants, previous),
    done: (grants) => {
      for (const l of group) hooks.carryOn(l.grant.resource, l.fences);
      return grants;
    },
  });
  await hooks
    .acquire(
      { ...selector(program, resources), mode: first.grant.mode, ttlMs: first.ttlMs, wait: true },
      { autoRenew: first.auto, waiter },
    )
    .catch((err: unknown) => waiter.failed(toClientError(err)));
  return {
    outcome: promise.then(
      (grants) => ({ grants }),
      (err: unknown) => {
        hooks.error(toClientError(err));
        return { lost: resources };
      },
    ),
  };
}

/** Lost locks that one acquire can ask for again: one program, mode, lease and renewal. */
function groupLost(lost: readonly LostLock[]): LostLock[][] {
  const groups = new Map<string, LostLock[]>();
  for (const l of lost) {
    const key = [l.grant.resource.program, l.grant.mode, l.ttlMs, l.auto].join('\u0000');
    groups.set(key, [...(groups.get(key) ?? []), l]);
  }
  return [...groups.values()];
}
