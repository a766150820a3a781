import type { EventEmitter } from 'node:events';
import type { WebSocket } from 'ws';

/**
 * Calls `onCloseFrame` with the code as soon as the peer's close frame is read, before the TCP
 * connection has finished closing (ws's own 'close' event waits for that, and a client may see
 * its close handshake done first). ws 8 has no public event for it; its receiver emits
 * 'conclude' (code, reason) for the close frame, after ws has answered it. This is the only
 * place that touches ws internals: if a ws upgrade removes the receiver, the 'close' event still
 * ends the session, only later.
 */
export function onCloseFrame(ws: WebSocket, onCloseFrame: (code: number) => void): void {
  const receiver = (ws as unknown as { _receiver?: EventEmitter })._receiver;
  receiver?.on('conclude', (code: number) => onCloseFrame(code));
}
