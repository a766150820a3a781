import type { IncomingMessage } from 'node:http';
import { hostname, networkInterfaces } from 'node:os';

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]', '::1'];
const WILDCARDS = new Set(['0.0.0.0', '::', '[::]']);

export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_NAMES.includes(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * The names a browser may use in the Host header to reach this server: loopback, the bound
 * address, and, when bound to every interface, each interface's address and the machine's name.
 * Other names are refused before the same-origin rule applies: a hostile name re-pointed at this
 * machine (DNS rebinding) would otherwise count as "same origin".
 */
export function serverHostNames(boundHost: string): Set<string> {
  const names = new Set([...LOOPBACK_NAMES, boundHost, boundHost.replace(/^\[|\]$/g, '')]);
  if (WILDCARDS.has(boundHost)) {
    names.add(hostname());
    for (const list of Object.values(networkInterfaces())) {
      for (const a of list ?? []) names.add(a.family === 'IPv6' ? `[${a.address}]` : a.address);
    }
  }
  return names;
}

/**
 * Whether a WebSocket upgrade may proceed. Scripts and agents send no Origin and are judged by
 * their token alone. A browser always sends one: it must be the dashboard's own origin (on a host
 * name of this server) or an allowed one, so a page on another site cannot drive a local server
 * with the user's browser.
 */
export function originAllowed(
  req: IncomingMessage,
  hostNames: ReadonlySet<string>,
  allowed: ReadonlySet<string>,
): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  if (allowed.has(origin)) return true;
  const host = req.headers.host;
  if (host === undefined) return false;
  const name = new URL(`http://${host}`).hostname;
  const known = hostNames.has(name) || isLoopbackHost(name);
  return known && (origin === `http://${host}` || origin === `https://${host}`);
}

export function parseOrigins(list: string | undefined): Set<string> {
  return new Set(
    (list ?? '')
      .split(',')
      .map((o) => o.trim())
      .filter((o) => o !== ''),
  );
}
