import type { RawData, WebSocket } from 'ws';
import { CloseCode } from '../protocol/close-codes.ts';
import type { LockstepError } from '../protocol/errors.ts';
import { errorFrame, isBadCall, parseCall } from '../protocol/jsonrpc.ts';
import { textOf } from './connection.ts';

/**
 * A socket on a cluster node that does not lead (docs/cluster.md): its first call (a client's
 * session.hello) is answered with `refusal`, the NOT_LEADER made when the socket came (it names
 * the leader and what was left of its lease), then the socket is closed with 4002. A socket that
 * says nothing is closed with 4002 after the hello timeout.
 */
export function refuseNotLeader(ws: WebSocket, refusal: LockstepError, helloTimeoutMs: number): void {
  const timer = setTimeout(() => ws.close(CloseCode.NOT_LEADER, 'not the leader'), helloTimeoutMs);
  ws.once('close', () => clearTimeout(timer));
  ws.on('error', () => undefined);
  ws.once('message', (data: RawData, isBinary: boolean) => {
    clearTimeout(timer);
    const call = isBinary ? undefined : parseCall(textOf(data));
    const id = call === undefined || isBadCall(call) ? null : (call.id ?? null);
    ws.send(errorFrame(id, refusal.toRpcError()));
    ws.close(CloseCode.NOT_LEADER, 'not the leader');
  });
}
