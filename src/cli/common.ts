import { request as httpRequest } from 'node:http';
import { isIP } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type ClientOptions, isLockstepError, LockstepClient, LockstepClientError } from '../client/index.ts';

export const DEFAULT_URL = 'ws://127.0.0.1:7420/ws';

/** The server's WebSocket path; anything else on its port answers an upgrade with 404. */
const WS_PATH = '/ws';

/**
 * Where a page of docs/ is on this machine, for --help to point at: the package ships docs/ beside
 * dist/ (package.json "files"), as a clone has it beside src/.
 */
export function docPath(page: string): string {
  return fileURLToPath(new URL(`../../docs/${page}`, import.meta.url));
}

/** A command that ran and could not do what it was asked, said in one line; exit status 1. */
export class CommandFailed extends Error {
  override name = 'CommandFailed';
}

/** A bad command line: the message names the option; exit status 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * The options every command that talks to a server shares, as parseArgs declares them. --url may
 * name a cluster's nodes: repeated, or comma-separated.
 */
export const CONNECTION_OPTIONS = { url: { type: 'string', multiple: true }, token: { type: 'string' } } as const;

/**
 * Their --help lines, padded to `width` like the command's other options; `urlDefault` says where
 * a command that finds its server elsewhere connects when no URL is given.
 */
export function connectionHelp(width: number, urlDefault?: string): string {
  const pad = ' '.repeat(width + 3);
  const url =
    urlDefault === undefined
      ? [
          `server address (default ${DEFAULT_URL}; env LOCKSTEP_URL); for a`,
          "cluster every node's, comma-separated or --url repeated: the leader is used",
        ]
      : wrap(
          `server address (env LOCKSTEP_URL; default ${urlDefault}); for a cluster every node's, comma-separated or --url repeated: the leader is used`,
          100 - pad.length,
        );
  return [
    `  ${'--url <url>'.padEnd(width)} ${url[0]}`,
    ...url.slice(1).map((l) => `${pad}${l}`),
    `  ${'--token <token>'.padEnd(width)} access token, when the server wants one (env LOCKSTEP_TOKEN)`,
  ].join('\n');
}

/** Words in lines of at most `width` characters. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  for (const word of text.split(' ')) {
    const last = lines.at(-1);
    if (last !== undefined && last.length + 1 + word.length <= width) lines[lines.length - 1] = `${last} ${word}`;
    else lines.push(word);
  }
  return lines;
}

export interface Connection {
  urls: string[];
  token?: string;
}

/** --url, else LOCKSTEP_URL, else the default address; a bad one is blamed on where it came from. */
/** The nodes of --url (repeated, or comma-separated), else of LOCKSTEP_URL (comma-separated), else the default. */
export function urlsOf(flags: readonly string[] | undefined): string[] {
  const given = flags === undefined || flags.length === 0 ? [undefined] : flags;
  return given.flatMap((flag) => {
    const [list, source] = sourceOf(flag);
    return list.split(',').map((url) => checkedUrl(url.trim(), source));
  });
}

function sourceOf(flag: string | undefined): [string, string] {
  if (flag !== undefined) return [flag, '--url'];
  if (process.env.LOCKSTEP_URL !== undefined) return [process.env.LOCKSTEP_URL, 'LOCKSTEP_URL'];
  return [DEFAULT_URL, 'the default'];
}

function checkedUrl(url: string, source: string): string {
  if (!/^wss?:\/\//.test(url))
    throw new UsageError(`${source}: expected ws://HOST:PORT${WS_PATH} (got ${JSON.stringify(url)})`);
  return url;
}

/** The addresses (urlsOf) and --token, else LOCKSTEP_TOKEN. */
export function connectionOf(values: { url?: string[]; token?: string }): Connection {
  const urls = urlsOf(values.url);
  const token = values.token ?? process.env.LOCKSTEP_TOKEN;
  return token === undefined || token === '' ? { urls } : { urls, token };
}

export function intOption(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UsageError(`--${name}: expected a whole number in [${min}, ${max}] (got ${JSON.stringify(raw)})`);
  return n;
}

/**
 * Refuses an option `command` does not know, naming the nearest one it does. Runs before the
 * strict parse, whose own message suggests only a "--" separator.
 */
export function rejectUnknownOptions(command: string, argv: readonly string[], known: readonly string[]): void {
  const { tokens } = parseArgs({ args: [...argv], strict: false, allowPositionals: true, tokens: true });
  for (const t of tokens) {
    if (t.kind !== 'option' || known.includes(t.name)) continue;
    const guess = nearest(t.name, known);
    throw new UsageError(
      `unknown option ${t.rawName}${guess === undefined ? '' : ` (did you mean --${guess}?)`}; "lockstep ${command} --help" lists the options`,
    );
  }
}

/** The candidate fewest edits away from `word`, when it is close enough to be a likely typo. */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}

