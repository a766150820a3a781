/** The two clocks a node reads: injected, so that tests can stop and step them. */
export interface NodeClocks {
  /** Monotonic ms (performance.now()): never steps, but stops while a VM is paused or a machine suspended. */
  monotonic(): number;
  /** Wall-clock ms (Date.now()): keeps counting through a pause, but can be stepped. */
  wall(): number;
}

export const systemClocks: NodeClocks = { monotonic: () => performance.now(), wall: () => Date.now() };

/** Both clocks read together: when a renewal (or a takeover) was sent. */
export interface ClockReading {
  monotonic: number;
  wall: number;
}

export function readClocks(clocks: NodeClocks): ClockReading {
  return { monotonic: clocks.monotonic(), wall: clocks.wall() };
}

export type DeadlineCheck = 'serving' | 'deadline' | 'clocks';

/**
 * Rule 2 of docs/cluster.md: how long a leader may serve. Its deadline is the moment it sent its
 * last successful renewal plus the lease minus the drift margin, by the monotonic clock and by the
 * wall clock alike: a monotonic clock that stood still through a pause cannot stretch it (the wall
 * clock went on), and a wall clock stepped back cannot either (the monotonic one did not). Clocks
 * that disagree by more than the drift margin since that renewal mean one of them cannot be
 * trusted: the node steps down.
 */
export class ServingDeadline {
  private sent: ClockReading;

  constructor(
    private readonly clocks: NodeClocks,
    /** The lease minus the drift margin. */
    private readonly budgetMs: number,
    private readonly driftMs: number,
    sent: ClockReading,
  ) {
    this.sent = sent;
  }

  /** A renewal sent at `sent` succeeded: the deadline runs from there, if that is later. */
  extend(sent: ClockReading): void {
    if (sent.monotonic > this.sent.monotonic) this.sent = sent;
  }

  check(): DeadlineCheck {
    const now = readClocks(this.clocks);
    const ranMonotonic = now.monotonic - this.sent.monotonic;
    const ranWall = now.wall - this.sent.wall;
    if (ranMonotonic >= this.budgetMs || ranWall >= this.budgetMs) return 'deadline';
    return Math.abs(ranWall - ranMonotonic) > this.driftMs ? 'clocks' : 'serving';
  }

  /** What is left by the clock that ends first: when a timer should look again. */
  leftMs(): number {
    const now = readClocks(this.clocks);
    return Math.min(this.sent.monotonic - now.monotonic, this.sent.wall - now.wall) + this.budgetMs;
  }
}
