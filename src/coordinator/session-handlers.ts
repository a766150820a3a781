import type { Role, SessionInfo } from '../concurrency/index.ts';
import { LockstepError } from '../protocol/errors.ts';
import { methods, PROTOCOL_VERSION, type ParamsOf, type ResultOf } from '../protocol/methods.ts';
import type { Grant, NotRestored } from '../protocol/wire.ts';
import type { Coordinator, Sink } from './coordinator.ts';
import type { HandlerTable } from './call-context.ts';
import { validate } from './validate.ts';
import { iso, wireGrants, wirePositions } from './wire-map.ts';

/**
 * Opens (or, within the resume grace, takes back) the session a connection speaks for. In cluster
 * mode a new session, and the locks a first resume after a failover lists as `restored`, are told
 * only once the journal has every change so far: `recorded` resolves then, or rejects with
 * STORE_UNAVAILABLE (the session then goes: a new one ends, a resumed one is dropped again and
 * its next resume is told what it got back).
 */
export function hello(
  c: Coordinator,
  raw: unknown,
  sink: Sink,
): { session: SessionInfo; result: ResultOf<'session.hello'>; recorded?: Promise<void> } {
  if (c.draining) throw new LockstepError('SHUTTING_DOWN', 'the server is shutting down', {}, 1000);
  checkTokenShape(raw);
  const p = validate('session.hello', raw);
  const role = authorize(c, p);
  let session: SessionInfo;
  let resumeSecret: string | undefined;
  let resumed = false;
  let restored: Grant[] | undefined;
  let notRestored: NotRestored[] | undefined;
  const { failover } = c.options;
  if (p.resume !== undefined) {
    session = c.sessions.resume(p.resume.sessionId, p.resume.secret);
    resumeSecret = p.resume.secret;
    resumed = true;
    // The first resume after a failover: whatever the session holds now was restored for it.
    notRestored = failover?.takeBack(session.id);
    if (notRestored !== undefined) restored = wireGrants(c.locks.holding(session.id));
  } else {
    const opened = c.sessions.register({ role, ...(p.name === undefined ? {} : { name: p.name }) });
    session = opened.session;
    resumeSecret = opened.resumeSecret;
  }
  c.attach(session, sink);
  const taken = session.id;
  const recorded =
    resumed && restored === undefined ? undefined : c.durable(undefined, () => restored && failover?.putBack(taken));
  const { options, locks } = c;
  return {
    session,
    ...(recorded === undefined ? {} : { recorded }),
    result: {
      sessionId: session.id,
      name: session.name,
      role: session.role,
      protocol: PROTOCOL_VERSION,
      server: { name: 'lockstep', version: options.version },
      heartbeatMs: options.heartbeatMs,
      lock: { ...locks.defaults },
      limits: { ...options.limits },
      ...(resumeSecret === undefined ? {} : { resumeSecret, graceMs: options.graceMs ?? 0 }),
      ...(resumed ? { resumed } : {}),
      ...(restored === undefined ? {} : { restored }),
      ...(notRestored === undefined ? {} : { notRestored }),
    },
  };
}

/**
 * A token that is not a string of the allowed length is a bad credential like an unknown one
 * (UNAUTHORIZED, and the socket is closed), not a malformed call left open for the next guess.
 */
function checkTokenShape(raw: unknown): void {
  if (raw === null || typeof raw !== 'object' || !('token' in raw)) return;
  if (!methods['session.hello'].params.shape.token.safeParse(raw.token).success) {
    throw new LockstepError(
      'UNAUTHORIZED',
      'the token must be text of at most 1024 characters, without U+0000 or a lone surrogate',
    );
  }
}

/** The role this hello may have: the asked one, within what its token grants. */
function authorize(c: Coordinator, p: ParamsOf<'session.hello'>): Role {
  const tokens = c.options.tokens;
  if (tokens === undefined || tokens.size === 0) return p.role ?? 'agent';
  const granted = p.token === undefined ? undefined : tokens.roleOf(p.token);
  if (granted === undefined) {
    throw new LockstepError(
      'UNAUTHORIZED',
      p.token === undefined ? 'this server needs a token in session.hello' : 'unknown token',
    );
  }
  if (p.role === 'agent' && granted === 'observer') {
    throw new LockstepError('FORBIDDEN', 'the token grants the observer role only', {
      method: 'session.hello',
      role: p.role,
    });
  }
  return p.role ?? granted;
}

export const sessionHandlers: Pick<HandlerTable, 'session.ping' | 'agent.list'> = {
  'session.ping': { handle: (c) => ({ time: iso(c.clock.now()) }) },
  'agent.list': {
    handle: (c) => ({
      agents: c.sessions.list().map((s) => ({
        sessionId: s.id,
        name: s.name,
        role: s.role,
        state: s.state,
        connectedAt: iso(s.connectedAt),
        lastActiveAt: iso(s.lastActiveAt),
        locks: wireGrants(s.locks),
        waiting: s.waiting.map((t) => ({ ticket: t.ticket, mode: t.mode, positions: wirePositions(t.positions) })),
      })),
    }),
  },
};
