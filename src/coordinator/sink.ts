import type { NotificationName, NotificationParams } from '../protocol/notifications.ts';

/** Where a session's pushes go: its connection. */
export interface Sink {
  notify<N extends NotificationName>(method: N, params: NotificationParams<N>): void;
  close(code: number, reason: string): void;
}
