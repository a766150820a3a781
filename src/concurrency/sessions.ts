import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'eventemitter3';
import { v4 as uuidv4 } from 'uuid';
import { LockstepError } from '../protocol/errors.ts';
import type { Clock } from './clock.ts';
import { Deadlines } from './deadlines.ts';
import type { Deadline } from './deadlines.ts';
import type { LockManager } from './lock-manager.ts';
import type { Grant, TicketInfo } from './lock-types.ts';

export type Role = 'agent' | 'observer';

export interface SessionInfo {
  id: string;
  name: string;
  role: Role;
  connectedAt: number;
  lastActiveAt: number;
  state: 'connected' | 'detached';
}

export type LeaveReason = 'disconnect' | 'idle' | 'grace-expired' | 'shutdown';

export interface SessionEvents {
  joined: (s: SessionInfo) => void;
  left: (e: { session: SessionInfo; reason: LeaveReason }) => void;
  /** The idle timeout passed: the transport closes the socket, which then calls remove() or detach(). */
  idle: (s: SessionInfo) => void;
  detached: (s: SessionInfo) => void;
  resumed: (s: SessionInfo) => void;
}

export interface SessionRegistryOptions {
  clock: Clock;
  locks: LockManager;
  /** Default one hour. */
  idleTimeoutMs?: number;
  /** How long a dropped session's locks wait for a resume; 0 (the default) turns resuming off. */
  graceMs?: number;
}

interface Entry {
  info: SessionInfo;
  /** SHA-256 of the resume secret: fixed length, so the comparison is constant-time. */
  secret: Buffer | undefined;
  idle: Deadline | undefined;
  grace: Deadline | undefined;
}

/** Who is connected, what each one holds and waits for, and when a session ends. */
export class SessionRegistry extends EventEmitter<SessionEvents> {
  private readonly clock: Clock;
  private readonly locks: LockManager;
  private readonly idleTimeoutMs: number;
  private readonly graceMs: number;
  private readonly deadlines: Deadlines;
  private readonly sessions = new Map<string, Entry>();

  constructor(opts: SessionRegistryOptions) {
    super();
    this.clock = opts.clock;
    this.locks = opts.locks;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 3_600_000;
    this.graceMs = opts.graceMs ?? 0;
    this.deadlines = new Deadlines(this.clock);
  }

  get size(): number {
    return this.sessions.size;
  }

  register(opts: { name?: string; role: Role }): { session: SessionInfo; resumeSecret?: string } {
    const id = uuidv4();
    const now = this.clock.now();
    const entry: Entry = {
      info: {
        id,
        name: opts.name ?? `${opts.role}-${id.slice(0, 8)}`,
        role: opts.role,
        connectedAt: now,
        lastActiveAt: now,
        state: 'connected',
      },
      secret: undefined,
      idle: undefined,
      grace: undefined,
    };
    let resumeSecret: string | undefined;
    if (this.graceMs > 0) {
      resumeSecret = randomBytes(32).toString('base64url');
      entry.secret = secretDigest(resumeSecret);
    }
    this.sessions.set(id, entry);
    this.watchIdle(entry);
    this.emit('joined', { ...entry.info });
    return resumeSecret === undefined ? { session: { ...entry.info } } : { session: { ...entry.info }, resumeSecret };
  }

  /**
   * Cluster failover: a session recorded by the previous leader, taken in as dropped: it has
   * graceMs from now to resume with its secret (checked against the recorded digest), as any
   * dropped session. Called before anyone is served; emits nothing (it joined on the old leader).
   */
  adopt(recorded: { id: string; name: string; role: Role; secretDigest: Buffer }): void {
    const now = this.clock.now();
    const entry: Entry = {
      info: {
        id: recorded.id,
        name: recorded.name,
        role: recorded.role,
        connectedAt: now,
        lastActiveAt: now,
        state: 'detached',
      },
      secret: recorded.secretDigest,
      idle: undefined,
      grace: undefined,
    };
    this.sessions.set(recorded.id, entry);
    entry.grace = this.deadlines.add(now + this.graceMs, () => this.end(entry, 'grace-expired'));
  }

  /** The digest of the session's resume secret (never the secret), for the cluster journal. */
  secretDigestOf(id: string): Buffer | undefined {
    return this.sessions.get(id)?.secret;
  }

