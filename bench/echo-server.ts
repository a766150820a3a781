// Child process: the floor. A bare `ws` server that parses each JSON-RPC request and answers with
// a result of the same shape and size as Lockstep's reply to it (a granted acquire or a release),
// built and serialized the same way, so only Lockstep's own work separates the two.
import { WebSocketServer } from 'ws';
import { serveIpc } from './proc.ts';

interface Call {
  id: number;
  method: string;
  params?: { functions?: number[]; mode?: string };
}

const TTL_MS = 30 * 60_000;
let fence = 0;

function resultFor(call: Call): unknown {
  const program = 'main';
  const resources = (call.params?.functions ?? []).map((fn) => ({ program, function: fn }));
  if (call.method === 'lock.release') return { released: resources };
  const expiresAt = new Date(Date.now() + TTL_MS).toISOString();
  const mode = call.params?.mode ?? 'write';
  return { status: 'granted', grants: resources.map((resource) => ({ resource, mode, fence: ++fence, expiresAt })) };
}

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
wss.on('connection', (ws) => {
  ws.on('message', (data) => {
    const call = JSON.parse(String(data)) as Call;
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: call.id, result: resultFor(call) }));
  });
});
wss.once('listening', () => {
  const addr = wss.address();
  serveIpc(
    typeof addr === 'object' && addr !== null ? addr.port : 0,
    () => new Promise((resolve) => wss.close(() => resolve())),
  );
});
