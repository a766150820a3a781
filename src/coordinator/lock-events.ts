import type { Coordinator } from './coordinator.ts';
import { wireGrants, wirePositions } from './wire-map.ts';

/**
 * Turns lock core events into pushes to the sessions concerned and items on the `locks` topic.
 * Position changes are pushed but not put on the topic: one release with a thousand waiters would
 * otherwise write a thousand events; observers derive positions from queue order instead.
 */
export function bridgeLockEvents(c: Coordinator): void {
  const { locks, events, logger } = c;
  const who = (sessionId: string) => ({ sessionId, name: c.nameOf(sessionId) });

  locks.on('granted', ({ sessionId, ticket, grants }) => {
    const wire = wireGrants(grants);
    if (ticket !== null) c.notify(sessionId, 'lock.granted', { ticket, grants: wire });
    events.append('locks', 'granted', { ...who(sessionId), ticket, grants: wire });
  });
  locks.on('queued', ({ sessionId, ticket, mode, resources, positions }) => {
    events.append('locks', 'queued', { ...who(sessionId), ticket, mode, resources, positions: wirePositions(positions) });
  });
  locks.on('position', ({ sessionId, ticket, positions }) => {
    c.notify(sessionId, 'lock.queue', { ticket, positions: wirePositions(positions) });
  });
  locks.on('released', ({ sessionId, locks: gs, reason }) => {
    events.append('locks', 'released', { ...who(sessionId), locks: wireGrants(gs), reason });
  });
  locks.on('renewed', ({ sessionId, locks: gs }) => {
    events.append('locks', 'renewed', { ...who(sessionId), locks: wireGrants(gs) });
  });
  locks.on('downgraded', ({ sessionId, locks: gs }) => {
    events.append('locks', 'downgraded', { ...who(sessionId), locks: wireGrants(gs) });
  });
  locks.on('denied', ({ sessionId, mode, resources, blockers }) => {
    logger.info({ ...who(sessionId), mode, resources }, 'lock denied');
    events.append('locks', 'denied', { ...who(sessionId), mode, resources, blockers });
  });
  locks.on('deadlock', ({ sessionId, cycle }) => {
    logger.info({ ...who(sessionId), cycle }, 'deadlock refused');
    events.append('locks', 'deadlock', { ...who(sessionId), cycle });
  });
  locks.on('expiring', ({ sessionId, locks: gs }) => {
    const wire = wireGrants(gs);
    c.notify(sessionId, 'lock.expiring', { locks: wire });
    events.append('locks', 'expiring', { ...who(sessionId), locks: wire });
  });
  locks.on('expired', ({ sessionId, locks: gs }) => {
    const wire = wireGrants(gs);
    logger.info({ ...who(sessionId), locks: wire }, 'lease expired');
    c.notify(sessionId, 'lock.expired', { locks: wire });
    events.append('locks', 'expired', { ...who(sessionId), locks: wire });
  });
  locks.on('waitTimeout', ({ sessionId, ticket }) => {
    c.notify(sessionId, 'lock.waitTimeout', { ticket });
  });
  locks.on('cancelled', ({ sessionId, ticket, reason }) => {
    if (reason === 'removed') c.notify(sessionId, 'lock.cancelled', { ticket, reason });
    events.append('locks', 'dequeued', { ...who(sessionId), ticket, reason });
  });
}
