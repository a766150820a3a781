import { isLockstepError, type LockstepClientError } from './errors.ts';

/** Where to try next after a failed attempt, and how long to wait first. */
export interface Hop {
  url: string;
  waitMs: number;
  /** Every listed node failed since the last success: the caller backs off before the next round. */
  roundOver: boolean;
}

/**
 * Which node of a cluster to connect to. A standby refuses the hello with NOT_LEADER naming the
 * leader (go there next, even when it is not in the list) or naming none while there is no leader
 * (wait what it says is left of the lease, then try the next node); a node that cannot be reached
 * is skipped. With one URL (say, a load balancer) a round is that URL and the leader it names.
 */
export class LeaderSearch {
  private index = 0;
  private target: string;
  /** Listed nodes that failed since the last success. */
  private failures = 0;
  /** Leaders followed this round: bounded, so stale names pointing at each other cannot loop. */
  private follows = 0;

  constructor(
    readonly urls: readonly string[],
    /** Cap on a NOT_LEADER's retryAfterMs, so that a long lease cannot outlast the resume grace. */
    private readonly maxWaitMs: number,
  ) {
    if (urls.length === 0) throw new TypeError('no server URL');
    this.target = urls[0] as string;
  }

  /** The node to try now, or the one connected to. */
  get current(): string {
    return this.target;
  }

  connected(): void {
    this.newRound();
  }

  failed(err: LockstepClientError): Hop {
    const notLeader = isLockstepError(err, 'NOT_LEADER');
    const leader = notLeader ? err.data.leader : undefined;
    if (typeof leader === 'string' && leader !== this.target && this.follows < this.urls.length) {
      this.follows++;
      this.target = leader;
      return { url: leader, waitMs: 0, roundOver: false };
    }
    this.failures++;
    this.index = (this.index + 1) % this.urls.length;
    this.target = this.urls[this.index] as string;
    const roundOver = this.failures >= this.urls.length;
    if (roundOver) this.newRound();
    const waitMs = notLeader ? Math.min(this.maxWaitMs, Math.max(0, err.retryAfterMs ?? 0)) : 0;
    return { url: this.target, waitMs, roundOver };
  }

  private newRound(): void {
    this.failures = 0;
    this.follows = 0;
  }
}
