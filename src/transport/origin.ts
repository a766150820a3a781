import type { IncomingMessage } from 'node:http';

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_NAMES.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * Whether a WebSocket upgrade may proceed. Scripts and agents send no Origin and are judged by
 * their token alone. A browser always sends one: it must be the dashboard's own origin or an
 * allowed one, so a page on another site cannot drive a local server with the user's browser.
 * The Host header must also name this server, which defeats DNS rebinding (a hostile name
 * re-pointed at 127.0.0.1 would otherwise be "same origin").
 */
export function originAllowed(req: IncomingMessage, boundHost: string, allowed: ReadonlySet<string>): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  if (allowed.has(origin)) return true;
  const host = req.headers.host;
  if (host === undefined) return false;
  const hostname = new URL(`http://${host}`).hostname;
  const known = isLoopbackHost(hostname) || hostname === boundHost;
  return known && (origin === `http://${host}` || origin === `https://${host}`);
}

export function parseOrigins(list: string | undefined): Set<string> {
  return new Set((list ?? '').split(',').map((o) => o.trim()).filter((o) => o !== ''));
}
