import { createSecureContext } from 'node:tls';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { int, type Limits, type LockDefaults, limitSpecs, lockSpecs, type OptionSpec } from './protocol/limits.ts';
import { TokenError, Tokens } from './coordinator/tokens.ts';
import { sqliteFileOf } from './service/index.ts';
import type { TlsFiles } from './transport/http-server.ts';
import { isLoopbackHost } from './transport/origin.ts';

// Server options: each has a flag (--kebab-case), an environment variable (LOCKSTEP_SNAKE_CASE)
// and a default documented next to it. Flags win over the environment.

const bool = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0', ''])])
  .transform((v) => v === true || v === 'true' || v === '1' || v === '');

const DEFAULT_DB = './data/lockstep.db';

/** Whether a SQLite file's directory exists (true for what is not a file: :memory:, URLs). */
function directoryExists(db: string): boolean {
  const file = sqliteFileOf(db);
  return file === undefined || existsSync(dirname(resolve(file)));
}

export const optionSpecs = {
  host: { schema: z.string().min(1), default: '127.0.0.1', doc: 'address to bind; loopback by default' },
  port: { schema: int(0, 65535), default: 7420, doc: 'TCP port; 0 picks a free one and prints it' },
  db: {
    // A typo in a path must not start an empty store somewhere else: a given file's directory must
    // exist, as any database's data path must. Only the default's (./data) is created.
    schema: z
      .string()
      .min(1)
      .refine((db) => db === DEFAULT_DB || directoryExists(db), {
        error: (issue) =>
          `the directory ${JSON.stringify(dirname(String(issue.input)))} does not exist; create it first`,
      }),
    default: DEFAULT_DB,
    doc: 'program store: a SQLite file in an existing directory, :memory: (keeps nothing), or a postgres:// URL',
  },
  // Cluster mode (a postgres:// store): docs/cluster.md.
  advertise: {
    schema: z
      .string()
      .regex(/^wss?:\/\/[^\s]+$/, 'must be a ws:// or wss:// URL')
      .optional(),
    default: undefined,
    doc: 'cluster: the URL clients reach this node at, which standbys name; none = ws://HOST:PORT/ws (wss:// with TLS)',
  },
  leaseTtlMs: {
    schema: int(200, 600_000),
    default: 3_000,
    doc: 'cluster: leadership lease; a standby takes over once it has run out unrenewed',
  },
  leaseRenewMs: {
    schema: int(50, 600_000),
    default: 1_000,
    doc: 'cluster: how often the leader renews its lease and a standby looks at it',
  },
  leaseDriftMs: {
    schema: int(0, 600_000),
    default: 500,
    doc: 'cluster: the leader stops serving this long before its lease would end (clock drift)',
  },
  heartbeatMs: { schema: int(100), default: 15_000, doc: 'WebSocket ping interval; two missed pongs end the session' },
  idleTimeoutMs: { schema: int(1000), default: 3_600_000, doc: 'a session that sends nothing this long is closed' },
  // No single default: off on SQLite (one process, nothing to fail over to), on in cluster mode,
  // where a failover is a resume on the new leader (see sessionGraceOf).
  sessionGraceMs: {
    schema: int(0).optional(),
    default: undefined,
    defaultShown: '0, cluster 10000',
    doc: "keep a dropped session's locks this long for a resume (0 = off; cluster: postgres:// db)",
  },
  // What a client is told in the hello result: declared with the protocol, options like the rest.
  ...lockSpecs,
  // Server-side only (not in the hello result): how often a waiter hears its position move.
  queuePushMs: {
    schema: int(0, 60_000),
    default: 100,
    doc: 'lock.queue at most once a ticket this often, deeper ones less often (position 1 at once); 0 = every change',
  },
  ...limitSpecs,
  eventBuffer: { schema: int(1), default: 10_000, doc: 'events kept for replay with events.subscribe since' },
  tokensFile: {
    schema: z.string().min(1).optional(),
    default: undefined,
    doc: 'file of access tokens, one "ROLE TOKEN" per line (roles: agent, observer)',
  },
  tokens: {
    schema: z.string().min(1).optional(),
    default: undefined,
    doc: 'access tokens as "ROLE:TOKEN,ROLE:TOKEN" (prefer the environment variable)',
  },
  tlsCert: {
    schema: z.string().min(1).optional(),
    default: undefined,
    doc: 'PEM certificate (chain) file: serve wss:// and https:// (with --tls-key)',
  },
  tlsKey: {
    schema: z.string().min(1).optional(),
    default: undefined,
    doc: 'PEM private key file of --tls-cert',
  },
  insecure: { schema: bool, default: false, doc: 'allow a non-loopback host without tokens' },
  allowedOrigins: {
    schema: z.string().optional(),
    default: undefined,
    doc: "comma-separated browser origins allowed besides the dashboard's own",
  },
  maxSessions: { schema: int(1), default: 20_000, doc: 'open connections in total; more are closed with 1013' },
  maxPending: {
    schema: int(1),
    default: 1_000,
    doc: 'connections that have not said hello yet; more are closed with 1013',
  },
  helloTimeoutMs: {
    schema: int(100),
    default: 10_000,
    doc: 'a connection that says no hello this long is closed with 1008',
  },
  logLevel: {
    schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    default: 'info',
    doc: 'pino log level',
  },
  log: {
    schema: z.enum(['auto', 'pretty', 'json']),
    default: 'auto',
    doc: 'log format on stderr: pretty (lines for people), json (one object a line); auto: pretty on a terminal',
  },
} as const satisfies Record<string, OptionSpec>;

