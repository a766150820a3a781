import type { ProgramStore } from './store.ts';

/** Tokens reserved per write: a restart skips at most this many, a grant rarely touches the store. */
export const FENCE_BLOCK = 1000;

export interface FenceSource {
  next(program: string): number;
}

interface Counter {
  last: number;
  /** The ceiling asked of the store; tokens up to it may be handed out. */
  reserved: number;
}

/**
 * Fencing tokens, strictly increasing per program, across restarts too: a block of tokens is
 * reserved in the store as the first of them is handed out, and after a restart counting resumes
 * above the last reserved block, so no token issued before the restart can come again.
 *
 * The lock core asks for tokens synchronously. A synchronous store (SQLite) has the block on disk
 * before next() returns; an asynchronous one has it a round trip later, so the next block is asked
 * for when half of the current one is used. A reservation that fails is asked for again at the
 * next grant; tokens stay increasing in memory meanwhile, and an edit's own fence is checked
 * against the fences its commit stores, whatever the ceiling.
 */
export class FenceCounter implements FenceSource {
  private readonly issued = new Map<string, Counter>();
  private readonly saved = new Map<string, number>();

  constructor(
    private readonly store: ProgramStore,
    ceilings: ReadonlyMap<string, number>,
  ) {
    for (const [program, ceiling] of ceilings) this.saved.set(program, ceiling);
  }

  next(program: string): number {
    let counter = this.issued.get(program);
    if (counter === undefined) {
      const ceiling = this.saved.get(program) ?? 0;
      counter = { last: ceiling, reserved: ceiling };
      this.issued.set(program, counter);
    }
    counter.last += 1;
    if (counter.last + FENCE_BLOCK / 2 > counter.reserved) this.reserve(program, counter);
    return counter.last;
  }

  private reserve(program: string, counter: Counter): void {
    const ceiling = Math.max(counter.reserved, counter.last) + FENCE_BLOCK;
    counter.reserved = ceiling;
    this.store.saveFenceCeiling(program, ceiling).then(
      () => this.saved.set(program, Math.max(this.saved.get(program) ?? 0, ceiling)),
      () => {
        if (counter.reserved === ceiling) counter.reserved = this.saved.get(program) ?? 0;
      },
    );
  }
}
