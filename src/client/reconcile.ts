import { resourceKey } from '../protocol/resource.ts';
import type { Grant } from '../protocol/wire.ts';

/** What a client does with the locks a new leader gave back on resume. */
export interface Reconciliation {
  /** Restored and believed held (same resource, mode and fence): kept as they are. */
  kept: Grant[];
  /** Restored but not believed held (released before the crash, or a grant whose reply was lost): given back. */
  release: Grant[];
  /** Believed held but not restored (their record was lost, expired, or overtaken): acquired again. */
  reacquire: Grant[];
}

/**
 * Compares what the client believes it holds with what a new leader restored (cluster.md section
 * 3). Only an exact match is kept: a restored lock under another fence or mode is another grant
 * than the one the client's handles name, so it is given back and the client's own re-acquired.
 */
export function reconcile(believed: readonly Grant[], restored: readonly Grant[]): Reconciliation {
  const mine = new Map(believed.map((g) => [resourceKey(g.resource), g]));
  const kept: Grant[] = [];
  const release: Grant[] = [];
  for (const r of restored) {
    const b = mine.get(resourceKey(r.resource));
    if (b !== undefined && b.fence === r.fence && b.mode === r.mode) kept.push(r);
    else release.push(r);
  }
  const keptKeys = new Set(kept.map((g) => resourceKey(g.resource)));
  return { kept, release, reacquire: believed.filter((g) => !keptKeys.has(resourceKey(g.resource))) };
}
