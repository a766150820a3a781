import { createServer, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

/** A certificate and its key in PEM, checked to be a pair (src/config.ts, tlsOf). */
export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
}

/** The listening HTTP(S) server and the addresses it is reached at. */
export interface HttpEndpoint {
  http: Server;
  port: number;
  /** ws://host:port/ws, or wss:// with TLS. */
  url: string;
  /** http://host:port/, or https:// with TLS: the dashboard. */
  dashboardUrl: string;
}

/**
 * Listens on host:port, over TLS (wss://, https://: the same routes and upgrade) when given a
 * certificate. Port 0 picks a free port; the URLs carry the one picked.
 */
export async function listenHttp(host: string, port: number, tls: TlsFiles | undefined): Promise<HttpEndpoint> {
  const http = tls === undefined ? createServer() : createTlsServer(tls);
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(port, host, () => {
      http.off('error', reject);
      resolve();
    });
  });
  const bound = (http.address() as AddressInfo).port;
  // An IPv6 literal needs brackets in a URL.
  const hostInUrl = host.includes(':') ? `[${host}]` : host;
  const secure = tls !== undefined;
  return {
    http,
    port: bound,
    url: `${secure ? 'wss' : 'ws'}://${hostInUrl}:${bound}/ws`,
    dashboardUrl: `${secure ? 'https' : 'http'}://${hostInUrl}:${bound}/`,
  };
}
