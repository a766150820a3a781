import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { BENCH_SERVER, createFunctions, hello, LockstepSystem } from './lockstep.ts';
import { RpcSocket } from './rpc-socket.ts';
import { summarize, type Summary } from './stats.ts';

/** Below the server's --max-pending (1,000): connections opened but not yet past hello. */
export const WAVE = 500;

export interface MemoryPoint {
  sessions: number;
  /** Server RSS growth over the empty server, per session, bytes. */
  perSession: number;
  rssMiB: number;
}

async function openSessions(url: string, count: number, into: RpcSocket[]): Promise<void> {
  for (let done = 0; done < count; done += WAVE) {
    const wave = await Promise.all(Array.from({ length: Math.min(WAVE, count - done) }, () => RpcSocket.open(url)));
    await Promise.all(wave.map((s, i) => hello(s, `idle-${done + i}`)));
    into.push(...wave);
  }
}

/**
 * Server resident memory per idle agent: the server runs in its own process (the clients' memory
 * does not count), RSS is read after a full GC, with the sessions connected and said hello.
 */
export async function memoryPerSession(steps: number[]): Promise<MemoryPoint[]> {
  const sys = await LockstepSystem.start();
  const socks: RpcSocket[] = [];
  try {
    // One session first, so one-off costs (first connection, JIT) are in the baseline.
    await openSessions(sys.url, 1, socks);
    await sleep(500);
    const base = await sys.server.rss();
    const out: MemoryPoint[] = [];
    for (const n of steps) {
      await openSessions(sys.url, n - socks.length, socks);
      await sleep(1_000);
      const rss = await sys.server.rss();
      out.push({ sessions: n, perSession: (rss - base) / (n - 1), rssMiB: rss / 2 ** 20 });
    }
    return out;
  } finally {
    await Promise.all(socks.map((s) => s.close()));
    await sys.stop();
  }
}

/**
 * Open loop: `agents` agents, each with its own function, together offer `perSecond` acquires per
 * second (each followed by its release) on a fixed schedule. Latency counts from the scheduled
 * time, so a server that falls behind is charged for the queueing it causes.
 */
export async function openLoop(
  agents: number,
  perSecond: number,
  runMs: number,
  reps: number,
): Promise<Summary & { late: number }> {
  const sys = await LockstepSystem.start([], BENCH_SERVER);
  const socks: RpcSocket[] = [];
  const samples: number[][] = [];
  const rates: number[] = [];
  let late = 0;
  try {
    const ids = await createFunctions(sys.url, agents);
    await openSessions(sys.url, agents, socks);
    for (let r = 0; r <= reps; r++) {
      const keep = r > 0;
      const out: number[] = [];
      const total = Math.round((perSecond * runMs) / 1000);
      const start = performance.now() + 50;
      const busy = new Array<Promise<void>>(agents).fill(Promise.resolve());
      for (let k = 0; k < total; k++) {
        const at = start + (k * 1000) / perSecond;
        const wait = at - performance.now();
        if (wait > 1) await sleep(wait);
        const i = k % agents;
        const sock = socks[i];
        const fn = ids[i];
        if (sock === undefined || fn === undefined) throw new Error('scale: agent missing');
        busy[i] = (busy[i] ?? Promise.resolve()).then(async () => {
          const sent = performance.now();
          if (keep && sent - at > 1000 / perSecond) late++;
          const { at: granted } = await sock.call('lock.acquire', { functions: [fn], mode: 'write' });
          // The timer may fire up to a millisecond early; then the request's own round trip counts.
          out.push(granted - Math.min(at, sent));
          await sock.call('lock.release', { functions: [fn] });
        });
      }
      await Promise.all(busy);
      if (keep) {
        samples.push(out);
        rates.push(out.length / ((performance.now() - start) / 1000));
      }
    }
    return { ...summarize(samples, rates), late };
  } finally {
    await Promise.all(socks.map((s) => s.close()));
    await sys.stop();
  }
}
