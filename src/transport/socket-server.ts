import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { type WebSocket, WebSocketServer } from 'ws';
import type { CoordinatorPort } from '../coordinator/index.ts';
import { CloseCode } from '../protocol/close-codes.ts';
import { LockstepError } from '../protocol/errors.ts';
import { Connection } from './connection.ts';
import { pathOf, refuseUpgrade } from './http-routes.ts';
import { refuseNotLeader } from './not-leader.ts';
import { originAllowed } from './origin.ts';

/** How long a closing socket's handshake may take before the socket is cut. */
const CLOSE_GRACE_MS = 2_000;

export interface SocketServerOptions {
  logger: Logger;
  /** Frames above this are not buffered whole: ws closes the socket with 1009. */
  hardMaxMessageBytes: number;
  maxSessions: number;
  maxPending: number;
  helloTimeoutMs: number;
  heartbeatMs: number;
  /** The names this server answers to, and other origins allowed (src/transport/origin.ts). */
  hostNames: ReadonlySet<string>;
  allowedOrigins: ReadonlySet<string>;
  /**
   * The coordinator that serves a new socket, or, on a cluster node that does not lead, the
   * NOT_LEADER (naming the leader) the socket is answered with before it is closed with 4002.
   */
  serving(): CoordinatorPort | LockstepError;
}

/**
 * The WebSocket endpoint on the HTTP server: which upgrades are taken (/ws, allowed origins, not
 * while draining), which sockets are admitted (the session and pending caps), one Connection per
 * admitted socket, their heartbeat, and each coordinator's sockets, to close and wait for.
 */
export class SocketServer {
  private readonly wss: WebSocketServer;
  private readonly connections = new Set<Connection>();
  /** Connections that have not said hello yet. */
  private readonly pending = new Set<Connection>();
  /** The sockets of each coordinator (one per leader state): closed with it. */
  private readonly sockets = new Map<CoordinatorPort, Map<Connection, WebSocket>>();
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    http: Server,
    private readonly o: SocketServerOptions,
  ) {
    // maxPayload is the hard cap: ws refuses to buffer more and closes with 1009. Messages between
    // the soft limit and the cap are answered with PAYLOAD_TOO_LARGE and the socket stays.
    // Compression is off: lock traffic is small, and deflate state costs ~300 KiB per socket.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: o.hardMaxMessageBytes, perMessageDeflate: false });
    this.wss.on('connection', (ws) => this.admit(ws));
    http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head));
    this.heartbeat = setInterval(() => {
      for (const conn of this.connections) conn.heartbeat();
    }, o.heartbeatMs);
    this.heartbeat.unref();
  }

  /** Closes every socket of `coordinator` at once with `code` (a step-down: 4002). */
  closeAll(coordinator: CoordinatorPort, code: number, reason: string): void {
    for (const conn of this.sockets.get(coordinator)?.keys() ?? []) conn.close(code, reason);
  }

  /** Waits for the close handshakes of `coordinator`'s sockets, then cuts those that did not answer. */
  async settle(coordinator: CoordinatorPort): Promise<void> {
    await waitForSockets([...(this.sockets.get(coordinator)?.values() ?? [])]);
    this.sockets.delete(coordinator);
  }

  /** Stops the heartbeat, lets every socket left (a standby's refusals too) close, and closes. */
  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    await waitForSockets([...this.wss.clients]);
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = pathOf(req);
    const serving = this.o.serving();
    const draining = !(serving instanceof LockstepError) && serving.draining;
    if (path !== '/ws' || draining) {
      refuseUpgrade(
        socket,
        404,
        draining ? 'server is shutting down\n' : `no WebSocket endpoint at ${path}: use /ws\n`,
      );
      return;
    }
    if (!originAllowed(req, this.o.hostNames, this.o.allowedOrigins)) {
      this.o.logger.warn({ origin: req.headers.origin, host: req.headers.host }, 'upgrade refused: origin not allowed');
      refuseUpgrade(socket, 403);
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.wss.emit('connection', ws, req));
  }

  private admit(ws: WebSocket): void {
    const coordinator = this.o.serving();
    if (coordinator instanceof LockstepError) {
      refuseNotLeader(ws, coordinator, this.o.helloTimeoutMs);
      return;
    }
    const { connections, pending } = this;
    // Over capacity the socket is accepted only to say why (1013) and closed: the client sees a
    // reason instead of a refused TCP connection it would retry at once.
    if (connections.size >= this.o.maxSessions || pending.size >= this.o.maxPending) {
      this.o.logger.warn({ connections: connections.size, pending: pending.size }, 'connection refused: server full');
      ws.close(
        CloseCode.TRY_AGAIN_LATER,
        connections.size >= this.o.maxSessions ? 'too many sessions' : 'too many pending connections',
      );
      return;
    }
    const conn = new Connection(ws, coordinator, this.o.logger, {
      helloTimeoutMs: this.o.helloTimeoutMs,
      onSession: () => pending.delete(conn),
    });
    connections.add(conn);
    pending.add(conn);
    const mine = this.sockets.get(coordinator) ?? new Map<Connection, WebSocket>();
    this.sockets.set(coordinator, mine);
    mine.set(conn, ws);
    ws.on('close', () => {
      connections.delete(conn);
      pending.delete(conn);
      mine.delete(conn);
    });
  }
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
