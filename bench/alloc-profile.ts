// Where a process allocates, by function: V8's sampling heap profiler (HeapProfiler over the
// inspector), a sample about every 4 KiB allocated. `all`: every allocation, collected or not
// (what the young generation fills with); otherwise only what is still alive when sampling stops
// (what survives). Used in the bench's server child (lockstep-server.ts, alloc-start,
// alloc-live-start, alloc-stop) by bench/alloc-turns.ts.
import { Session } from 'node:inspector/promises';

interface SamplingNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SamplingNode[];
}

/** Bytes sampled per function, "name url:line" (url relative to the repository), largest first. */
export type Allocations = Array<[string, number]>;

const ROOT = new URL('..', import.meta.url).href;

export function allocationSampler(): { start(all: boolean): Promise<void>; stop(): Promise<Allocations> } {
  const session = new Session();
  return {
    async start(all) {
      session.connect();
      await session.post('HeapProfiler.enable');
      await session.post('HeapProfiler.startSampling', {
        samplingInterval: 4096,
        includeObjectsCollectedByMajorGC: all,
        includeObjectsCollectedByMinorGC: all,
      });
    },
    async stop() {
      const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as {
        profile: { head: SamplingNode };
      };
      session.disconnect();
      const by = new Map<string, number>();
      const walk = (n: SamplingNode) => {
        const f = n.callFrame;
        const url = f.url.startsWith(ROOT) ? f.url.slice(ROOT.length) : f.url;
        const key = `${f.functionName || '(anonymous)'} ${url}:${f.lineNumber + 1}`;
        if (n.selfSize > 0) by.set(key, (by.get(key) ?? 0) + n.selfSize);
        for (const c of n.children) walk(c);
      };
      walk(profile.head);
      return [...by].sort((a, b) => b[1] - a[1]);
    },
  };
}