  /** Activity: pushes the idle deadline back. */
  touch(id: string): void {
    const entry = this.sessions.get(id);
    if (entry?.info.state === 'connected') entry.info.lastActiveAt = this.clock.now();
  }

  get(id: string): SessionInfo | undefined {
    const entry = this.sessions.get(id);
    return entry === undefined ? undefined : { ...entry.info };
  }

  /** The name alone, without copying the session: every lock event asks for it. */
  nameOf(id: string): string | undefined {
    return this.sessions.get(id)?.info.name;
  }

  list(): Array<SessionInfo & { locks: Grant[]; waiting: TicketInfo[] }> {
    return [...this.sessions.values()].map((e) => ({
      ...e.info,
      locks: this.locks.holding(e.info.id),
      waiting: this.locks.tickets(e.info.id),
    }));
  }

  /** Ends the session: locks released and tickets withdrawn in one call, then 'left'. Unknown ids are ignored. */
  remove(id: string, reason: 'disconnect' | 'idle' | 'shutdown'): void {
    const entry = this.sessions.get(id);
    if (entry !== undefined) this.end(entry, reason);
  }

  /**
   * The socket is gone. Without grace this is remove(id, 'disconnect'). With grace the tickets
   * are withdrawn at once (nobody is there to be told of a grant) but the locks are kept for
   * graceMs, then released with 'left' reason 'grace-expired'.
   */
  detach(id: string): void {
    const entry = this.sessions.get(id);
    if (entry === undefined || entry.info.state === 'detached') return;
    if (this.graceMs <= 0) {
      this.end(entry, 'disconnect');
      return;
    }
    entry.info.state = 'detached';
    this.deadlines.cancel(entry.idle);
    entry.idle = undefined;
    this.locks.withdrawTickets(id);
    entry.grace = this.deadlines.add(this.clock.now() + this.graceMs, () => this.end(entry, 'grace-expired'));
    this.emit('detached', { ...entry.info });
  }

  /**
   * A client reconnected with its session id and resume secret. Also accepted while the session
   * still looks connected, because a dead socket is noticed only after missed pongs.
   */
  resume(id: string, secret: string): SessionInfo {
    const entry = this.sessions.get(id);
    if (entry === undefined) throw new LockstepError('NOT_FOUND', 'no such session to resume', { session: id });
    if (entry.secret === undefined || !timingSafeEqual(entry.secret, secretDigest(secret))) {
      throw new LockstepError('UNAUTHORIZED', 'wrong resume secret');
    }
    this.deadlines.cancel(entry.grace);
    entry.grace = undefined;
    entry.info.state = 'connected';
    entry.info.lastActiveAt = this.clock.now();
    if (entry.idle === undefined) this.watchIdle(entry);
    this.emit('resumed', { ...entry.info });
    return { ...entry.info };
  }

  /** Stops the timers; sessions are ended by the caller with remove(id, 'shutdown'). */
  close(): void {
    this.deadlines.close();
    for (const entry of this.sessions.values()) {
      entry.idle = undefined;
      entry.grace = undefined;
    }
  }

  private end(entry: Entry, reason: LeaveReason): void {
    this.deadlines.cancel(entry.idle);
    this.deadlines.cancel(entry.grace);
    entry.idle = undefined;
    entry.grace = undefined;
    // Locks first, while the session can still be named in the events they cause.
    this.locks.removeSession(entry.info.id, reason === 'shutdown' ? 'shutdown' : 'disconnect');
    this.sessions.delete(entry.info.id);
    this.emit('left', { session: { ...entry.info }, reason });
  }

  /**
   * touch() only records the time; the deadline re-arms itself when it finds the session was
   * active meanwhile, so a busy session costs no heap work per message.
   */
  private watchIdle(entry: Entry): void {
    entry.idle = this.deadlines.add(entry.info.lastActiveAt + this.idleTimeoutMs, () => {
      entry.idle = undefined;
      const due = entry.info.lastActiveAt + this.idleTimeoutMs;
      if (due > this.clock.now()) this.watchIdle(entry);
      else this.emit('idle', { ...entry.info });
    });
  }
}

/** SHA-256: a resume secret is 32 random bytes, so a fast hash is enough to keep it unrecoverable. */
function secretDigest(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}
