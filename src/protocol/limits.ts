import { z } from 'zod';

// The limits and lease lengths a client is told in the hello result, declared once: each is also
// a `lockstep serve` option (src/config.ts spreads these in), the hello schema's `limits` and
// `lock` objects are built from them, and so are the `Limits` and `LockDefaults` types.

/** A whole-number option read from a flag or the environment; the messages say what was expected. */
export const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce
    .number({ error: (issue) => (issue.code === 'invalid_type' ? 'expected a number' : undefined) })
    .int('expected a whole number')
    .min(min, `expected at least ${min}`)
    .max(max, `expected at most ${max}`);

/** One option: how its value is read, its default, and one line for --help and the docs. */
export interface OptionSpec {
  schema: z.ZodType;
  default: unknown;
  doc: string;
  /** How --help and the docs state a default that depends on other options (then `default` is undefined). */
  defaultShown?: string;
}

const MiB = 1024 * 1024;

export const lockSpecs = {
  defaultTtlMs: { schema: int(1), default: 30 * 60_000, doc: 'lease length when a request names none' },
  minTtlMs: { schema: int(1), default: 100, doc: 'shortest lease; shorter requests are raised to it' },
  maxTtlMs: { schema: int(1), default: 24 * 3_600_000, doc: 'longest lease; longer requests are capped' },
  warningMs: { schema: int(0), default: 60_000, doc: 'lock.expiring is sent min(this, ttl/5) before expiry' },
} as const satisfies Record<string, OptionSpec>;

export const limitSpecs = {
  maxMessageBytes: { schema: int(1024), default: MiB, doc: 'larger messages get PAYLOAD_TOO_LARGE' },
  // Above this the frame is not even buffered whole.
  hardMaxMessageBytes: { schema: int(1024), default: 8 * MiB, doc: 'larger messages close the socket with 1009' },
  // A reader that stops reading (a frozen tab, a paused agent) would otherwise make the server
  // buffer every push for it without bound.
  maxBufferedBytes: {
    schema: int(65_536),
    default: 4 * MiB,
    doc: 'a socket whose unsent data grows past this is closed with 1013',
  },
  // One ticket sits in this many queues.
  maxBatch: { schema: int(1, 1000), default: 64, doc: 'resources in one lock request (-32602 above)' },
  // Descriptions are shown to every observer; long ones would only bloat the stream.
  maxDescription: { schema: int(0, 1024), default: 256, doc: 'characters in a lock description (-32602 above)' },
  rateLimit: { schema: int(1), default: 2_000, doc: 'requests per second per session (token bucket refill)' },
  rateBurst: { schema: int(1), default: 4_000, doc: 'requests a session may send at once (token bucket size)' },
  // Each held lock has lease timers and each ticket sits in queues: bound what one session can pin.
  maxLocksPerSession: {
    schema: int(1),
    default: 1_000,
    doc: 'locks one session may hold or wait for (RATE_LIMITED above)',
  },
  maxTicketsPerSession: {
    schema: int(1),
    default: 100,
    doc: 'queued requests one session may have (RATE_LIMITED above)',
  },
} as const satisfies Record<string, OptionSpec>;

export type LockDefaults = { [K in keyof typeof lockSpecs]: number };
export type Limits = { [K in keyof typeof limitSpecs]: number };

/** The hello result's shape for a group of numeric options, each described by its doc line. */
function wireShape<S extends Record<string, OptionSpec>>(specs: S): { [K in keyof S]: z.ZodNumber } {
  return Object.fromEntries(
    Object.entries(specs).map(([name, spec]) => [name, z.number().int().describe(spec.doc)]),
  ) as { [K in keyof S]: z.ZodNumber };
}

export const LockDefaultsWire = z.object(wireShape(lockSpecs));
export const LimitsWire = z.object(wireShape(limitSpecs));

/** The program a call that names none works on; every server starts with it. */
export const DEFAULT_PROGRAM = 'main';
