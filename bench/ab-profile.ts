// Server CPU profiles of this checkout against another commit's server (baseline.ts), in
// alternating rounds, under uncontended acquire/release; prints self time per request by group
// and for named functions, median and every round. For what one change gained, where latency on a
// shared machine is too noisy to show a few microseconds:
//   node --import tsx bench/ab-profile.ts [REV=HEAD] [rounds=4] [seconds=4] [fn1,fn2,...]
import { prepareBaseline } from './baseline.ts';
import { LockstepSystem } from './lockstep.ts';
import { uncontended } from './workloads.ts';

const rev = process.argv[2] ?? 'HEAD';
const rounds = Number(process.argv[3] ?? 3);
const seconds = Number(process.argv[4] ?? 4);
const b = prepareBaseline(rev);
const groups: Array<[string, (f: string) => boolean]> = [
  ['busy', (f) => f !== '(idle)'],
  ['writev', (f) => f === 'writev'],
  ['gc', (f) => f === '(garbage collector)'],
  ['src', (f) => f.includes(' src/') || f.includes('/src/')],
  ['__name', (f) => f.startsWith('__name ')],
  ['prom-client', (f) => f.includes('node_modules/prom-client/')],
  ['conversation', (f) => f.includes('src/coordinator/conversation.ts')],
  ['intake+connection', (f) => f.includes('src/transport/')],
];
for (const extra of (process.argv[5] ?? '').split(',').filter(Boolean))
  groups.push([extra, (f) => f.startsWith(`${extra} `)]);
const acc: Record<string, Record<string, number[]>> = {};
const push = (which: string, g: string, x: number) => {
  acc[which] = acc[which] ?? {};
  const row = acc[which];
  row[g] = [...(row[g] ?? []), x];
};
for (let r = 0; r < rounds; r++) {
  for (const which of r % 2 === 0 ? ['current', 'baseline'] : ['baseline', 'current']) {
    const sys =
      which === 'current' ? await LockstepSystem.start() : await LockstepSystem.startBaseline(b.serverModule, 'b');
    await uncontended(sys, 10, { settleMs: 0, warmMs: 0, runMs: 1000, reps: 1, maxOps: 1e7 });
    await sys.server.startProfile();
    const res = await uncontended(sys, 10, { settleMs: 0, warmMs: 0, runMs: seconds * 1000, reps: 1, maxOps: 1e7 });
    const prof = await sys.server.stopProfile();
    await sys.stop();
    for (const [g, test] of groups) {
      let us = 0;
      for (const [f, t] of Object.entries(prof.byFunction)) if (test(f)) us += t;
      push(which, g, us / res.n);
    }
    push(which, 'ops/s', res.rate);
  }
}
const med = (xs: number[]) => [...xs].sort((a, c) => a - c)[Math.floor(xs.length / 2)] ?? Number.NaN;
console.log(`server self time, µs per request (median of ${rounds}; all values), current vs ${b.short}`);
for (const g of [...groups.map(([g]) => g), 'ops/s']) {
  const c = acc.current?.[g] ?? [];
  const bl = acc.baseline?.[g] ?? [];
  console.log(
    `${g.padEnd(18)} current ${med(c).toFixed(2).padStart(8)} [${c.map((x) => x.toFixed(1)).join(', ')}]  baseline ${med(bl).toFixed(2).padStart(8)} [${bl.map((x) => x.toFixed(1)).join(', ')}]  ratio ${(med(c) / med(bl)).toFixed(3)}`,
  );
}
process.exit(0);
