import { LockstepClient, type ClientOptions } from '../client/index.ts';

export const DEFAULT_URL = 'ws://127.0.0.1:7420/ws';

/** A bad command line: the message names the option; exit status 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** --url, else LOCKSTEP_URL, else the server's default address. */
export function urlOf(flag: string | undefined): string {
  const url = flag ?? process.env.LOCKSTEP_URL ?? DEFAULT_URL;
  if (!/^wss?:\/\//.test(url)) throw new UsageError(`--url: expected ws://HOST:PORT/ws (got ${JSON.stringify(url)})`);
  return url;
}

export function intOption(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UsageError(`--${name}: expected a whole number in [${min}, ${max}] (got ${JSON.stringify(raw)})`);
  return n;
}

export function connectClient(options: ClientOptions): Promise<LockstepClient> {
  return LockstepClient.connect({ callTimeoutMs: 10_000, connectTimeoutMs: 5_000, ...options });
}