type Specs = typeof optionSpecs;
export type ServerConfig = { -readonly [K in keyof Specs]: z.output<Specs[K]['schema']> };
export type OptionName = keyof Specs;

export const OPTION_NAMES = Object.keys(optionSpecs) as OptionName[];

export function flagOf(name: OptionName): string {
  return name.replace(/[A-Z]/g, (ch) => `-${ch.toLowerCase()}`);
}

export function envOf(name: OptionName): string {
  return `LOCKSTEP_${name.replace(/[A-Z]/g, (ch) => `_${ch}`).toUpperCase()}`;
}

/**
 * A bad option: the message names it as it was given (--flag, LOCKSTEP_VAR, or start()'s property).
 * A TypeError, as Node's own APIs answer an invalid argument.
 */
export class ConfigError extends TypeError {
  override name = 'ConfigError';
}

export function defaultConfig(): ServerConfig {
  const out: Record<string, unknown> = {};
  for (const name of OPTION_NAMES) out[name] = optionSpecs[name].default;
  return out as ServerConfig;
}

/** The hello result's `limits` and `lock`: the configured values of the options declared there. */
export function limitsOf(config: ServerConfig): Limits {
  return pick(config, limitSpecs);
}

export function lockDefaultsOf(config: ServerConfig): LockDefaults {
  return pick(config, lockSpecs);
}

function pick<S extends object>(config: ServerConfig, specs: S): { [K in keyof S]: number } {
  return Object.fromEntries(Object.keys(specs).map((k) => [k, config[k as OptionName]])) as { [K in keyof S]: number };
}

/**
 * The access tokens the options give (a tokens file, a list, both or none), and the refusal to
 * listen beyond loopback without any, unless --insecure (docs/security.md).
 */
export function tokensOf(c: ServerConfig): Tokens {
  let tokens: Tokens;
  try {
    tokens = Tokens.load(
      { file: c.tokensFile, list: c.tokens },
      { file: `--${flagOf('tokensFile')} (${envOf('tokensFile')})`, list: `--${flagOf('tokens')}` },
    );
  } catch (err) {
    throw err instanceof TokenError ? new ConfigError(err.message) : err;
  }
  if (!isLoopbackHost(c.host) && tokens.size === 0 && !c.insecure) {
    throw new ConfigError(
      `refusing to listen on ${c.host} without tokens: set --tokens-file or LOCKSTEP_TOKENS, or pass --insecure`,
    );
  }
  return tokens;
}

/**
 * The certificate and key of --tls-cert and --tls-key, read once at start and checked to be a PEM
 * pair, so that a bad one is a ConfigError before the store is opened; none: plain ws://.
 */
export function tlsOf(c: ServerConfig): TlsFiles | undefined {
  if (c.tlsCert === undefined || c.tlsKey === undefined) return undefined;
  const read = (path: string, option: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      const why = err instanceof Error && 'code' in err && err.code === 'ENOENT' ? 'no such file' : String(err);
      throw new ConfigError(`${option}: cannot read ${JSON.stringify(path)}: ${why}`);
    }
  };
  const files = { cert: read(c.tlsCert, '--tls-cert'), key: read(c.tlsKey, '--tls-key') };
  try {
    createSecureContext(files);
  } catch (err) {
    throw new ConfigError(
      `--tls-cert and --tls-key: not a PEM certificate and its private key (${err instanceof Error ? err.message : String(err)})`,
    );
  }
  return files;
}

/** Resume grace in cluster mode (a PostgreSQL store) when none is given (docs/cluster.md, failover rule 1). */
export const CLUSTER_SESSION_GRACE_MS = 10_000;

/** The resume grace in effect: the configured one, or the store's default. */
export function sessionGraceOf(config: ServerConfig, cluster: boolean): number {
  return config.sessionGraceMs ?? (cluster ? CLUSTER_SESSION_GRACE_MS : 0);
}

export function isBooleanOption(name: OptionName): boolean {
  return optionSpecs[name].schema === bool;
}

/** A value given for an option, and where it came from as a message names it. */
interface Given {
  value: unknown;
  source: string;
}

