/**
 * Per-session request rate: a token bucket holding up to `burst` requests, refilled at `rate` per
 * second. Agents are bursty (a plan turns into a dozen calls at once) but a runaway loop must not
 * take the event loop from everyone else.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly now: () => number,
  ) {
    this.tokens = burst;
    this.last = now();
  }

  /** Takes one token: 0 when allowed, otherwise the milliseconds until one is available. */
  take(): number {
    this.refill();
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - this.tokens) * 1000) / this.rate);
  }

  /**
   * Takes `units` more tokens for a call that cost that many requests' worth of work. The bucket
   * may go into debt (down to one burst below empty): the session then waits it off.
   */
  charge(units: number): void {
    if (units <= 0) return;
    this.refill();
    this.tokens = Math.max(-this.burst, this.tokens - units);
  }

  /** Nothing taken that has not been refilled: the session stayed under its rate long enough. */
  get full(): boolean {
    this.refill();
    return this.tokens >= this.burst;
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) * this.rate) / 1000);
    this.last = t;
  }
}
