// npm run bench:cluster: Lockstep as a cluster (docs/cluster.md, "Takeover time"), on a throwaway local
// PostgreSQL 15 (fsync on), then writes the Cluster section of docs/benchmarks.md (which
// `npm run bench` keeps). Two parts, a few minutes in all:
//   locks     - the lock workloads on the leader of three nodes (two standbys running) against a
//               single SQLite node and (uncontended, hand-over, read mix) etcd's v3 Lock with its
//               data dir beside PostgreSQL's on disk, repetitions interleaved, as ratios;
//   takeover  - takeover time after kill -9 and after a pause past the lease (takeover.ts).
//   --quick          3 takeovers of each kind and one short repetition, for trying it: the
//                    section then says it is a quick run
//   --only=PART      one part (locks or takeover), printed only; npm run bench:takeover is
//                    --only=takeover
//   --rounds=N       takeovers of each kind (default 10)
//   --lease-ttl-ms=MS --lease-renew-ms=MS --lease-drift-ms=MS
//                    the takeover nodes' timing; printed only (the section is at the defaults)
import { tmpdir } from 'node:os';
import { freshDatabase, postgresInstalled, startPostgres } from '../test/helpers/postgres.ts';
import { health, kill, type Node as ClusterNode, spawnNode } from '../test/cluster/leader-nodes.ts';
import { type LockRow, takeoverSummary, writeClusterSection } from './cluster-report.ts';
import { measureKernelCosts } from './kernel-costs.ts';
import { watchLoad } from './load-watch.ts';
import { BENCH_SERVER, LockstepSystem } from './lockstep.ts';
import { BATCH, HANDOVER, READ_MOSTLY, TARGET_UNCONTENDED_AGENTS, timing, uncontendedWorkload } from './plan.ts';
import { waitFor } from './proc.ts';
import { fmtCpu, fmtMs, fmtRate, fmtRatio } from './stats.ts';
import { FAULTS, type Fault, takeovers } from './takeover.ts';
import { EtcdSystem } from './etcd.ts';
import { interleaved, interleavedAll, type Result } from './workloads.ts';

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const QUICK = process.argv.includes('--quick');
const ONLY = arg('only');
const ROUNDS = Number(arg('rounds') ?? (QUICK ? 3 : 10));
const LEASE_FLAGS = ['lease-ttl-ms', 'lease-renew-ms', 'lease-drift-ms'].flatMap((k) =>
  arg(k) === undefined ? [] : [`--${k}`, arg(k) as string],
);
const T = timing(QUICK);
const WORKLOADS = [uncontendedWorkload(TARGET_UNCONTENDED_AGENTS), HANDOVER, READ_MOSTLY, BATCH];
/** The workloads etcd runs beside the two Lockstep servers (its batch takes four locks one by one). */
const AGAINST_ETCD = new Set([uncontendedWorkload(TARGET_UNCONTENDED_AGENTS).label, HANDOVER.label, READ_MOSTLY.label]);

const both = (r: Result) => `p50 ${fmtMs(r.p50).padStart(8)}  p99 ${fmtMs(r.p99).padStart(8)}  ${fmtRate(r.rate)}/s`;

/**
 * `dataDir`: where PostgreSQL's data directory is, and etcd's goes, so that both fsync to the
 * same filesystem.
 */