/** Options read from a config file (`lockstep serve --config`), by property name, and the file's path. */
export interface ConfigFile {
  path: string;
  values: Readonly<Record<string, unknown>>;
}

/**
 * Builds the configuration from flags, the environment and a config file, in that order of
 * precedence, over the defaults. A bad value stops start-up with a ConfigError naming the option
 * and where it came from.
 */
export function resolveConfig(
  flags: Partial<Record<OptionName, unknown>>,
  env: NodeJS.ProcessEnv = process.env,
  file?: ConfigFile,
): ServerConfig {
  return resolveWithSources(flags, env, file).config;
}

/** resolveConfig, with where each option's value came from: a flag, a variable, the file, or "default". */
export function resolveWithSources(
  flags: Partial<Record<OptionName, unknown>>,
  env: NodeJS.ProcessEnv = process.env,
  file?: ConfigFile,
): { config: ServerConfig; sources: Record<OptionName, string> } {
  const given: Partial<Record<OptionName, Given>> = {};
  for (const name of OPTION_NAMES) {
    const fromFlag = flags[name];
    const fromEnv = env[envOf(name)];
    if (fromFlag !== undefined) given[name] = { value: fromFlag, source: `--${flagOf(name)}` };
    else if (fromEnv !== undefined) given[name] = { value: fromEnv, source: envOf(name) };
    else if (file !== undefined && Object.hasOwn(file.values, name))
      given[name] = { value: file.values[name], source: `${file.path} (${name})` };
  }
  const config = checkedConfig(given, (name) => `--${flagOf(name)}`);
  const sources = Object.fromEntries(OPTION_NAMES.map((n) => [n, given[n]?.source ?? 'default']));
  return { config, sources: sources as Record<OptionName, string> };
}

/**
 * The configuration start() is given, checked as the command line's is (the same schemas, the
 * same relations, the same messages), naming each option by its property. Undefined is absent.
 */
export function configOf(options: Record<string, unknown>): ServerConfig {
  const given: Partial<Record<OptionName, Given>> = {};
  for (const [name, value] of Object.entries(options)) {
    if (value === undefined) continue;
    if (!Object.hasOwn(optionSpecs, name)) throw new ConfigError(`unknown option ${name}`);
    given[name as OptionName] = { value, source: name };
  }
  return checkedConfig(given, (name) => name);
}

/** Every given value against its option's schema, over the defaults; then the relations between them. */
function checkedConfig(given: Partial<Record<OptionName, Given>>, nameOf: (name: OptionName) => string): ServerConfig {
  const out = defaultConfig() as Record<string, unknown>;
  for (const name of OPTION_NAMES) {
    const g = given[name];
    if (g === undefined) continue;
    const parsed = optionSpecs[name].schema.safeParse(g.value);
    if (!parsed.success) {
      throw new ConfigError(
        `${g.source}: ${parsed.error.issues[0]?.message ?? 'invalid value'} (got ${shown(g.value)})`,
      );
    }
    out[name] = parsed.data;
  }
  const config = out as ServerConfig;
  checkRelations(config, (name) => given[name]?.source ?? nameOf(name));
  return config;
}

function checkRelations(c: ServerConfig, n: (name: OptionName) => string): void {
  if ((c.tlsCert === undefined) !== (c.tlsKey === undefined))
    throw new ConfigError(
      `${c.tlsCert === undefined ? n('tlsKey') : n('tlsCert')} needs ${c.tlsCert === undefined ? n('tlsCert') : n('tlsKey')} too: TLS takes a certificate and its key`,
    );
  if (c.minTtlMs > c.maxTtlMs)
    throw new ConfigError(`${n('minTtlMs')} (${c.minTtlMs}) is above ${n('maxTtlMs')} (${c.maxTtlMs})`);
  if (c.defaultTtlMs < c.minTtlMs || c.defaultTtlMs > c.maxTtlMs) {
    throw new ConfigError(
      `${n('defaultTtlMs')} (${c.defaultTtlMs}) is outside [${n('minTtlMs')}, ${n('maxTtlMs')}] = [${c.minTtlMs}, ${c.maxTtlMs}]`,
    );
  }
  if (c.leaseRenewMs + c.leaseDriftMs >= c.leaseTtlMs) {
    throw new ConfigError(
      `${n('leaseRenewMs')} (${c.leaseRenewMs}) plus ${n('leaseDriftMs')} (${c.leaseDriftMs}) must be below ${n('leaseTtlMs')} (${c.leaseTtlMs}): the leader must renew before it fences itself`,
    );
  }
  if (c.hardMaxMessageBytes < c.maxMessageBytes) {
    throw new ConfigError(
      `${n('hardMaxMessageBytes')} (${c.hardMaxMessageBytes}) is below ${n('maxMessageBytes')} (${c.maxMessageBytes})`,
    );
  }
}

function shown(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
