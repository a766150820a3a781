import type { HandlerTable } from './call-context.ts';
import { eventHandlers } from './event-handlers.ts';
import { historyHandlers } from './history-handlers.ts';
import { lockHandlers } from './lock-handlers.ts';
import { pathHandlers } from './path-handlers.ts';
import { programHandlers } from './program-handlers.ts';
import { sessionHandlers } from './session-handlers.ts';

export const handlers: HandlerTable = {
  ...sessionHandlers,
  ...lockHandlers,
  ...pathHandlers,
  ...programHandlers,
  ...historyHandlers,
  ...eventHandlers,
};
