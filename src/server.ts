import type { Logger } from 'pino';
import { ClusterNode } from './cluster/index.ts';
import { systemClock, type Clock } from './concurrency/index.ts';
import { configOf, type ServerConfig, tlsOf, tokensOf } from './config.ts';
import type { Coordinator } from './coordinator/index.ts';
import { closeLeaderState, endLeaderState, type LeaderState, openLeaderState } from './leader-state.ts';
import { createLogger } from './logger.ts';
import { nodeEndpoints } from './node-status.ts';
import { isPostgresLocation, shownLocation } from './service/index.ts';
import { httpRoutes } from './transport/http-routes.ts';
import { type HttpEndpoint, listenHttp } from './transport/http-server.ts';
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
  // Read before the store is opened, so that a bad certificate leaves nothing open.
  const tls = tlsOf(config);

  // The leader state: on SQLite built once, here; in cluster mode (a PostgreSQL store) by the
  // ClusterNode each time this node becomes leader, once the address it advertises is known.
  const solo = isPostgresLocation(config.db) ? undefined : await openLeaderState(parts);

  let endpoint: HttpEndpoint;
  try {
    endpoint = await listenHttp(config.host, config.port, tls);
  } catch (err) {
    // The port is taken (or not ours to bind): the store's file and its lock are let go.
    if (solo !== undefined) await closeLeaderState(solo);
    throw err;
  }
  const { http, port, url, dashboardUrl } = endpoint;

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