async function lockOperations(clusterUrl: string, dataDir: string): Promise<LockRow[]> {
  const db = await freshDatabase(clusterUrl);
  const single = await LockstepSystem.start();
  let leader: LockstepSystem | undefined;
  let etcd: EtcdSystem | undefined;
  const standbys: ClusterNode[] = [];
  try {
    if (EtcdSystem.available()) etcd = await EtcdSystem.start(dataDir);
    else console.log('etcd not found (run bench/setup-peers.sh): the leader is compared with one node only');
    leader = await LockstepSystem.start([], { ...BENCH_SERVER, db });
    const http = `http://127.0.0.1:${leader.server.port}`;
    const leads = async () => (await health(http)).status === 200;
    await waitFor('the first node leading', 30_000, leads);
    for (let i = 0; i < 2; i++) standbys.push(await spawnNode(db, [], {}));
    if (!(await leads())) throw new Error('the benched node lost the lead to a standby');
    const rows: LockRow[] = [];
    for (const w of WORKLOADS) {
      const withEtcd = etcd !== undefined && AGAINST_ETCD.has(w.label);
      const [s, l, e] = withEtcd
        ? await interleavedAll(w.run, [single, leader, etcd!], T)
        : await interleaved(w.run, single, leader, T);
      rows.push({ workload: w.label, single: s!, leader: l!, ...(e === undefined ? {} : { etcd: e }) });
      console.log(
        `${w.label.padEnd(18)} single ${both(s!)}  leader ${both(l!)}  leader ÷ single: p50 ${fmtRatio(l!.p50, s!.p50)} p99 ${fmtRatio(l!.p99, s!.p99)} per second ${fmtRatio(l!.rate, s!.rate)}  server CPU ${fmtCpu(s!.serverCpuUs)} / ${fmtCpu(l!.serverCpuUs)} per op`,
      );
      if (e !== undefined)
        console.log(
          `${''.padEnd(18)} etcd ${both(e)}  leader ÷ etcd: p50 ${fmtRatio(l!.p50, e.p50)} p99 ${fmtRatio(l!.p99, e.p99)} per second ${fmtRatio(l!.rate, e.rate)}`,
        );
    }
    return rows;
  } finally {
    await Promise.all(standbys.map(kill));
    await leader?.stop();
    await etcd?.stop();
    await single.stop();
  }
}

async function main(): Promise<void> {
  if (ONLY !== undefined && ONLY !== 'locks' && ONLY !== 'takeover')
    throw new Error(`--only=${ONLY}: the parts are locks and takeover`);
  if (!postgresInstalled()) throw new Error('PostgreSQL 15 is not installed (/usr/lib/postgresql/15/bin)');
  const began = Date.now();
  // Where PostgreSQL's data directory is (test/helpers/postgres.ts), and etcd's goes.
  const kernel = measureKernelCosts(tmpdir());
  const load = watchLoad();
  const pg = await startPostgres({ durable: true });
  try {
    // PostgreSQL's data directory is under the system temp dir (test/helpers/postgres.ts): etcd's goes there too.
    const locks = ONLY === 'takeover' ? [] : await lockOperations(pg.url, tmpdir());
    const figures: Record<Fault, number[]> =
      ONLY === 'locks' ? { kill: [], pause: [] } : await takeovers(await freshDatabase(pg.url), ROUNDS, LEASE_FLAGS);
    if (ONLY !== 'locks') {
      const timed = LEASE_FLAGS.length === 0 ? 'default timing' : LEASE_FLAGS.join(' ');
      console.log(`\ntakeover: fault to first grant on the new leader, ${ROUNDS} rounds each, ${timed}`);
      for (const fault of FAULTS) {
        const s = takeoverSummary(figures[fault]);
        console.log(`  ${fault.padEnd(6)} p50 ${fmtMs(s.p50)}  max ${fmtMs(s.max)}  min ${fmtMs(s.min)}`);
      }
    }
    const loadSeen = load.stop();
    console.log(
      `load average (1 min) before ${loadSeen.before[0]?.toFixed(2)}, during ${loadSeen.low.toFixed(2)} to ${loadSeen.high.toFixed(2)}, after ${loadSeen.after[0]?.toFixed(2)}`,
    );
    if (ONLY !== undefined || LEASE_FLAGS.length > 0) return;
    writeClusterSection({
      quick: QUICK,
      seconds: (Date.now() - began) / 1000,
      load: loadSeen,
      takeovers: figures,
      locks,
      timing: T,
      kernel,
    });
    console.log('wrote the Cluster section of docs/benchmarks.md');
  } finally {
    await pg.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    // Forked servers keep an IPC channel open and would keep this process alive.
    process.exit(1);
  },
);
