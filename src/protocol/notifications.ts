import { z } from 'zod';
import { EventItem } from './methods.ts';
import { FunctionId, LockMode, ProgramName, Resource } from './resource.ts';
import { By, Grant, Hash, QueuePosition, Ticket } from './wire.ts';

// Every server -> client push. Notifications carry no id and expect no answer.

function notification<P extends z.ZodType>(summary: string, params: P) {
  return { summary, params };
}

const Locks = z.object({ locks: z.array(Grant) });

export const notifications = {
  'lock.granted': notification(
    'A queued ticket was granted, all of it at once',
    z.object({ ticket: Ticket, grants: z.array(Grant) }),
  ),
  'lock.queue': notification(
    "A queued ticket's positions changed (never sent for the starting position or on grant)",
    z.object({ ticket: Ticket, positions: z.array(QueuePosition) }),
  ),
  'lock.expiring': notification('These leases end soon: renew or finish', Locks),
  'lock.expired': notification('These leases ended; the locks are gone', Locks),
  'lock.waitTimeout': notification(
    'A queued ticket reached its wait timeout and was withdrawn',
    z.object({ ticket: Ticket }),
  ),
  'lock.cancelled': notification(
    'The server withdrew a queued ticket',
    z.object({
      ticket: Ticket,
      reason: z.enum(['removed']).describe('removed: a function or program it waited on was deleted'),
    }),
  ),
  'lock.waiters': notification(
    'Others queue behind these locks of the session: finish or hand over (at most once a second)',
    z.object({
      locks: z.array(
        z.object({
          resource: Resource,
          mode: LockMode,
          waiting: z.number().int().positive().describe('Tickets of other sessions waiting for this lock'),
          oldestWaitMs: z.number().int().describe('How long the oldest of them has waited'),
        }),
      ),
    }),
  ),
  'function.changed': notification(
    'A watched function changed',
    z.object({
      program: ProgramName,
      function: FunctionId,
      hash: Hash.nullable().describe('null when removed'),
      version: z.number().int(),
      revision: z.number().int(),
      by: By,
      removed: z.boolean().optional(),
    }),
  ),
  event: notification('An item of a subscribed topic', EventItem),
  'server.shutdown': notification(
    'The server is draining: sockets close with 1001 next',
    z.object({ reason: z.string() }),
  ),
} as const;

export type NotificationName = keyof typeof notifications;
export type NotificationParams<N extends NotificationName> = z.infer<(typeof notifications)[N]['params']>;
export const NOTIFICATION_NAMES = Object.keys(notifications) as NotificationName[];
