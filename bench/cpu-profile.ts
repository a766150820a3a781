// Self time per function from a V8 CPU profile (the format of --cpu-prof and the inspector's
// Profiler.stop), aggregated in the profiled process so only a small map crosses the IPC channel.

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
}
export interface CpuProfile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
}

/** The repository root as a URL prefix: frames are shown relative to it. */
const ROOT = new URL('..', import.meta.url).href;

/** Microseconds of self time per function, keyed "name where" (where: src/..., node_modules/pkg/..., node:...). */
export interface SelfTimes {
  totalUs: number;
  byFunction: Record<string, number>;
}

export function selfTimes(prof: CpuProfile): SelfTimes {
  const frame = new Map(prof.nodes.map((n) => [n.id, n.callFrame]));
  const byFunction: Record<string, number> = {};
  let totalUs = 0;
  const deltas = prof.timeDeltas ?? [];
  (prof.samples ?? []).forEach((id, i) => {
    const dt = deltas[i] ?? 0;
    totalUs += dt;
    const f = frame.get(id);
    if (f === undefined) return;
    const where = f.url === '' ? '' : ` ${f.url.startsWith(ROOT) ? f.url.slice(ROOT.length) : f.url}`;
    const key = `${f.functionName || '(anonymous)'}${where}`;
    byFunction[key] = (byFunction[key] ?? 0) + dt;
  });
  return { totalUs, byFunction };
}
