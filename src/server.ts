import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { ClusterNode } from './cluster/index.ts';
import { systemClock, type Clock } from './concurrency/index.ts';
import { ConfigError, configOf, type ServerConfig, tokensOf } from './config.ts';
import type { Coordinator } from './coordinator/index.ts';
import { endLeaderState, type LeaderState, openLeaderState } from './leader-state.ts';
import { createLogger } from './logger.ts';
import { nodeEndpoints } from './node-status.ts';
import { isPostgresLocation, shownLocation } from './service/index.ts';
import { httpRoutes } from './transport/http-routes.ts';
import { parseOrigins, serverHostNames } from './transport/origin.ts';
import { SocketServer } from './transport/socket-server.ts';

export interface StartOptions extends Partial<ServerConfig> {
  logger?: Logger;
  clock?: Clock;
}

export interface LockstepServer {
  readonly port: number;
  readonly host: string;
  /** ws://host:port/ws (wss:// with --tls-cert) */
  readonly url: string;
  /** http://host:port/ (https:// with --tls-cert), where the dashboard is. */
  readonly dashboardUrl: string;
  /** For tests only: the coordinator's parts, to observe or provoke what the wire cannot show. */
  inspect(): Coordinator;
  /**
   * A consistent copy of the SQLite store to `to` while the server runs (docs/operations.md);
   * `lockstep serve` takes one on SIGUSR2. A PostgreSQL store refuses: pg_dump does it.
   */
  backup(to: string): Promise<void>;
  /** Drain: tell every session, close sockets with 1001, flush the store. Idempotent. */
  stop(reason?: string): Promise<void>;
}

/** Composes the store, the cores, the transport and the HTTP routes, and listens. */
export async function start(options: StartOptions = {}): Promise<LockstepServer> {
  const { logger: givenLogger, clock = systemClock, ...overrides } = options;
  const config = configOf(overrides);
  const logger = givenLogger ?? createLogger(config);
  const parts = { config, clock, logger, tokens: tokensOf(config) };
  const startedAt = clock.now();
  // With a certificate the same routes and socket endpoint are served over TLS (wss://, https://);
  // read before the store is opened, so that a bad one leaves nothing open.
  const tls = tlsOf(config);

  // The leader state: on SQLite built once, here; in cluster mode (a PostgreSQL store) by the
  // ClusterNode each time this node becomes leader, once the address it advertises is known.
  const solo = isPostgresLocation(config.db) ? undefined : await openLeaderState(parts);

  const http = tls === undefined ? createServer() : tlsServer(tls);
  await listen(http, config.port, config.host);
  const port = (http.address() as AddressInfo).port;
  // An IPv6 literal needs brackets in a URL.
  const hostInUrl = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `${tls === undefined ? 'ws' : 'wss'}://${hostInUrl}:${port}/ws`;
  const dashboardUrl = `${tls === undefined ? 'http' : 'https'}://${hostInUrl}:${port}/`;

  // Nothing is read from the port before this function next waits: the routes and the socket
  // server below are in place before the first request.
  const cluster =
    solo !== undefined
      ? undefined
      : new ClusterNode<LeaderState>({
          db: config.db,
          advertise: config.advertise ?? url,
          ttlMs: config.leaseTtlMs,
          renewMs: config.leaseRenewMs,
          driftMs: config.leaseDriftMs,
          logger,
          states: {
            open: (leadership) => openLeaderState(parts, leadership),
            discard: (state, reason) => endLeaderState(state, sockets, { stepDown: reason }),
          },
        });
  const leader = () => solo ?? cluster?.current();
  http.on('request', httpRoutes(nodeEndpoints({ leader, cluster, startedAt, clock })));
  const sockets = new SocketServer(http, {
    logger,
    hardMaxMessageBytes: config.hardMaxMessageBytes,
    maxSessions: config.maxSessions,
    maxPending: config.maxPending,
    helloTimeoutMs: config.helloTimeoutMs,
    heartbeatMs: config.heartbeatMs,
    hostNames: serverHostNames(config.host),
    allowedOrigins: parseOrigins(config.allowedOrigins),
    // No leader state: a cluster node that does not lead.
    serving: () => leader()?.coordinator ?? cluster!.notLeader(),
  });

  let stopping: Promise<void> | undefined;
  const stop = (reason = 'shutdown') =>
    (stopping ??= (async () => {
      const closed = new Promise<void>((resolve) => http.close(() => resolve()));
      const drain = (state: LeaderState) => endLeaderState(state, sockets, { drain: reason });
      if (solo !== undefined) await drain(solo);
      else await cluster?.stop(drain);
      await sockets.close();
      http.closeAllConnections();
      await closed;
      logger.info({ reason }, 'lockstep stopped');
    })());

  try {
    await cluster?.start();
  } catch (err) {
    await stop('start-up failed');
    throw err;
  }
  logger.info(
    { url, dashboard: dashboardUrl, db: shownLocation(config.db), ...(cluster === undefined ? {} : cluster.status()) },
    'lockstep listening',
  );

  const inspect = () => {
    const state = leader();
    if (state === undefined) throw new Error('this node is not the leader: there is no coordinator to inspect');
    return state.coordinator.inspect();
  };
  const backup = async (to: string) => {
    if (solo === undefined)
      throw new Error('a PostgreSQL store is backed up with pg_dump (docs/operations.md), not by the server');
    await solo.programs.backup(to);
    logger.info({ path: to }, 'backup written');
  };
  return { port, host: config.host, url, dashboardUrl, inspect, backup, stop };
}

function listen(http: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    http.once('error', reject);
    http.listen(port, host, () => {
      http.off('error', reject);
      resolve();
    });
  });
}

/** The certificate and key of --tls-cert and --tls-key, read once at start; none: plain ws://. */
function tlsOf(config: ServerConfig): { cert: Buffer; key: Buffer } | undefined {
  if (config.tlsCert === undefined || config.tlsKey === undefined) return undefined;
  const read = (path: string, option: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      const why = err instanceof Error && 'code' in err && err.code === 'ENOENT' ? 'no such file' : String(err);
      throw new ConfigError(`${option}: cannot read ${JSON.stringify(path)}: ${why}`);
    }
  };
  return { cert: read(config.tlsCert, '--tls-cert'), key: read(config.tlsKey, '--tls-key') };
}

function tlsServer(tls: { cert: Buffer; key: Buffer }): Server {
  try {
    return createTlsServer(tls);
  } catch (err) {
    throw new ConfigError(
      `--tls-cert and --tls-key: not a PEM certificate and its private key (${err instanceof Error ? err.message : String(err)})`,
    );
  }
}
