import type { Logger } from 'pino';
import type { LockEvents, LockManager } from '../concurrency/index.ts';
import type { NotificationName, NotificationParams } from '../protocol/notifications.ts';
import type { EventLog } from './event-log.ts';
import { wireBlockers, wireGrants, wirePositions } from './wire-map.ts';

/** What the bridge reads from and writes to: the coordinator's parts (it is one). */
export interface LockEventParts {
  locks: LockManager;
  events: EventLog;
  logger: Logger;
  notify<N extends NotificationName>(
    sessionId: string,
    method: N,
    params: NotificationParams<N>,
    change?: boolean,
  ): void;
  nameOf(sessionId: string): string;
}

/** What a logged lock event keeps until it is read: the core's payload (and its session's name then). */
type Logged<K extends keyof LockEvents> = Parameters<LockEvents[K]>[0];

/** The `locks` topic items of the hot lock events (granted, queued, released): shared, no closure per event. */
const granted = (p: Logged<'granted'>, name: string) => ({
  sessionId: p.sessionId,
  name,
  ticket: p.ticket,
  grants: wireGrants(p.grants),
});
const queued = (p: Logged<'queued'>, name: string) => ({
  sessionId: p.sessionId,
  name,
  ticket: p.ticket,
  mode: p.mode,
  resources: p.resources,
  positions: wirePositions(p.positions),
});
const released = (p: Logged<'released'>, name: string) => ({
  sessionId: p.sessionId,
  name,
  locks: wireGrants(p.locks),
  reason: p.reason,
});

/**
 * Turns lock core events into pushes to the sessions concerned and items on the `locks` topic.
 * lock.granted and lock.expired tell a session of a change of its locks: in cluster mode they
 * wait for the journal (Coordinator.notify). Items on the topic do not: docs/cluster.md, "What is
 * durable when", says why.
 * Position changes are pushed but not put on the topic: one release with a thousand waiters would
 * otherwise write a thousand events; observers derive positions from queue order instead.
 */
export function bridgeLockEvents(c: LockEventParts): void {
  const { locks, events, logger } = c;
  const who = (sessionId: string) => ({ sessionId, name: c.nameOf(sessionId) });

  locks.on('granted', (e) => {
    if (e.ticket !== null)
      c.notify(e.sessionId, 'lock.granted', { ticket: e.ticket, grants: wireGrants(e.grants) }, true);
    events.append('locks', 'granted', granted, e, c.nameOf(e.sessionId));
  });
  locks.on('queued', (e) => {
    events.append('locks', 'queued', queued, e, c.nameOf(e.sessionId));
  });
  locks.on('position', ({ sessionId, ticket, positions }) => {
    c.notify(sessionId, 'lock.queue', { ticket, positions: wirePositions(positions) });
  });
  locks.on('released', (e) => {
    events.append('locks', 'released', released, e, c.nameOf(e.sessionId));
  });
  locks.on('renewed', ({ sessionId, locks: gs }) => {
    const by = who(sessionId);
    events.append('locks', 'renewed', () => ({ ...by, locks: wireGrants(gs) }));
  });
  locks.on('downgraded', ({ sessionId, locks: gs }) => {
    const by = who(sessionId);
    events.append('locks', 'downgraded', () => ({ ...by, locks: wireGrants(gs) }));
  });
  locks.on('denied', ({ sessionId, mode, resources, blockers }) => {
    const by = who(sessionId);
    logger.info({ ...by, mode, resources }, 'lock denied');
    events.append('locks', 'denied', () => ({ ...by, mode, resources, blockers: wireBlockers(blockers) }));
  });
  locks.on('deadlock', ({ sessionId, cycle }) => {
    const by = who(sessionId);
    logger.info({ ...by, cycle }, 'deadlock refused');
    events.append('locks', 'deadlock', () => ({ ...by, cycle }));
  });
  locks.on('expiring', ({ sessionId, locks: gs }) => {
    const wire = wireGrants(gs);
    c.notify(sessionId, 'lock.expiring', { locks: wire });
    const by = who(sessionId);
    events.append('locks', 'expiring', () => ({ ...by, locks: wire }));
  });
  locks.on('expired', ({ sessionId, locks: gs }) => {
    const wire = wireGrants(gs);
    const by = who(sessionId);
    logger.info({ ...by, locks: wire }, 'lease expired');
    c.notify(sessionId, 'lock.expired', { locks: wire }, true);
    events.append('locks', 'expired', () => ({ ...by, locks: wire }));
  });
  locks.on('waiters', ({ sessionId, locks: ls }) => {
    c.notify(sessionId, 'lock.waiters', { locks: ls });
  });
  locks.on('waitTimeout', ({ sessionId, ticket }) => {
    c.notify(sessionId, 'lock.waitTimeout', { ticket });
  });
  locks.on('cancelled', ({ sessionId, ticket, reason }) => {
    if (reason === 'removed') c.notify(sessionId, 'lock.cancelled', { ticket, reason });
    const by = who(sessionId);
    events.append('locks', 'dequeued', () => ({ ...by, ticket, reason }));
  });
}
