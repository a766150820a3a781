/** How the client retries a dropped connection. */
export interface ReconnectOptions {
  /** Delay before the first attempt (default 250 ms). */
  initialDelayMs?: number;
  /**
   * Cap on the delay (default 2 s). It must stay well below the server's resume grace (10 s by
   * default in a cluster): a client asleep in its backoff when a new leader starts serving must
   * still resume there, and get its locks back, before the grace ends. It also caps the wait a
   * standby's NOT_LEADER asks for.
   */
  maxDelayMs?: number;
  /** Growth per failed attempt (default 2). */
  factor?: number;
  /** Fraction of each delay taken off at random, 0..1 (default 0.5), so clients do not retry in step. */
  jitter?: number;
  /**
   * Give up (the client closes) after this many failed attempts in a row (default: never). With
   * several URLs an attempt is a round over all of them.
   */
  maxAttempts?: number;
}

export type Backoff = Required<ReconnectOptions>;

export const DEFAULT_BACKOFF: Backoff = {
  initialDelayMs: 250,
  maxDelayMs: 2_000,
  factor: 2,
  jitter: 0.5,
  maxAttempts: Infinity,
};

/** Exponential backoff with jitter: attempt 1 waits about initialDelayMs, each later one `factor` times more. */
export function backoffDelay(attempt: number, b: Backoff, random: () => number = Math.random): number {
  const base = Math.min(b.maxDelayMs, b.initialDelayMs * b.factor ** Math.max(0, attempt - 1));
  const jitter = Math.min(1, Math.max(0, b.jitter));
  return Math.round(base * (1 - jitter * random()));
}
