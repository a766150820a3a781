import type { MethodName, ParamsOf, ResultOf } from '../protocol/methods.ts';
import type { Grant } from '../protocol/wire.ts';
import type { Channel } from './channel.ts';
import type { Drop, SessionStart } from './connection.ts';
import { isLockstepError, LockstepClientError, toClientError } from './errors.ts';
import type { Resends } from './keyed-calls.ts';
import type { Leases } from './leases.ts';
import { type LockOutcome, settleLocks } from './resume-plan.ts';
import { byProgram, selector } from './selectors.ts';
import type { SessionState, TrackOptions } from './session-state.ts';
import type { ClientEvents } from './types.ts';

export type Tell = <E extends keyof ClientEvents>(event: E, ...args: ClientEvents[E]) => void;

/** What the resume works on: the client's own state, and how the client makes a tracked call. */
export interface ResumeParts {
  leases: Leases;
  known: SessionState;
  resends: Resends;
  /** Emits to the application's listeners (one that throws goes to 'error', never into the resume). */
  tell: Tell;
  /** Several nodes: any drop may be a failover, so waiting acquires wait to be queued again. */
  cluster: boolean;
  timeoutMs: number;
  /** lock.acquire on `channel`, its result tracked as every acquire of the client is. */
  acquire(channel: Channel, params: ParamsOf<'lock.acquire'>, o: TrackOptions): Promise<unknown>;
}

/**
 * The session across a drop of its socket, in the order it happens (docs/cluster-failover.md,
 * "With the SDK"): dropped() when the socket goes, then the connection finds the leader and says
 * hello with `resume` (./connection.ts), then started() on the new socket, before any waiting call
 * goes through. The decisions are pure (./resume-plan.ts).
 */
export class Resume {
  /** What the session held when its socket dropped: sessionLost names it. */
  private heldAtDrop: Grant[] = [];

  constructor(private readonly p: ResumeParts) {}

  /** 1. The socket dropped: the locks are suspended (or lost), and the queued tickets gone. */
  dropped(d: Drop): void {
    const { leases, known, tell } = this.p;
    this.heldAtDrop = leases.held();
    if (d.resumable) {
      leases.suspend();
      tell('suspended', { locks: this.heldAtDrop });
    } else {
      // Without resume grace the server released everything with the socket; without a reconnect
      // the client never comes back for it.
      leases.lose(
        this.heldAtDrop.map((g) => g.resource),
        'session-lost',
      );
    }
    // The server withdrew every queued ticket with the socket. A drop that may be a failover keeps
    // the acquire() calls waiting, to queue them again on the resumed session; one server's drop
    // fails them, as it always has.
    if (d.reconnect && (this.p.cluster || d.notLeader)) known.suspendTickets();
    else known.failTickets(d.error);
  }

  /**
   * 2. A session is up on a new socket (`channel`, not yet open to other calls). On the first
   * connect there is nothing to carry over.
   */
  async started(channel: Channel, s: SessionStart): Promise<void> {
    if (!s.reconnect) return;
    const { leases, known, resends, tell } = this.p;
    const errors: LockstepClientError[] = [];
    let outcome: (LockOutcome & { released: Grant[] }) | undefined;

    if (s.resumed) {
      // 3. What the session holds now: a new leader says so in the hello (with why it kept back
      //    the others); the same server is asked, since a reply lost with the socket may have
      //    granted, renewed or released a lock without the client hearing of it.
      const given = s.hello.restored ?? (await this.listed(channel, s.hello.sessionId));
      // 4. Decided: held again, given back, lost (and why).
      const plan = settleLocks(leases.believed(), given, s.hello.notRestored, Date.now());
      // 5. What the client does not believe it holds is given back before anything else goes on.
      const released = await this.release(channel, plan.release, errors);
      // 6. The handles: held again, or lost (their signals abort, `lost` for each).
      for (const l of plan.lost) leases.lose([l.resource], l.reason);
      leases.settle(plan.kept);
      outcome = { ...plan, released };
      // 7. Waiting acquire() calls queued again, in the order they were made, ahead of anything
      //    the client asks for from now on.
      for (const t of known.takeSuspended().filter((w) => !w.waiter.done))
        this.p
          .acquire(channel, t.request, { autoRenew: t.auto, waiter: t.waiter })
          .catch((err: unknown) => t.waiter.failed(toClientError(err)));
      // 8. Edits, undos, redos and restores whose reply the drop lost, sent again with their key
      //    and the params (fences) they were first sent with.
      resends.resend(channel, s.hello.sessionId);
    } else if (s.previous !== undefined) {
      // The old session could not be taken back: its locks, tickets and unanswered edits went with it.
      const locks = this.heldAtDrop;
      leases.lose(
        leases.held().map((g) => g.resource),
        'session-lost',
      );
      leases.settle([]);
      known.failTickets(
        LockstepClientError.local('DISCONNECTED', 'the session was lost while waiting for the lock', 'lock.acquire'),
      );
      resends.fail();
      tell('sessionLost', { previousSessionId: s.previous.sessionId, locks });
    }

    // 9. Subscriptions and watches end with every socket, resumed or not.
    await this.resubscribe(channel, errors);
    await this.rewatch(channel, errors);

    // 10. What happened.
    for (const err of errors) tell('error', err);
    if (outcome !== undefined && s.hello.restored !== undefined)
      tell('failover', {
        from: s.previousUrl ?? s.url,
        to: s.url,
        restored: s.hello.restored,
        released: outcome.released,
        lost: outcome.lost,
      });
  }

