import type { ProgramStore } from './store.ts';

/** Tokens reserved per write: a restart skips at most this many, a grant rarely touches the disk. */
export const FENCE_BLOCK = 1000;

export interface FenceSource {
  next(program: string): number;
}

/**
 * Fencing tokens, strictly increasing per program, across restarts too: a block of tokens is
 * reserved on disk before the first of them is handed out, and after a restart counting resumes
 * above the last reserved block, so no token issued before the restart can come again.
 */
export class FenceCounter implements FenceSource {
  private readonly issued = new Map<string, { last: number; ceiling: number }>();

  constructor(private readonly store: ProgramStore) {}

  next(program: string): number {
    let counter = this.issued.get(program);
    if (counter === undefined) {
      const ceiling = this.store.fenceCeiling(program);
      counter = { last: ceiling, ceiling };
      this.issued.set(program, counter);
    }
    if (counter.last + 1 > counter.ceiling) {
      const ceiling = counter.last + FENCE_BLOCK;
      this.store.saveFenceCeiling(program, ceiling);
      counter.ceiling = ceiling;
    }
    counter.last += 1;
    return counter.last;
  }
}
