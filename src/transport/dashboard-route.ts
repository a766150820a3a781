import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join } from 'node:path';

const DIR = join(import.meta.dirname, '..', 'dashboard');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

// No inline script or style anywhere in the page, so the policy can forbid both; the socket is
// the only other thing it talks to.
const HEADERS = {
  'content-security-policy':
    "default-src 'self'; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  // Revalidate every time (a cheap 304): a stale app.js after a server upgrade would speak to it
  // with yesterday's assumptions.
  'cache-control': 'no-cache',
};

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

let assets: Map<string, Asset> | undefined;

/**
 * The files are read once, on the first request: the set of servable paths is exactly the
 * directory's listing, so no request path ever reaches the file system.
 */
function load(): Map<string, Asset> {
  const out = new Map<string, Asset>();
  for (const name of readdirSync(DIR)) {
    const type = TYPES[extname(name)];
    if (type === undefined) continue;
    const body = readFileSync(join(DIR, name));
    out.set(`/${name}`, {
      body,
      type,
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
    });
  }
  const index = out.get('/index.html');
  if (index !== undefined) out.set('/', index);
  return out;
}

/** Serves the dashboard's static files; false when the request is not for one of them. */
export function serveDashboard(req: IncomingMessage, res: ServerResponse, path: string): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  assets ??= load();
  const asset = assets.get(path);
  if (asset === undefined) return false;
  const headers = { ...HEADERS, etag: asset.etag, 'content-type': asset.type };
  if (req.headers['if-none-match'] === asset.etag) {
    res.writeHead(304, headers).end();
    return true;
  }
  res.writeHead(200, { ...headers, 'content-length': asset.body.length });
  res.end(req.method === 'HEAD' ? undefined : asset.body);
  return true;
}
