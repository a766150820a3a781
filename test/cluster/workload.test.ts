import { randomInt } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FaultClient, seededRandom } from '../helpers/fault-client.ts';
import { sql } from './nodes.ts';
import { type AgentKind, ClusterAgent } from './workload-agent.ts';
import { finalNodes, installAudit, readAudit } from './workload-audit.ts';
import { check, PROGRESS_BOUND_MS, type Revision } from './workload-checks.ts';
import { WorkloadCluster } from './workload-cluster.ts';
import { FAULT_KINDS, type FaultNote, inject } from './workload-faults.ts';
import { newLog, now } from './workload-log.ts';

// The lock-set workload of test/faults/lockset.test.ts on a three-node cluster, in the manner of
// Jepsen (docs/cluster.md, "How it is tested"): agents that know every node lock a function, read
// it, append a node with the hash read (or none) and the fence given, and release, while a seeded
// scheduler injects every fault kind in turn. Nothing is asserted during the run; afterwards what
// the agents were told, what they did and what PostgreSQL committed are checked against each
// other (workload-checks.ts, workload-exclusion.ts).
//
// CI runs each fault kind once; CLUSTER_FAULT_ROUNDS=N runs them N times (each round in a new
// seeded order), CLUSTER_FAULT_SEED=S replays a schedule.

const SEED = process.env.CLUSTER_FAULT_SEED === undefined ? randomInt(2 ** 31) : Number(process.env.CLUSTER_FAULT_SEED);
const ROUNDS = Number(process.env.CLUSTER_FAULT_ROUNDS ?? 1);
const NODES = 3;
/** Both kinds of agent (workload-agent.ts), each with and without expectedHashes. */
const AGENTS: AgentKind[] = [
  { view: 'protocol', blind: false },
  { view: 'protocol', blind: true },
  { view: 'handle', blind: false },
  { view: 'handle', blind: true },
];
const FUNCTIONS = 3;
/** A shorter window than the default 10 s: a session that never comes back holds its locks that long. */
const GRACE_MS = 5_000;
/**
 * The lease the agents' locks ask for: no longer than the grace, so that a session a node forgets
 * at the end of its grace has seen its leases run out first, as it was told (a hold ends at its
 * lease's end: docs/cluster.md, "How it is tested").
 */
const LEASE_MS = GRACE_MS;
/** Load between two faults, so each fault lands on agents in every phase of their cycles. */
const QUIET_MS = { min: 300, max: 1_000 };

describe('cluster workload under faults', () => {
  it('keeps every acknowledged edit once, no two holders at once, no write by a deposed leader, through every fault', async () => {
    const seed = `CLUSTER_FAULT_SEED=${SEED} CLUSTER_FAULT_ROUNDS=${ROUNDS}`;
    console.log(`cluster workload ${seed}`);
    const rng = seededRandom(SEED);
    const cluster = await WorkloadCluster.start(NODES, ['--session-grace-ms', String(GRACE_MS)]);
    const log = newLog();
    const agents: ClusterAgent[] = [];
    let running = true;
    try {
      const first = await cluster.leader();
      await installAudit(cluster.db);
      const setup = await FaultClient.open(first.member.url, 'setup');
      await setup.call('lock.acquire', { structure: true, mode: 'write' });
      const made = await setup.call('edit.apply', {
        ops: Array.from({ length: FUNCTIONS }, (_, i) => ({ op: 'addFunction', name: `f${i}` })),
      });
      if (made.kind !== 'ok') throw new Error(`setup failed: ${JSON.stringify(made)}`);
      await setup.close();
      const fns: number[] = made.result.created.map((c: { id: number }) => c.id);
      const setupRevision: number = made.result.revision;

      const stuck: string[] = [];
      for (const [i, kind] of AGENTS.entries())
        agents.push(await ClusterAgent.open(i, kind, cluster.urls, log, fns, LEASE_MS, SEED * 31 + i));
      const started = Date.now();
      const work = agents.map(async (agent) => {
        while (running) {
          try {
            await agent.cycle();
          } catch (err) {
            stuck.push(String(err));
            return;
          }
        }
      });

      const schedule = Array.from({ length: ROUNDS }, () =>
        [...FAULT_KINDS]
          .map((k) => ({ k, r: rng() }))
          .sort((a, b) => a.r - b.r)
          .map(({ k }) => k),
      ).flat();
      const faults: FaultNote[] = [];
      for (const kind of schedule) {
        await new Promise((resolve) => setTimeout(resolve, QUIET_MS.min + rng() * (QUIET_MS.max - QUIET_MS.min)));
        faults.push(await inject(kind, { cluster, log, rng }));
        // The next fault waits for every agent to have recovered from this one, within the bound
        // the checks hold it to (past it, they report the agent).
        const healed = faults.at(-1)!.healedAt;
        const recovered = () => agents.every((_, a) => log.progress.some((p) => p.agent === a && p.at >= healed));
        while (!recovered() && stuck.length === 0 && now() - healed <= PROGRESS_BOUND_MS)
          await new Promise((resolve) => setTimeout(resolve, 50));
        if (stuck.length > 0) break;
      }
      running = false;
      await Promise.all(work);
      const runMs = Date.now() - started;
      await Promise.all(agents.map((a) => a.close()));

      const revisions: Revision[] = (
        await sql(
          cluster.db,
          "SELECT revision, session_id, edit_key, ops FROM revisions WHERE program = 'main' ORDER BY revision",
        )
      ).map((r) => ({ revision: r.revision, sessionId: r.session_id, key: r.edit_key, ops: JSON.parse(r.ops) }));
      const history = {
        revisions,
        audit: await readAudit(cluster.db),
        finalNodes: await finalNodes(cluster.db),
        setupRevision,
      };
      const result = check(log, history, faults);
      // A broken run leaves its whole history behind, to read the violations against.
      const kept = join(tmpdir(), `lockstep-workload-${SEED}.json`);
      if (result.violations.length > 0 || stuck.length > 0)
        writeFileSync(
          kept,
          JSON.stringify({ seed: SEED, rounds: ROUNDS, faults, log, ...history, finalNodes: [...history.finalNodes] }),
        );
      const byKind = new Map<string, number>();
      for (const f of faults) byKind.set(f.kind, (byKind.get(f.kind) ?? 0) + 1);
      console.log(
        [
          `cluster workload ${seed}: ${AGENTS.length} agents on ${FUNCTIONS} functions, ${NODES} nodes, ${runMs} ms`,
          `  faults: ${faults.length}`,
          ...[...byKind].map(([k, n]) => `    ${k}: ${n}`),
          ...faults.map((f) => `    [${Math.round(f.healedAt - f.startedAt)} ms] ${f.kind}: ${f.detail}`),
          ...Object.entries(result.counts).map(([k, v]) => `  ${k}: ${v}`),
          ...(result.violations.length > 0 || stuck.length > 0 ? [`  history: ${kept}`] : []),
        ].join('\n'),
      );
      expect(stuck, `${seed}: agents stuck`).toEqual([]);
      expect(result.violations, `${seed}: guarantees broken`).toEqual([]);
      expect(new Set(faults.map((f) => f.kind)).size, `${seed}: fault kinds injected`).toBe(FAULT_KINDS.length);
    } finally {
      running = false;
      await Promise.all(agents.map((a) => a.close()));
      await cluster.stop();
    }
  }, 600_000);
});
