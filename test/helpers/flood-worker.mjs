// A flooding client on its own thread, as a remote peer would be: it says hello, then sends every
// frame it was given back to back. Its sending costs the server's thread nothing, so a bystander's
// round trips measure the server alone. Told anything, it reports how many answers it read.
import { parentPort, workerData } from 'node:worker_threads';
import { WebSocket } from 'ws';

const { url, frames } = workerData;
const ws = new WebSocket(url);
let answers = -1;
ws.on('open', () =>
  ws.send(
    JSON.stringify({ jsonrpc: '2.0', id: 'hello', method: 'session.hello', params: { protocol: 1, name: 'flood' } }),
  ),
);
ws.on('message', () => {
  if (++answers > 0) return;
  parentPort.postMessage('flooding');
  for (const frame of frames) ws.send(frame);
});
parentPort.on('message', () => {
  parentPort.postMessage(answers);
  ws.terminate();
  parentPort.close();
});
