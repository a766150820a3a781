import type { MethodName, ParamsOf, ResultOf, Topic } from '../protocol/methods.ts';
import type { Channel } from './channel.ts';
import { isLockstepError, type LockstepClientError } from './errors.ts';
import type { Leases } from './leases.ts';
import { byProgram, selector } from './selectors.ts';

export interface RestoreState {
  resumed: boolean;
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

export interface Restored {
  /** Failures that do not stop the session (a watched function removed meanwhile, ...). */
  errors: LockstepClientError[];
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

  if (s.resumed) {
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
  return { errors };
}
