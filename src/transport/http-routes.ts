import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { serveDashboard } from './dashboard-route.ts';

/** What this node says about itself over HTTP (built where the node is composed, src/node-status.ts). */
export interface NodeEndpoints {
  /** GET /healthz: 200 when `ok`, 503 otherwise, the body as JSON. */
  health(): Promise<{ ok: boolean; body: Record<string, unknown> }>;
  /** GET /metrics: Prometheus text. */
  metrics(): Promise<{ contentType: string; text: string }>;
}

/** The plain HTTP routes: /metrics, /healthz, the dashboard at /, and 404 for anything else. */
export function httpRoutes(endpoints: NodeEndpoints): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const path = pathOf(req);
    if (req.method === 'GET' && path === '/metrics') {
      void endpoints.metrics().then(
        ({ contentType, text }) => res.writeHead(200, { 'content-type': contentType }).end(text),
        (err: unknown) => res.writeHead(500).end(String(err)),
      );
      return;
    }
    if (req.method === 'GET' && path === '/healthz') {
      void endpoints.health().then(({ ok, body }) => {
        res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      });
      return;
    }
    if (serveDashboard(req, res, path)) return;
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  };
}

export function pathOf(req: IncomingMessage): string {
  return new URL(req.url ?? '/', 'http://x').pathname;
}

const REASONS = { 403: 'Forbidden', 404: 'Not Found' } as const;

/**
 * Answers an upgrade request that is not taken (the socket is still raw HTTP) and ends it. A
 * body says why: a client pointed at the wrong path would otherwise see a bare status.
 */
export function refuseUpgrade(socket: Duplex, status: keyof typeof REASONS, body = ''): void {
  const head = [
    `HTTP/1.1 ${status} ${REASONS[status]}`,
    ...(body === '' ? [] : ['Content-Type: text/plain', `Content-Length: ${Buffer.byteLength(body)}`]),
    'Connection: close',
  ];
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
}
