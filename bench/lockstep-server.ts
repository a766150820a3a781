// Child process: a Lockstep server for the bench (see proc.ts forkServer). argv[2] is the JSON of
// the start() options (lockstep.ts BENCH_SERVER and variants); argv[3], when given, is the
// server module to start instead of this checkout's (the baseline commit's, see baseline.ts).
// With LOCKSTEP_BENCH_TRACE set in the environment, it also records what its sockets do
// (turn-trace.ts) between the IPC commands trace-start and trace-stop (bench/turns.ts).
import type { StartOptions } from '../src/server.ts';
import { serveIpc } from './proc.ts';
import { installRecorder } from './turn-trace.ts';

if (process.env.LOCKSTEP_BENCH_TRACE !== undefined) {
  const recorder = installRecorder();
  process.on('message', (m: { cmd: string }) => {
    if (m.cmd === 'trace-start') {
      recorder.start();
      process.send?.({});
    } else if (m.cmd === 'trace-stop') process.send?.({ trace: recorder.stop() });
  });
}

const opts = JSON.parse(process.argv[2] ?? '{}') as StartOptions;
const serverModule = process.argv[3] ?? '../src/server.ts';
const { start } = (await import(serverModule)) as typeof import('../src/server.ts');
const server = await start({ port: 0, host: '127.0.0.1', ...opts });
serveIpc(server.port, () => server.stop('bench done'));
