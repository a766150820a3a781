import type { Logger } from 'pino';
import { v4 as uuidv4 } from 'uuid';
import type { Failover } from '../cluster/index.ts';
import { LockManager, SessionRegistry, type Clock, type SessionInfo } from '../concurrency/index.ts';
import { CloseCode } from '../protocol/close-codes.ts';
import { LockstepError } from '../protocol/errors.ts';
import { DEFAULT_PROGRAM, type Limits } from '../protocol/limits.ts';
import type { NotificationName, NotificationParams } from '../protocol/notifications.ts';
import type { FenceSource, ProgramService } from '../service/index.ts';
import { EditPins } from './edit-pins.ts';
import { EventLog } from './event-log.ts';
import { JournalGate } from './journal-gate.ts';
import { bridgeLockEvents } from './lock-events.ts';
import { Metrics } from './metrics.ts';
import type { Tokens } from './tokens.ts';
import type { Sink } from './sink.ts';
import { Subscriptions } from './subscriptions.ts';
import { Watches } from './watches.ts';
import { iso } from './wire-map.ts';

// Part of what a coordinator is built with; declared with the protocol, which tells clients.
export type { Limits };

/**
 * dropped: the socket died (error, missed pongs, abnormal close); closed: the client closed it on
 * purpose; idle and shutdown: the server closed it.
 */
export type DisconnectReason = 'dropped' | 'closed' | 'idle' | 'shutdown';

// Declared apart, so that the parts the coordinator is made of can take sinks without importing it.
export type { Sink };

export interface CoordinatorOptions {
  clock: Clock;
  programs: ProgramService;
  logger: Logger;
  version: string;
  heartbeatMs: number;
  limits: Limits;
  lock?: { defaultTtlMs?: number; minTtlMs?: number; maxTtlMs?: number; warningMs?: number; queuePushMs?: number };
  idleTimeoutMs?: number;
  graceMs?: number;
  eventBuffer?: number;
  /** The server's connection cap (--max-sessions): only shown in /metrics, enforced by the server. */
  maxSessions?: number;
  /** Access tokens; when empty, no token is asked for. */
  tokens?: Tokens;
  /** Cluster mode with resume grace: what the previous leader left, and this leader's journal. */
  failover?: Failover;
  /**
   * Cluster mode: false once this node may no longer grant or reply (its lease deadline passed;
   * the first false steps it down). Asked before every grant; the transport asks before every
   * frame it writes. Absent (one node on SQLite): always serving.
   */
  serving?: () => boolean;
}

/**
 * The application layer: composes the lock core, the session registry and the program service,
 * owns who is told what, and answers one method call at a time. It knows nothing of sockets; the
 * transport hands it a Sink per session. Its parts are for the handlers of this layer; everyone
 * else reaches it through CoordinatorPort (index.ts).
 */
export class Coordinator {
  readonly clock: Clock;
  readonly locks: LockManager;
  readonly sessions: SessionRegistry;
  readonly programs: ProgramService;
  readonly events: EventLog;
  readonly watches = new Watches();
  readonly subscriptions = new Subscriptions((sessionId, item) => this.notify(sessionId, 'event', item));
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Locks of edits in commit: a release or downgrade of one waits for its commit. */
  readonly pins: EditPins;
  /** Identifies this run of the server: event sequence numbers are only meaningful within one. */
  readonly runId = uuidv4();
  draining = false;

  private readonly sinks = new Map<string, Sink>();
  /** Cluster mode with a journal: replies and pushes that tell of lock changes wait for it. */
  private readonly gate: JournalGate | undefined;
  /** Edits being committed, per session: a disconnect releases the session's locks after them. */
  private readonly commits = new Map<string, Set<Promise<unknown>>>();

