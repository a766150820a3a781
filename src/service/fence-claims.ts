import { LockstepError } from '../protocol/errors.ts';
import type { Resource } from '../protocol/resource.ts';

/**
 * The fence of the grant an edit was made under, for one resource it writes: 'structure' or a
 * function id in decimal (the keys of edit.apply's `fences`). The store keeps, per resource, the
 * fence of the last edit committed to it, and refuses a commit claiming a lower one.
 */
export interface FenceClaim {
  resource: string;
  fence: number;
}

/** A resource from its column form (cluster/journal-batch.ts resourceColumn): a path after a "/". */
export function claimedResource(program: string, key: string): Resource {
  if (key === 'structure') return { program, structure: true };
  return key.startsWith('/') ? { program, path: key.slice(1) } : { program, function: Number(key) };
}

/** The commit's refusal: an edit under an older grant never overwrites one under a newer grant. */
export function staleFence(
  program: string,
  stale: ReadonlyArray<{ claim: FenceClaim; current: number }>,
): LockstepError {
  return new LockstepError(
    'STALE_FENCE',
    `a newer grant has already committed an edit to ${stale.map((s) => s.claim.resource).join(', ')}`,
    {
      stale: stale.map((s) => ({
        resource: claimedResource(program, s.claim.resource),
        fence: s.claim.fence,
        current: s.current,
      })),
    },
  );
}
