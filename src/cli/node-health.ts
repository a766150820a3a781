import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';

/** How long one node's /healthz may take: a paused node accepts the connection and never answers. */
const HEALTH_TIMEOUT_MS = 3_000;

/** One node as its /healthz answers (docs/protocol.md, "Transport and framing"; docs/cluster.md). */
export interface NodeHealth {
  /** The WebSocket URL given for the node. */
  url: string;
  /** The HTTP status of /healthz (200 leader or single server, 503 standby, taking over or unhealthy), null when unreachable. */
  http: number | null;
  /** Its JSON body: status, uptimeMs, sessions, store, version, and in cluster mode role, epoch, leader (and leadingForMs). */
  health: Record<string, unknown> | null;
  /** Why the node could not be asked. */
  error?: string;
}

/** ws://host:port/ws -> http://host:port/healthz (wss -> https; a path prefix kept, for a proxy). */
export function healthUrlOf(wsUrl: string): string {
  const u = new URL(wsUrl);
  u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:';
  u.pathname = `${u.pathname.replace(/\/ws\/?$/, '')}/healthz`;
  u.search = '';
  return u.href;
}

/** Every node's /healthz at once; a node that cannot be asked is reported, not thrown. */
export function nodesHealth(urls: readonly string[]): Promise<NodeHealth[]> {
  return Promise.all(urls.map(nodeHealth));
}

/**
 * node:http rather than fetch: fetch refuses ports on its "bad ports" list (1, 6000, ...), which
 * a server may well listen on. https trusts what Node trusts (NODE_EXTRA_CA_CERTS included).
 */
async function nodeHealth(url: string): Promise<NodeHealth> {
  const target = healthUrlOf(url);
  try {
    const { status, text } = await getText(target);
    try {
      return { url, http: status, health: JSON.parse(text) as Record<string, unknown> };
    } catch {
      return { url, http: status, health: null, error: `/healthz answered ${status} without JSON` };
    }
  } catch (err) {
    return { url, http: null, health: null, error: err instanceof Error ? err.message : String(err) };
  }
}

function getText(target: string): Promise<{ status: number; text: string }> {
  const get = target.startsWith('https:') ? httpsGet : httpGet;
  return new Promise((resolve, reject) => {
    const req = get(target, { timeout: HEALTH_TIMEOUT_MS }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.once('error', reject);
    });
    req.once('timeout', () => req.destroy(new Error(`no answer within ${HEALTH_TIMEOUT_MS} ms`)));
    req.once('error', reject);
  });
}