  constructor(readonly options: CoordinatorOptions) {
    this.clock = options.clock;
    this.programs = options.programs;
    this.logger = options.logger;
    this.events = new EventLog(options.clock, options.eventBuffer);
    this.locks = new LockManager({
      clock: options.clock,
      // A holder hears that others queue behind it at once, then at most once a second.
      waitersPushMs: 1_000,
      ...options.lock,
      fences: guardedFences(options.programs.fences(), options.serving),
      sessionName: (id) => this.sessions.nameOf(id),
    });
    this.sessions = new SessionRegistry({
      clock: options.clock,
      locks: this.locks,
      ...(options.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: options.idleTimeoutMs }),
      ...(options.graceMs === undefined ? {} : { graceMs: options.graceMs }),
    });
    this.metrics = new Metrics(this.locks, this.sessions, {
      clock: options.clock,
      ping: () => options.programs.ping(),
      maxSessions: options.maxSessions ?? Number.POSITIVE_INFINITY,
    });
    this.pins = new EditPins(this.locks);
    // The journal listens first: a push made from a lock event then waits for the record of the
    // very change it tells of (JournalGate.push takes the journal's head).
    options.failover?.start(this.locks, this.sessions);
    this.gate =
      options.failover === undefined
        ? undefined
        : new JournalGate(
            options.failover.journal,
            (id) => this.sinks.get(id),
            (id) => this.dropSlow(id, 'too many pushes waiting for the lock journal'),
          );
    bridgeLockEvents(this);
    this.bridgeSessionEvents();
    this.events.on('event', (item) => this.subscriptions.deliver(item));
  }

  /**
   * Binds a new or resumed session to its connection. A resume may come before the old socket is
   * known dead (pongs are missed only later): the old connection is closed so that one session
   * never speaks through two sockets.
   */
  attach(session: SessionInfo, sink: Sink): void {
    const old = this.sinks.get(session.id);
    this.sinks.set(session.id, sink);
    if (old !== undefined && old !== sink) {
      this.gate?.forget(session.id);
      old.close(CloseCode.SESSION_RESUMED, 'session resumed on another connection');
    }
  }

  /**
   * The connection is gone, however it went: everything the session had goes now, in this tick.
   * Only a socket that dropped (not one the client closed on purpose) keeps its locks for the
   * resume grace, when that is on.
   */
  disconnect(sessionId: string, why: DisconnectReason, sink?: Sink): void {
    const current = this.sinks.get(sessionId);
    // A stale connection closing late must not tear down the session a newer one resumed.
    if (current === undefined || (sink !== undefined && current !== sink)) return;
    this.sinks.delete(sessionId);
    this.gate?.forget(sessionId);
    this.subscriptions.drop(sessionId);
    this.watches.dropSession(sessionId);
    const end = () => {
      if (why === 'dropped') this.sessions.detach(sessionId);
      else this.sessions.remove(sessionId, why === 'closed' ? 'disconnect' : why);
    };
    const commits = this.commits.get(sessionId);
    if (commits === undefined) end();
    else void Promise.allSettled(commits).then(end);
  }

  /**
   * Tracks an edit of the session until it settles (see disconnect). Pass the promise the call
   * answers with: the session then ends after the call's after-reply work too.
   */
  committing<T>(sessionId: string, commit: Promise<T>): Promise<T> {
    let commits = this.commits.get(sessionId);
    if (commits === undefined) {
      commits = new Set();
      this.commits.set(sessionId, commits);
    }
    const tracked = commits;
    tracked.add(commit);
    const settled = () => {
      tracked.delete(commit);
      if (tracked.size === 0 && this.commits.get(sessionId) === tracked) this.commits.delete(sessionId);
    };
    commit.then(settled, settled);
    return commit;
  }

  /**
   * A push to the session. `change`: it tells the session of a change of its locks (lock.granted,
   * lock.expired), so in cluster mode it waits for the journal, and later pushes queue behind it.
   */
  notify<N extends NotificationName>(
    sessionId: string,
    method: N,
    params: NotificationParams<N>,
    change = false,
  ): void {
    if (this.gate === undefined) this.sinks.get(sessionId)?.notify(method, params);
    else this.gate.push(sessionId, method, params, change);
  }

  /**
   * The reply of a call that changed locks: in cluster mode only once the journal has that change
   * and every one before it; refused with STORE_UNAVAILABLE past the journal's wait, after `undo`
   * (what a refused call leaves: docs/protocol.md). Elsewhere the result as it is.
   */
  durable<T>(result: T, undo?: () => unknown): T | Promise<T> {
    return this.gate === undefined ? result : this.gate.reply(result, undo);
  }

  /** Whether replies of lock changes wait for a journal (cluster mode with resume grace). */
  get journaled(): boolean {
    return this.gate !== undefined;
  }

  nameOf(sessionId: string): string {
    return this.sessions.nameOf(sessionId) ?? sessionId;
  }

  by(session: SessionInfo): { sessionId: string; name: string } {
    return { sessionId: session.id, name: session.name };
  }

  /** The program a call names (default DEFAULT_PROGRAM), which must exist. */
  programOf(p: { program?: string | undefined }): string {
    const program = p.program ?? DEFAULT_PROGRAM;
    this.requireProgram(program);
    return program;
  }

  requireProgram(program: string): void {
    if (!this.programs.hasProgram(program)) {
      throw new LockstepError('NOT_FOUND', `unknown program "${program}"`, { program });
    }
  }

  /** Tells every session the server is draining, then closes their sockets with 1001. */
  shutdown(reason: string): void {
    this.draining = true;
    // Before any session ends: a holder's end must not hand its locks to a waiter told next.
    this.locks.drain();
    for (const [id, sink] of [...this.sinks]) {
      sink.notify('server.shutdown', { reason });
      sink.close(CloseCode.GOING_AWAY, 'server shutting down');
      this.disconnect(id, 'shutdown');
    }
  }

  close(): void {
    this.sessions.close();
    this.locks.close();
  }

  /** Closes a session's socket as a slow consumer's (1013); its session goes as after a drop. */
  private dropSlow(sessionId: string, reason: string): void {
    this.logger.warn({ sessionId }, reason);
    this.metrics.slowConsumers.inc();
    this.sinks.get(sessionId)?.close(CloseCode.TRY_AGAIN_LATER, reason);
    this.disconnect(sessionId, 'dropped');
  }

  private bridgeSessionEvents(): void {
    const agent = (s: SessionInfo) => ({
      sessionId: s.id,
      name: s.name,
      role: s.role,
      connectedAt: iso(s.connectedAt),
    });
    this.sessions.on('joined', (s) => {
      this.logger.info({ sessionId: s.id, name: s.name, role: s.role }, 'session started');
      this.events.append('agents', 'joined', () => agent(s));
    });
    this.sessions.on('left', ({ session, reason }) => {
      this.logger.info({ sessionId: session.id, name: session.name, reason }, 'session ended');
      this.events.append('agents', 'left', () => ({ ...agent(session), reason }));
    });
    this.sessions.on('detached', (s) => this.events.append('agents', 'detached', () => agent(s)));
    this.sessions.on('resumed', (s) => this.events.append('agents', 'resumed', () => agent(s)));
    this.sessions.on('idle', (s) => {
      this.logger.info({ sessionId: s.id, name: s.name }, 'idle timeout');
      this.sinks.get(s.id)?.close(CloseCode.IDLE_TIMEOUT, 'idle timeout');
      this.disconnect(s.id, 'idle');
    });
  }
}

/**
 * Every grant takes a fence: the narrowest point of the lock core's grant path, wherever the grant
 * comes from (a call, a release, an expiry, a disconnect). Past the deadline the check steps the
 * node down; the grant still completes in memory, which is discarded with all leader state before
 * anything more is written to a socket (the transport asks `serving` before every frame), so no
 * grant made past the deadline is ever seen. Throwing instead would tear the lock core's state
 * mid-move, on paths (timers, socket close handlers) that have no caller to catch it.
 */
function guardedFences(fences: FenceSource, serving: (() => boolean) | undefined): FenceSource {
  if (serving === undefined) return fences;
  return {
    next(program) {
      serving();
      return fences.next(program);
    },
  };
}