  /** The client is closed for good (`byClose`: by close(), which released what it could). */
  finished(error: LockstepClientError, byClose: boolean): void {
    const { leases, known, resends } = this.p;
    if (!byClose)
      leases.lose(
        leases.held().map((g) => g.resource),
        'session-lost',
      );
    leases.clear();
    known.failTickets(error);
    resends.close();
  }

  private request<M extends MethodName>(channel: Channel, method: M, params: ParamsOf<M>): Promise<ResultOf<M>> {
    return channel.request(method, params, { timeoutMs: this.p.timeoutMs }) as Promise<ResultOf<M>>;
  }

  private async listed(channel: Channel, sessionId: string): Promise<Grant[]> {
    const { agents } = await this.request(channel, 'agent.list', {});
    return agents.find((a) => a.sessionId === sessionId)?.locks ?? [];
  }

  private async release(channel: Channel, grants: readonly Grant[], errors: LockstepClientError[]): Promise<Grant[]> {
    const released: Grant[] = [];
    for (const [program, resources] of byProgram(grants.map((g) => g.resource))) {
      try {
        await this.request(channel, 'lock.release', selector(program, resources));
        released.push(...grants.filter((g) => g.resource.program === program));
      } catch (err) {
        errors.push(survivable(err));
      }
    }
    return released;
  }

  private async resubscribe(channel: Channel, errors: LockstepClientError[]): Promise<void> {
    const { known, tell } = this.p;
    if (known.topics.size === 0) return;
    const since = known.lastSeq;
    try {
      await channel.request(
        'events.subscribe',
        { topics: [...known.topics], since, ...(known.runId === undefined ? {} : { runId: known.runId }) },
        {
          timeoutMs: this.p.timeoutMs,
          // Runs as the reply is read, before the replayed events behind it reach the app, so a
          // gap is announced before anything that follows it.
          onResult: (result) => {
            const r = result as ResultOf<'events.subscribe'>;
            // After a gap the stream restarts from the server's seq.
            known.lastSeq = r.truncated ? r.seq : Math.max(known.lastSeq, r.seq);
            known.runId = r.runId;
            if (r.truncated) tell('resync', { topics: r.topics, since });
          },
        },
      );
    } catch (err) {
      errors.push(survivable(err));
    }
  }

  private async rewatch(channel: Channel, errors: LockstepClientError[]): Promise<void> {
    const { watching } = this.p.known;
    for (const [program, functions] of [...watching]) {
      let ids = functions;
      while (ids.length > 0) {
        try {
          const r = await this.request(channel, 'function.watch', { program, functions: ids });
          watching.set(program, r.watching);
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
      if (ids.length === 0) watching.delete(program);
    }
  }
}

/** A failure that does not stop the session (a watched function removed meanwhile, ...); a drop does. */
function survivable(err: unknown): LockstepClientError {
  if (isLockstepError(err) && !isLockstepError(err, 'DISCONNECTED', 'TIMEOUT')) return err;
  throw err;
}
