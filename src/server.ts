import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { pino, type Logger } from 'pino';
import { WebSocketServer } from 'ws';
import { systemClock, type Clock } from './concurrency/index.ts';
import { ConfigError, defaultConfig, type ServerConfig } from './config.ts';
import { Coordinator } from './coordinator/coordinator.ts';
import { ProgramService, shownLocation } from './service/index.ts';
import { Tokens } from './coordinator/tokens.ts';
import { Connection } from './transport/connection.ts';
import { serveDashboard } from './transport/dashboard-route.ts';
import { isLoopbackHost, originAllowed, parseOrigins, serverHostNames } from './transport/origin.ts';
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
  readonly coordinator: Coordinator;
  /** Drain: tell every session, close sockets with 1001, flush the store. Idempotent. */
  stop(reason?: string): Promise<void>;
}

/** How long stop() lets close handshakes finish before it cuts the remaining sockets. */
const CLOSE_GRACE_MS = 2_000;

/** Composes the store, the cores, the transport and the HTTP routes, and listens. */
export async function start(options: StartOptions = {}): Promise<LockstepServer> {
  const { logger: givenLogger, clock, ...overrides } = options;
  const config: ServerConfig = { ...defaultConfig(), ...stripUndefined(overrides) };
  const logger = givenLogger ?? pino({ level: config.logLevel });
  const tokens = loadTokens(config);
  if (!isLoopbackHost(config.host) && tokens.size === 0 && !config.insecure) {
    throw new ConfigError(
      `refusing to listen on ${config.host} without tokens: set --tokens-file or LOCKSTEP_TOKENS, or pass --insecure`,
    );
  }
  const allowedOrigins = parseOrigins(config.allowedOrigins);
  const hostNames = serverHostNames(config.host);
  const time = clock ?? systemClock;
  const programs = await ProgramService.open({ path: config.db, clock: time });
  const coordinator = new Coordinator({
    clock: time,
    programs,
    logger,
    version: VERSION,
    heartbeatMs: config.heartbeatMs,
    limits: {
      maxMessageBytes: config.maxMessageBytes,
      hardMaxMessageBytes: config.hardMaxMessageBytes,
      maxBufferedBytes: config.maxBufferedBytes,
      maxBatch: config.maxBatch,
      maxDescription: config.maxDescription,
      rateLimit: config.rateLimit,
      rateBurst: config.rateBurst,
      maxLocksPerSession: config.maxLocksPerSession,
      maxTicketsPerSession: config.maxTicketsPerSession,
    },
    tokens,
    lock: {
      defaultTtlMs: config.defaultTtlMs,
      minTtlMs: config.minTtlMs,
      maxTtlMs: config.maxTtlMs,
      warningMs: config.warningMs,
    },
    idleTimeoutMs: config.idleTimeoutMs,
    graceMs: config.sessionGraceMs,
    eventBuffer: config.eventBuffer,
  });

  // maxPayload is the hard cap: ws refuses to buffer more and closes with 1009. Messages between
  // the soft limit and the cap are answered with PAYLOAD_TOO_LARGE and the socket stays.
  // Compression is off: lock traffic is small, and deflate state costs ~300 KiB per socket.
  const wss = new WebSocketServer({ noServer: true, maxPayload: config.hardMaxMessageBytes, perMessageDeflate: false });
  const connections = new Set<Connection>();
  const pending = new Set<Connection>();
  wss.on('connection', (ws) => {
    // Over capacity the socket is accepted only to say why (1013) and closed: the client sees a
    // reason instead of a refused TCP connection it would retry at once.
    if (connections.size >= config.maxSessions || pending.size >= config.maxPending) {
      logger.warn({ connections: connections.size, pending: pending.size }, 'connection refused: server full');
      ws.close(1013, connections.size >= config.maxSessions ? 'too many sessions' : 'too many pending connections');
      return;
    }
    const conn = new Connection(ws, coordinator, logger, {
      helloTimeoutMs: config.helloTimeoutMs,
      onSession: () => pending.delete(conn),
    });
    connections.add(conn);
    pending.add(conn);
    ws.on('close', () => {
      connections.delete(conn);
      pending.delete(conn);
    });
  });

  const http = createServer((req, res) => route(req, res, coordinator));
  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (new URL(req.url ?? '/', 'http://x').pathname !== '/ws' || coordinator.draining) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
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
  logger.info({ url, dashboard: dashboardUrl, db: shownLocation(config.db) }, 'lockstep listening');

  let stopping: Promise<void> | undefined;
  const stop = (reason = 'shutdown') =>
    (stopping ??= (async () => {
      clearInterval(heartbeat);
      const closed = new Promise<void>((resolve) => http.close(() => resolve()));
      coordinator.shutdown(reason);
      await waitForSockets(wss);
      http.closeAllConnections();
      await closed;
      coordinator.close();
      await programs.close();
      logger.info({ reason }, 'lockstep stopped');
    })());

  return { port, host: config.host, url, dashboardUrl, coordinator, stop };
}

function route(req: IncomingMessage, res: ServerResponse, c: Coordinator): void {
  const path = new URL(req.url ?? '/', 'http://x').pathname;
  if (req.method === 'GET' && path === '/metrics') {
    void c.metrics.registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': c.metrics.registry.contentType }).end(text),
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
    return;
  }
  if (req.method === 'GET' && path === '/healthz') {
    void c.programs.ping().then((store) => {
      const body = {
        status: store && !c.draining ? 'ok' : c.draining ? 'draining' : 'degraded',
        uptimeMs: c.clock.now() - c.startedAt,
        sessions: c.sessions.size,
        store,
        version: VERSION,
      };
      res.writeHead(body.status === 'ok' ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
    return;
  }
  if (serveDashboard(req, res, path)) return;
  res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
}

function loadTokens(config: ServerConfig): Tokens {
  const tokens = new Tokens();
  try {
    if (config.tokensFile !== undefined) tokens.addFile(readFileSync(config.tokensFile, 'utf8'), config.tokensFile);
    if (config.tokens !== undefined) tokens.addList(config.tokens, '--tokens');
  } catch (err) {
    throw new ConfigError(err instanceof Error ? err.message : String(err));
  }
  return tokens;
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
async function waitForSockets(wss: WebSocketServer): Promise<void> {
  const closing = [...wss.clients].filter((ws) => ws.readyState !== ws.CLOSED);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(closing.map((ws) => new Promise((resolve) => ws.once('close', resolve)))),
    new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_GRACE_MS))),
  ]);
  clearTimeout(timer);
  for (const ws of wss.clients) ws.terminate();
  await new Promise<void>((resolve) => wss.close(() => resolve()));
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
