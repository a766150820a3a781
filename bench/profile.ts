// Profiles the Lockstep server under workload 2 (uncontended acquire+release, 100 agents):
//   node --import tsx bench/profile.ts [seconds]
// The server runs with --cpu-prof in its own process; prints the throughput and the functions with
// the most self time. The .cpuprofile stays in a temp dir for Chrome DevTools.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LockstepSystem } from './lockstep.ts';
import { fmtMs, fmtRate } from './stats.ts';
import { uncontended } from './workloads.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const seconds = Number(process.argv[2] ?? 5);
const dir = mkdtempSync(join(tmpdir(), 'lockstep-prof-'));
const sys = await LockstepSystem.start(['--cpu-prof', '--cpu-prof-dir', dir]);
const r = await uncontended(sys, 100, { warmMs: 1_000, runMs: seconds * 1_000, reps: 1, maxOps: 10_000_000 });
await sys.stop();
console.log(`100 agents: ${fmtRate(r.rate)} ops/s, p50 ${fmtMs(r.p50)}, p99 ${fmtMs(r.p99)}`);

const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
if (file === undefined) throw new Error(`no profile written in ${dir}`);
const prof = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile;
const frame = new Map(prof.nodes.map((n) => [n.id, n.callFrame]));
const self = new Map<string, number>();
let total = 0;
prof.samples.forEach((id, i) => {
  const f = frame.get(id);
  const dt = prof.timeDeltas[i] ?? 0;
  total += dt;
  if (f === undefined) return;
  const where =
    f.url === '' ? '' : ` ${f.url.replace(/^file:\/\/.*?\/(node_modules|src)\//, '$1/')}:${f.lineNumber + 1}`;
  const key = `${f.functionName || '(anonymous)'}${where}`;
  self.set(key, (self.get(key) ?? 0) + dt);
});
console.log(`profile: ${join(dir, file)}; top self time of ${(total / 1e6).toFixed(1)} s:`);
for (const [k, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 25))
  console.log(`${((100 * us) / total).toFixed(1).padStart(5)}%  ${k}`);
