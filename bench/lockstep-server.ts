// Child process: a Lockstep server for the bench (see proc.ts forkServer). argv[2] is the JSON of
// the start() options (lockstep.ts BENCH_SERVER and variants).
import { start, type StartOptions } from '../src/server.ts';
import { serveIpc } from './proc.ts';

const opts = JSON.parse(process.argv[2] ?? '{}') as StartOptions;
const server = await start({ port: 0, host: '127.0.0.1', ...opts });
serveIpc(server.port, () => server.stop('bench done'));
