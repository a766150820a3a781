import type { HandlerTable } from './dispatch.ts';
import { eventHandlers } from './event-handlers.ts';
import { historyHandlers } from './history-handlers.ts';
import { lockHandlers } from './lock-handlers.ts';
import { programHandlers } from './program-handlers.ts';
import { sessionHandlers } from './session-handlers.ts';

/** Every method but session.hello, which the connection handles before a session exists. */
export const handlers: HandlerTable = {
  ...sessionHandlers,
  ...lockHandlers,
  ...programHandlers,
  ...historyHandlers,
  ...eventHandlers,
};
