// Child process: a Lockstep server for the bench (see proc.ts forkServer). argv[2] is the JSON of
// the start() options (lockstep.ts BENCH_SERVER and variants); argv[3], when given, is the
// server module to start instead of this checkout's (the baseline commit's, see baseline.ts).
import type { StartOptions } from '../src/server.ts';
import { serveIpc } from './proc.ts';

const opts = JSON.parse(process.argv[2] ?? '{}') as StartOptions;
const serverModule = process.argv[3] ?? '../src/server.ts';
const { start } = (await import(serverModule)) as typeof import('../src/server.ts');
const server = await start({ port: 0, host: '127.0.0.1', ...opts });
serveIpc(server.port, () => server.stop('bench done'));
