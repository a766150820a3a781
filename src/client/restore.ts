import type { MethodName, ParamsOf, ResultOf, Topic } from '../protocol/methods.ts';
import type { Grant } from '../protocol/wire.ts';
import type { Channel } from './channel.ts';
import { isLockstepError, type LockstepClientError } from './errors.ts';
import type { Leases } from './leases.ts';
import { reconcile } from './reconcile.ts';
import { byProgram, selector } from './selectors.ts';

export interface RestoreState {
  resumed: boolean;
  /** The hello's `restored`: present on the first resume on a new leader after a failover. */
  restored: Grant[] | undefined;
  sessionId: string;
  leases: Leases;
  /** Lease length assumed for locks the client learns of only now. */
  ttlMs: number;
  topics: ReadonlySet<Topic>;
  watching: Map<string, number[]>;
  lastSeq: number;
  runId: string | undefined;
  timeoutMs: number;
  /** Called with the re-subscription's result as soon as it is read. */
  subscribed(result: ResultOf<'events.subscribe'>): void;
}

/** A held lock the new leader did not give back, with what the client asked for it. */
export interface LostLock {
  grant: Grant;
  ttlMs: number;
  auto: boolean;
  /** Every fence it was held under, which its handles know it by. */
  fences: readonly number[];
}

export interface Restored {
  /** Failures that do not stop the session (a watched function removed meanwhile, ...). */
  errors: LockstepClientError[];
  /** After a failover: the restored locks kept and those given back, and the locks to acquire again. */
  failover?: { kept: Grant[]; released: Grant[]; lost: LostLock[] };
}

/**
 * What a new socket must redo: subscriptions and watches end with every socket, resumed or not.
 * A resumed session's locks are read back, since a reply lost with the old socket may have
 * granted or released some without the client hearing of it.
 */
export async function restoreSession(channel: Channel, s: RestoreState): Promise<Restored> {
  const request = <M extends MethodName>(method: M, params: ParamsOf<M>) =>
    channel.request(method, params, { timeoutMs: s.timeoutMs }) as Promise<ResultOf<M>>;
  const errors: LockstepClientError[] = [];
  const survivable = (err: unknown): LockstepClientError => {
    if (isLockstepError(err) && !isLockstepError(err, 'DISCONNECTED', 'TIMEOUT')) return err;
    throw err;
  };

  let failover: Restored['failover'];
  if (s.resumed && s.restored !== undefined) {
    const plan = reconcile(s.leases.held(), s.restored);
    const lost = plan.reacquire.flatMap((grant) => {
      const terms = s.leases.terms(grant.resource);
      return terms === undefined ? [] : [{ grant, ...terms }];
    });
    s.leases.remove(plan.reacquire.map((g) => g.resource));
    const released: Grant[] = [];
    for (const [program, resources] of byProgram(plan.release.map((g) => g.resource))) {
      try {
        await request('lock.release', selector(program, resources));
        released.push(...plan.release.filter((g) => g.resource.program === program));
      } catch (err) {
        errors.push(survivable(err));
      }
    }
    s.leases.update(plan.kept);
    // A restored lock keeps what was left of its lease, not a fresh one: renew the automatic ones now.
    s.leases.expiring(plan.kept);
    failover = { kept: plan.kept, released, lost };
  } else if (s.resumed) {
    const { agents } = await request('agent.list', {});
    const locks = agents.find((a) => a.sessionId === s.sessionId)?.locks ?? [];
    // A lock the client never heard of was granted by a reply lost with the old socket: its
    // acquire failed DISCONNECTED, nobody holds a handle on it, and it would only keep others out
    // until its lease ran out. Give it back.
    const orphans = locks.filter((g) => s.leases.get(g.resource) === undefined);
    for (const [program, resources] of byProgram(orphans.map((g) => g.resource))) {
      try {
        await request('lock.release', selector(program, resources));
      } catch (err) {
        errors.push(survivable(err));
      }
    }
    s.leases.sync(
      locks.filter((g) => !orphans.includes(g)),
      s.ttlMs,
    );
  }

  if (s.topics.size > 0) {
    try {
      await channel.request(
        'events.subscribe',
        { topics: [...s.topics], since: s.lastSeq, ...(s.runId === undefined ? {} : { runId: s.runId }) },
        { timeoutMs: s.timeoutMs, onResult: (r) => s.subscribed(r as ResultOf<'events.subscribe'>) },
      );
    } catch (err) {
      errors.push(survivable(err));
    }
  }

  for (const [program, functions] of [...s.watching]) {
    let ids = functions;
    while (ids.length > 0) {
      try {
        const r = await request('function.watch', { program, functions: ids });
        s.watching.set(program, r.watching);
        break;
      } catch (err) {
        const e = survivable(err);
        const gone =
          isLockstepError(e, 'NOT_FOUND') && Array.isArray(e.data.functions)
            ? (e.data.functions as number[])
            : undefined;
        ids = gone === undefined || gone.length === 0 ? [] : ids.filter((id) => !gone.includes(id));
        if (gone === undefined) errors.push(e);
      }
    }
    if (ids.length === 0) s.watching.delete(program);
  }
  return failover === undefined ? { errors } : { errors, failover };
}
