// Child process: a Lockstep server for the bench (see proc.ts forkServer). argv[2] is the JSON of
// the start() options (lockstep.ts BENCH_SERVER and variants); argv[3], when given, is the
// server module to start instead of this checkout's (the baseline commit's, see baseline.ts).
// With LOCKSTEP_BENCH_TRACE set in the environment, it also records what its sockets do
// (turn-trace.ts) between the IPC commands trace-start and trace-stop (bench/turns.ts).
import type { StartOptions } from '../src/server.ts';
import { serveIpc } from './proc.ts';
import { allocationSampler } from './alloc-profile.ts';
import { installRecorder, TRACE_START, TRACE_STOP } from './turn-trace.ts';

if (process.env.LOCKSTEP_BENCH_TRACE !== undefined) {
  const recorder = installRecorder();
  const allocations = allocationSampler();
  process.on('message', async (m: { cmd: string }) => {
    // A scavenge at both ends: with --trace-gc-nvp, the young generation's allocation counts
    // (`allocated=` since the previous collection) then add up to exactly what ran in between.
    const scavenge = () => (globalThis.gc as ((o: { type: string }) => void) | undefined)?.({ type: 'minor' });
    if (m.cmd === 'trace-start') {
      scavenge();
      console.log(TRACE_START);
      recorder.start();
      process.send?.({});
    } else if (m.cmd === 'alloc-start' || m.cmd === 'alloc-live-start') {
      await allocations.start(m.cmd === 'alloc-start');
      process.send?.({});
    } else if (m.cmd === 'alloc-stop') {
      process.send?.({ allocations: await allocations.stop() });
    } else if (m.cmd === 'trace-stop') {
      const trace = recorder.stop();
      scavenge();
      console.log(TRACE_STOP);
      process.send?.({ trace });
    }
  });
}

const opts = JSON.parse(process.argv[2] ?? '{}') as StartOptions;
const serverModule = process.argv[3] ?? '../src/server.ts';
const { start } = (await import(serverModule)) as typeof import('../src/server.ts');
const server = await start({ port: 0, host: '127.0.0.1', ...opts });
serveIpc(server.port, () => server.stop('bench done'));
