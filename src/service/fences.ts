import type { ProgramStore } from './store.ts';

/** Tokens reserved per write: a restart skips at most this many, a grant rarely touches the store. */
export const FENCE_BLOCK = 1000;

export interface FenceSource {
  next(program: string): number;
}

/**
 * Cluster mode: a token is handed out only once it is reserved in the store, so that a leader
 * taking over, which counts on from every recorded ceiling, can never hand out one that a deposed
 * leader already gave. Blocks are larger (a failover skips at most one); a grant that needs a
 * token not yet reserved (the store has fallen that far behind) gets one all the same, but
 * `ranOut` is told first: the node must stop serving, so that the token is never seen.
 */
export interface ReservedFences {
  block: number;
  ranOut(): void;
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
 * against the fences its commit stores, whatever the ceiling. In cluster mode (ReservedFences)
 * no token above the stored ceiling is handed out unnoticed.
 */
export class FenceCounter implements FenceSource {
  private readonly issued = new Map<string, Counter>();
  private readonly saved = new Map<string, number>();
  private readonly block: number;

  constructor(
    private readonly store: ProgramStore,
    ceilings: ReadonlyMap<string, number>,
    private readonly reservedOnly?: ReservedFences,
  ) {
    for (const [program, ceiling] of ceilings) this.saved.set(program, ceiling);
    this.block = reservedOnly?.block ?? FENCE_BLOCK;
  }

  next(program: string): number {
    const counter = this.counter(program);
    counter.last += 1;
    // Failure is handled in reserve(); the next grant asks again.
    if (counter.last + this.block / 2 > counter.reserved) this.reserve(program, counter).catch(() => undefined);
    if (this.reservedOnly !== undefined && counter.last > (this.saved.get(program) ?? 0)) this.reservedOnly.ranOut();
    return counter.last;
  }

  /** Cluster mode: resolves once the program has a reserved block (before its first grant). */
  async prepare(program: string): Promise<void> {
    const counter = this.counter(program);
    if (counter.last + this.block / 2 <= (this.saved.get(program) ?? 0)) return;
    await this.reserve(program, counter);
  }

  private counter(program: string): Counter {
    let counter = this.issued.get(program);
    if (counter === undefined) {
      const ceiling = this.saved.get(program) ?? 0;
      counter = { last: ceiling, reserved: ceiling };
      this.issued.set(program, counter);
    }
    return counter;
  }

  private reserve(program: string, counter: Counter): Promise<void> {
    const ceiling = Math.max(counter.reserved, counter.last) + this.block;
    counter.reserved = ceiling;
    return this.store.saveFenceCeiling(program, ceiling).then(
      () => {
        this.saved.set(program, Math.max(this.saved.get(program) ?? 0, ceiling));
      },
      (err: unknown) => {
        if (counter.reserved === ceiling) counter.reserved = this.saved.get(program) ?? 0;
        // A grant's reservation is asked again at the next grant; prepare() must know it failed.
        throw err;
      },
    );
  }
}