/** Levenshtein distance, one row at a time. */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++)
      next[j] = Math.min(
        (row[j] as number) + 1,
        (next[j - 1] as number) + 1,
        (row[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    row = next;
  }
  return row[b.length] as number;
}

/** Connects; a refusal says what to do (explained). */
export async function connectClient(options: ClientOptions): Promise<LockstepClient> {
  try {
    return await LockstepClient.connect({ ...CLI_TIMEOUTS, ...options });
  } catch (err) {
    throw await explained(err, options.urls ?? [options.url as string]);
  }
}

/** The call and connect timeouts of the commands: a command line waits seconds, not minutes. */
export const CLI_TIMEOUTS = { callTimeoutMs: 10_000, connectTimeoutMs: 5_000 } as const;

/**
 * A failure to connect that says what to do: a missing token names --token, a URL whose path is
 * not /ws gets the /ws one (the WebSocket client reports the server's 404 without its
 * explanation), and a wss:// URL of a server that speaks ws:// (or the reverse) gets the other.
 */
export async function explained(err: unknown, urls: readonly string[]): Promise<unknown> {
  if (isLockstepError(err, 'UNAUTHORIZED'))
    return new LockstepClientError({ ...err, message: `${err.message}: pass --token or set LOCKSTEP_TOKEN` });
  if (!(err instanceof LockstepClientError && err.type === 'CONNECT_FAILED')) return err;
  const url = urls.find((u) => pathOf(u) !== WS_PATH);
  if (url !== undefined) {
    const fixed = new URL(url);
    fixed.pathname = WS_PATH;
    return new UsageError(
      `${err.message}\nthe server's WebSocket endpoint is ${WS_PATH}, not ${JSON.stringify(pathOf(url))}: use --url ${fixed.href}`,
    );
  }
  for (const u of urls) {
    const other = await speaksOtherScheme(u);
    if (other !== undefined)
      return new UsageError(
        `${err.message}\nthe server at ${new URL(u).host} speaks ${other.scheme}: use --url ${other.url}`,
      );
  }
  // The client reports the last node it tried; the others failed too.
  const tried = urls.length > 1 ? `\ntried ${urls.join(', ')}` : '';
  for (const u of urls.filter((u) => u.startsWith('wss:'))) {
    const refused = await certificateRefused(u);
    if (refused !== undefined)
      return new LockstepClientError({ ...err, message: `${err.message}${tried}\n${refused}` });
  }
  return tried === '' ? err : new LockstepClientError({ ...err, message: `${err.message}${tried}` });
}

/**
 * Why this process does not trust the certificate of a wss:// node, with what to do; undefined
 * when it does, or when the node cannot be reached at all. Node's codes, never its messages.
 */
function certificateRefused(url: string): Promise<string | undefined> {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = Number(u.port || 443);
  return new Promise((resolve) => {
    const socket = tlsConnect({ host, port, timeout: PROBE_MS, ...(isIP(host) === 0 ? { servername: host } : {}) });
    const done = (why: string | undefined) => {
      socket.destroy();
      resolve(why);
    };
    socket.once('secureConnect', () => done(undefined));
    socket.once('timeout', () => done(undefined));
    socket.once('error', (e: NodeJS.ErrnoException) => {
      const code = e.code ?? '';
      if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
        done(
          `the certificate of ${u.host} does not name ${host}: its subjectAltName must hold the host of the node's advertised URL (docs/security.md, "Certificates")`,
        );
      else if (UNTRUSTED.has(code))
        done(
          `the certificate of ${u.host} is not trusted (${code}): for a private CA, set NODE_EXTRA_CA_CERTS to its certificate file (docs/security.md, "Certificates")`,
        );
      else done(undefined);
    });
  });
}

/** Node's codes for a certificate chain it does not trust. */
const UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
]);

/** How long a probe of the other scheme may take. */
const PROBE_MS = 2_000;

/**
 * A URL that failed, tried the other way: a TLS handshake for ws:// (the server speaks wss://),
 * a plain HTTP request for wss:// (it speaks ws://, and TLS got a non-TLS answer).
 */
async function speaksOtherScheme(url: string): Promise<{ scheme: string; url: string } | undefined> {
  const u = new URL(url);
  const port = Number(u.port || (u.protocol === 'wss:' ? 443 : 80));
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const tlsAnswers = u.protocol === 'ws:' ? await handshakes(host, port) : !(await answersHttp(host, port));
  if (!tlsAnswers && u.protocol === 'ws:') return undefined;
  if (tlsAnswers && u.protocol === 'wss:') return undefined;
  u.protocol = u.protocol === 'ws:' ? 'wss:' : 'ws:';
  return { scheme: `${u.protocol}//`, url: u.href };
}

function handshakes(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    // Whether it speaks TLS at all, not whether its certificate is trusted.
    const socket = tlsConnect({ host, port, rejectUnauthorized: false, timeout: PROBE_MS });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('secureConnect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}

/** A Lockstep /healthz in plain HTTP (a TLS port of a proxy answers plain HTTP too, with a 400). */
function answersHttp(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = httpRequest({ host, port, path: '/healthz', timeout: PROBE_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.once('end', () => {
        try {
          resolve(typeof (JSON.parse(body) as { version?: unknown }).version === 'string');
        } catch {
          resolve(false);
        }
      });
    });
    req.once('error', () => resolve(false));
    req.once('timeout', () => req.destroy());
    req.end();
  });
}

function pathOf(url: string): string | undefined {
  try {
    return new URL(url).pathname;
  } catch {
    return undefined;
  }
}

/** A failure that has something to show beside the error: `status --json` prints both. */
export class WithReport extends Error {
  constructor(
    readonly failure: unknown,
    readonly report: Record<string, unknown>,
  ) {
    super(failure instanceof Error ? failure.message : String(failure));
  }
}
