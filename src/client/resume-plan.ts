import { resourceKey } from '../protocol/resource.ts';
import type { Grant, NotRestored } from '../protocol/wire.ts';
import type { LossReason, LostLock } from './types.ts';

// The decisions of a resume, without a socket (docs/cluster-failover.md, "With the SDK"): which
// locks the client holds again, which it gives back, and which it lost and why.

/** A lock the client believes it holds, as its handles know it. */
export interface BelievedLock {
  grant: Grant;
  /** Every fence it was held under without a break: the grant's and its upgrades'. */
  fences: readonly number[];
  /** Local time (ms) by which its lease ends unless renewed, as far as the client was told. */
  until: number;
}

export interface LockOutcome {
  /** Believed and given back as the same grant (resource, mode and fence): held again, as given back. */
  kept: Grant[];
  /**
   * Given back but not believed: a release or a grant whose reply went with the socket, or another
   * grant of a resource than the one the client's handles name. Given back to the server.
   */
  release: Grant[];
  /** Believed but not given back as it was: lost, and why. */
  lost: LostLock[];
}

/**
 * Weighs what the client believes it holds against what the resumed session holds now (`given`:
 * a new leader's `restored`, or what the same server lists), with a new leader's reasons for what
 * it did not restore (`notRestored`; undefined on the same server), at local time `now`. Only an
 * exact match is kept: a lock given back under another fence or mode is another grant than the
 * one the handles name, so anything read under theirs may be stale (docs/cluster-failover.md,
 * "With the SDK").
 */
export function settleLocks(
  believed: readonly BelievedLock[],
  given: readonly Grant[],
  notRestored: readonly NotRestored[] | undefined,
  now: number,
): LockOutcome {
  const mine = new Map(believed.map((b) => [resourceKey(b.grant.resource), b]));
  const kept: Grant[] = [];
  const release: Grant[] = [];
  for (const g of given) {
    const b = mine.get(resourceKey(g.resource));
    if (b !== undefined && b.grant.fence === g.fence && b.grant.mode === g.mode) kept.push(g);
    else release.push(g);
  }
  const keptKeys = new Set(kept.map((g) => resourceKey(g.resource)));
  const givenByKey = new Map(given.map((g) => [resourceKey(g.resource), g]));
  const lost = believed
    .filter((b) => !keptKeys.has(resourceKey(b.grant.resource)))
    .map((b) => {
      const key = resourceKey(b.grant.resource);
      const why = notRestored?.find((n) => resourceKey(n.resource) === key && b.fences.includes(n.fence));
      return {
        resource: b.grant.resource,
        mode: b.grant.mode,
        fences: [...b.fences],
        reason: lossReason(b, givenByKey.has(key), why, now),
      };
    });
  return { kept, release, lost };
}

/**
 * Why a believed lock was not given back: another grant of it was (`fence-moved`); else the new
 * leader's reason for its record; else, with no record, its lease by the client's own clock
 * (`expired` once over), or no reason the client can tell (`not-restored`).
 */
export function lossReason(
  b: BelievedLock,
  givenOtherwise: boolean,
  why: NotRestored | undefined,
  now: number,
): LossReason {
  if (givenOtherwise) return 'fence-moved';
  if (why !== undefined) return why.reason;
  return now >= b.until ? 'expired' : 'not-restored';
}
