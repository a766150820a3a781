import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { type WebSocket, WebSocketServer } from 'ws';
import { ClusterNode, clearJournal, Failover, type LeaderContext } from './cluster/index.ts';
import { systemClock, type Clock } from './concurrency/index.ts';
import { ConfigError, configOf, limitsOf, lockDefaultsOf, type ServerConfig, sessionGraceOf } from './config.ts';
import { type Coordinator, CoordinatorPort, Tokens } from './coordinator/index.ts';
import { CloseCode } from './protocol/close-codes.ts';
import { LockstepError } from './protocol/errors.ts';
import { isStructure } from './protocol/resource.ts';
import { isPostgresLocation, ProgramService, StoreError, shownLocation } from './service/index.ts';
import { Connection } from './transport/connection.ts';
import { serveDashboard } from './transport/dashboard-route.ts';
import { refuseNotLeader } from './transport/not-leader.ts';
import { isLoopbackHost, originAllowed, parseOrigins, serverHostNames } from './transport/origin.ts';
import { createLogger } from './logger.ts';
import { VERSION } from './version.ts';

export interface StartOptions extends Partial<ServerConfig> {
  logger?: Logger;
  clock?: Clock;
}

export interface LockstepServer {
  readonly port: number;
  readonly host: string;
  /** ws://host:port/ws */
  readonly url: string;
  /** http://host:port/, where the dashboard is. */
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

/** How long stop() lets close handshakes finish before it cuts the remaining sockets. */
const CLOSE_GRACE_MS = 2_000;

/** One leadership's worth of state (the whole of it on SQLite): built together, dropped together. */
interface LeaderState {
  programs: ProgramService;
  coordinator: CoordinatorPort;
  /** Cluster mode with resume grace: what the previous leader journaled, and this one's journal. */
  failover: Failover | undefined;
  /** Its sockets: closed with 4002 when a cluster node steps down. */
  connections: Map<Connection, WebSocket>;
}

/** Composes the store, the cores, the transport and the HTTP routes, and listens. */
export async function start(options: StartOptions = {}): Promise<LockstepServer> {
  const { logger: givenLogger, clock, ...overrides } = options;
  const config = configOf(overrides);
  const logger = givenLogger ?? createLogger(config);
  const tokens = loadTokens(config);
  if (!isLoopbackHost(config.host) && tokens.size === 0 && !config.insecure) {
    throw new ConfigError(
      `refusing to listen on ${config.host} without tokens: set --tokens-file or LOCKSTEP_TOKENS, or pass --insecure`,
    );
  }
  const allowedOrigins = parseOrigins(config.allowedOrigins);
  const hostNames = serverHostNames(config.host);
  const time = clock ?? systemClock;
  const startedAt = time.now();

  // The leader state: on SQLite built once here; in cluster mode (a PostgreSQL store) built by
  // the ClusterNode each time this node becomes leader, with the lease's checks (src/cluster).
  const clustered = isPostgresLocation(config.db);
  const openLeader = async (leader?: LeaderContext): Promise<LeaderState> => {
    const programs = await ProgramService.open({
      path: config.db,
      clock: time,
      ...(leader === undefined ? {} : { leader: leader.store }),
    });
    const failover = await startFailover(programs, config, time, logger);
    const coordinator = new CoordinatorPort({
      clock: time,
      programs,
      logger,
      version: VERSION,
      heartbeatMs: config.heartbeatMs,
      maxSessions: config.maxSessions,
      limits: limitsOf(config),
      tokens,
      lock: { ...lockDefaultsOf(config), queuePushMs: config.queuePushMs },
      idleTimeoutMs: config.idleTimeoutMs,
      graceMs: sessionGraceOf(config, clustered),
      eventBuffer: config.eventBuffer,
      ...(leader === undefined ? {} : { serving: leader.serving }),
      ...(failover === undefined ? {} : { failover }),
    });
    return { programs, coordinator, failover, connections: new Map() };
  };
  const solo = clustered ? undefined : await openLeader();
  let cluster: ClusterNode<LeaderState> | undefined;
  const leader = (): LeaderState | undefined => solo ?? cluster?.current();

  // maxPayload is the hard cap: ws refuses to buffer more and closes with 1009. Messages between
  // the soft limit and the cap are answered with PAYLOAD_TOO_LARGE and the socket stays.
  // Compression is off: lock traffic is small, and deflate state costs ~300 KiB per socket.
  const wss = new WebSocketServer({ noServer: true, maxPayload: config.hardMaxMessageBytes, perMessageDeflate: false });
  const connections = new Set<Connection>();
  const pending = new Set<Connection>();
  wss.on('connection', (ws) => {
    const state = leader();
    if (state === undefined) {
      // A standby (or a node still starting): NOT_LEADER naming the leader, then 4002.
      refuseNotLeader(ws, () => cluster?.notLeader() ?? startingUp(config.leaseRenewMs), config.helloTimeoutMs);
      return;
    }
    // Over capacity the socket is accepted only to say why (1013) and closed: the client sees a
    // reason instead of a refused TCP connection it would retry at once.
    if (connections.size >= config.maxSessions || pending.size >= config.maxPending) {
      logger.warn({ connections: connections.size, pending: pending.size }, 'connection refused: server full');
      ws.close(
        CloseCode.TRY_AGAIN_LATER,
        connections.size >= config.maxSessions ? 'too many sessions' : 'too many pending connections',
      );
      return;
    }
    const conn = new Connection(ws, state.coordinator, logger, {
      helloTimeoutMs: config.helloTimeoutMs,
      onSession: () => pending.delete(conn),
    });
    connections.add(conn);
    pending.add(conn);
    state.connections.set(conn, ws);
    ws.on('close', () => {
      connections.delete(conn);
      pending.delete(conn);
      state.connections.delete(conn);
    });
  });

  const http = createServer((req, res) => route(req, res, { leader, cluster: () => cluster, startedAt, time }));
  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const draining = leader()?.coordinator.draining === true;
    if (path !== '/ws' || draining) {
      // A client pointed at the wrong path sees a bare 404 otherwise; this says where to go.
      const body = draining ? 'server is shutting down\n' : `no WebSocket endpoint at ${path}: use /ws\n`;
      socket.end(
        `HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
      return;
    }
    if (!originAllowed(req, hostNames, allowedOrigins)) {
      logger.warn({ origin: req.headers.origin, host: req.headers.host }, 'upgrade refused: origin not allowed');
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });

  const heartbeat = setInterval(() => {
    for (const conn of connections) conn.heartbeat();
  }, config.heartbeatMs);
  heartbeat.unref();

  await listen(http, config.port, config.host);
  const port = (http.address() as AddressInfo).port;
  // An IPv6 literal needs brackets in a URL.
  const hostInUrl = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `ws://${hostInUrl}:${port}/ws`;
  const dashboardUrl = `http://${hostInUrl}:${port}/`;

  /** The orderly end of a leader state: tell every session, close sockets with 1001, flush the store. */
  const drain = async (state: LeaderState, reason: string) => {
    state.coordinator.shutdown(reason);
    await waitForSockets([...state.connections.values()]);
    state.coordinator.close();
    await state.failover?.close();
    await state.programs.close();
  };
  if (clustered) {
    cluster = new ClusterNode<LeaderState>({
      db: config.db,
      advertise: config.advertise ?? url,
      ttlMs: config.leaseTtlMs,
      renewMs: config.leaseRenewMs,
      driftMs: config.leaseDriftMs,
      logger,
      states: {
        open: openLeader,
        // Stepping down: every socket closed with 4002 at once (their sessions go with the state),
        // then timers and the store's connections.
        async discard(state, reason) {
          for (const conn of state.connections.keys())
            conn.close(CloseCode.NOT_LEADER, `no longer the leader (${reason})`);
          state.coordinator.close();
          // A deposed leader's journal writes are refused by the lease check; the next leader
          // restores from what was written while this one led.
          await state.failover?.close().catch(() => undefined);
          await state.programs.close();
          await waitForSockets([...state.connections.values()]);
        },
      },
    });
    try {
      await cluster.start();
    } catch (err) {
      await cluster.stop((state) => drain(state, 'start-up failed'));
      await new Promise<void>((resolve) => http.close(() => resolve()));
      throw err;
    }
  }
  logger.info(
    { url, dashboard: dashboardUrl, db: shownLocation(config.db), ...(cluster === undefined ? {} : cluster.status()) },
    'lockstep listening',
  );

  let stopping: Promise<void> | undefined;
  const stop = (reason = 'shutdown') =>
    (stopping ??= (async () => {
      clearInterval(heartbeat);
      const closed = new Promise<void>((resolve) => http.close(() => resolve()));
      if (solo !== undefined) await drain(solo, reason);
      else await cluster?.stop((state) => drain(state, reason));
      await waitForSockets([...wss.clients]);
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      http.closeAllConnections();
      await closed;
      logger.info({ reason }, 'lockstep stopped');
    })());

  const inspect = () => {
    const state = leader();
    if (state === undefined) throw new Error('this node is not the leader: there is no coordinator to inspect');
    return state.coordinator.inspect();
  };
  const backup = async (to: string) => {
    const state = leader();
    if (state === undefined || clustered)
      throw new Error('a PostgreSQL store is backed up with pg_dump (docs/operations.md), not by the server');
    await state.programs.backup(to);
    logger.info({ path: to }, 'backup written');
  };
  return { port, host: config.host, url, dashboardUrl, inspect, backup, stop };
}

/**
 * Cluster mode (a PostgreSQL store): with resume grace on, what the previous leader journaled is
 * restored to the sessions that resume, and this leader journals in turn (src/cluster). SQLite:
 * nothing, exactly as a single server always was.
 */
async function startFailover(
  programs: ProgramService,
  config: ServerConfig,
  clock: Clock,
  logger: Logger,
): Promise<Failover | undefined> {
  const db = programs.database();
  if (db === undefined) return undefined;
  try {
    if (sessionGraceOf(config, true) === 0) {
      await clearJournal(db);
      return undefined;
    }
    return await Failover.open(db, {
      clock,
      logger,
      // A reply waits for its record at most a lease: a leader that cannot reach the database
      // that long steps down anyway (docs/cluster.md, "What is durable when").
      waitMs: config.leaseTtlMs,
      exists: (r) => programs.hasProgram(r.program) && (isStructure(r) || programs.hasFunction(r.program, r.function)),
    });
  } catch (err) {
    await programs.close();
    throw new StoreError(shownLocation(config.db), 'its lock journal cannot be read', err);
  }
}

interface RouteState {
  leader(): LeaderState | undefined;
  cluster(): ClusterNode<LeaderState> | undefined;
  startedAt: number;
  time: Clock;
}

function route(req: IncomingMessage, res: ServerResponse, r: RouteState): void {
  const path = new URL(req.url ?? '/', 'http://x').pathname;
  if (req.method === 'GET' && path === '/metrics') {
    void metricsText(r).then(
      ({ contentType, text }) => res.writeHead(200, { 'content-type': contentType }).end(text),
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
    return;
  }
  if (req.method === 'GET' && path === '/healthz') {
    void health(r).then(({ ok, body }) => {
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
    return;
  }
  if (serveDashboard(req, res, path)) return;
  res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
}

/**
 * 200 only from a leader whose store answers. In cluster mode the body adds role, epoch and the
 * leader's URL, and a standby answers 503, so a load balancer sends traffic to the leader only.
 */
async function health(r: RouteState): Promise<{ ok: boolean; body: Record<string, unknown> }> {
  const state = r.leader();
  const cluster = r.cluster();
  if (state !== undefined) {
    const h = await state.coordinator.health();
    return { ok: h.status === 'ok', body: { ...h, ...cluster?.status(), version: VERSION } };
  }
  const body = {
    status: 'standby',
    uptimeMs: r.time.now() - r.startedAt,
    sessions: 0,
    store: cluster?.storeAnswered ?? false,
    ...(cluster?.status() ?? { role: 'standby', epoch: 0, leader: null }),
    version: VERSION,
  };
  return { ok: false, body };
}

/** The coordinator's metrics on the leader, process metrics on a standby; the node's on both. */
async function metricsText(r: RouteState): Promise<{ contentType: string; text: string }> {
  const state = r.leader();
  const own = state === undefined ? undefined : await state.coordinator.metrics();
  const node = r.cluster()?.metrics;
  const parts = [
    own?.text ?? (node === undefined ? '' : await node.standbyRegistry.metrics()),
    node === undefined ? '' : await node.registry.metrics(),
  ];
  return { contentType: own?.contentType ?? Registry.PROMETHEUS_CONTENT_TYPE, text: parts.join('') };
}

/** A cluster node that has not looked at its lease yet: a standby that knows no leader. */
function startingUp(retryAfterMs: number): LockstepError {
  return new LockstepError('NOT_LEADER', 'this node is starting up', { leader: null }, retryAfterMs);
}

function loadTokens(config: ServerConfig): Tokens {
  const tokens = new Tokens();
  try {
    if (config.tokensFile !== undefined) tokens.addFile(readTokensFile(config.tokensFile), config.tokensFile);
    if (config.tokens !== undefined) tokens.addList(config.tokens, '--tokens');
  } catch (err) {
    throw new ConfigError(err instanceof Error ? err.message : String(err));
  }
  return tokens;
}

function readTokensFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const why = err instanceof Error && 'code' in err && err.code === 'ENOENT' ? 'no such file' : String(err);
    throw new ConfigError(`--tokens-file (LOCKSTEP_TOKENS_FILE): cannot read ${JSON.stringify(path)}: ${why}`);
  }
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

/** Waits for the close handshakes, then terminates whatever did not answer in time. */
async function waitForSockets(sockets: readonly WebSocket[]): Promise<void> {
  const closing = sockets.filter((ws) => ws.readyState !== ws.CLOSED);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(closing.map((ws) => new Promise((resolve) => ws.once('close', resolve)))),
    new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_GRACE_MS))),
  ]);
  clearTimeout(timer);
  for (const ws of sockets) ws.terminate();
}
