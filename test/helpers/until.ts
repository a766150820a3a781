// Waiting with a bound: what a test asserts about time. Never a fixed sleep.

/**
 * Polls `probe` until it returns a value (not undefined), at most `withinMs`; the bound is what a
 * test asserts. Never a fixed sleep: each round waits a short tick, then asks again.
 */
export async function until<T>(what: string, withinMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + withinMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end)
      throw new Error(`not within ${withinMs} ms: ${what}${last === undefined ? '' : ` (${String(last)})`}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** `promise`, or a failure naming `what` after `ms`: the bound the test asserts. */
export async function within<T>(what: string, ms: number, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`not within ${ms} ms: ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
