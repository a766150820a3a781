import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { BENCH_SERVER, hello, LockstepSystem } from './lockstep.ts';
import { RpcSocket } from './rpc-socket.ts';
import { summarize, type Summary } from './stats.ts';
import type { Timing } from './workloads.ts';

/**
 * Workload 7: `agents` agents, each holding the write lock on its own function, commit one-node
 * edits (updateNode) in a closed loop through the server, whose store is a SQLite file on disk
 * (WAL, synchronous=FULL: every commit is fsynced before its reply). Latency is edit.apply's round
 * trip; throughput is edits committed per second.
 */
export async function edits(agents: number, t: Timing): Promise<Summary> {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-bench-edits-'));
  const sys = await LockstepSystem.start([], { ...BENCH_SERVER, db: join(dir, 'bench.db') });
  const socks: RpcSocket[] = [];
  try {
    const setup = await RpcSocket.open(sys.url);
    await hello(setup, 'setup');
    await setup.call('lock.acquire', { structure: true, mode: 'write' });
    const ops = Array.from({ length: agents }, (_, i) => [
      { op: 'addFunction', name: `e${i}` },
      { op: 'addNode', function: `e${i}`, node: { id: 0, op: 'counter' } },
    ]).flat();
    const { result } = await setup.call('edit.apply', { ops });
    const ids = (result.created as Array<{ id: number }>).map((c) => c.id);
    await setup.close();
    for (let i = 0; i < agents; i++) {
      const s = await RpcSocket.open(sys.url);
      await hello(s, `editor-${i}`);
      await s.call('lock.acquire', { functions: [ids[i]], mode: 'write' });
      socks.push(s);
    }
    const samples: number[][] = [];
    const rates: number[] = [];
    let k = 0;
    for (let r = 0; r < t.reps; r++) {
      for (const keep of [false, true]) {
        const out: number[] = [];
        const start = performance.now();
        const end = start + (keep ? t.runMs : t.warmMs);
        await Promise.all(
          socks.map(async (s, i) => {
            while (performance.now() < end && out.length < t.maxOps) {
              const sent = performance.now();
              const { at } = await s.call('edit.apply', {
                ops: [{ op: 'updateNode', function: ids[i], node: { id: 0, attrs: { n: k++ } } }],
              });
              out.push(at - sent);
            }
          }),
        );
        if (keep) {
          samples.push(out);
          rates.push(out.length / ((performance.now() - start) / 1000));
        }
      }
    }
    return summarize(samples, rates);
  } finally {
    await Promise.all(socks.map((s) => s.close()));
    await sys.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
