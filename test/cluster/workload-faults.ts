import { FaultClient } from '../helpers/fault-client.ts';
import type { Member, WorkloadCluster } from './workload-cluster.ts';
import { kill } from './leader-nodes.ts';
import { until } from '../helpers/until.ts';
import { sql } from './nodes.ts';
import { type AgentLog, now } from './workload-log.ts';

// The faults of docs/cluster.md ("How it is tested"), each a function that breaks something and heals it: every
// killed node is started again, every proxy set back to pass, every paused process continued, so
// that the next fault finds three nodes. Each waits for state (a new leader, a commit in the
// database, a grant seen) by polling within a bound; only a fault's own length is a plain wait.

export const FAULT_KINDS = [
  'kill-leader',
  'pause-leader',
  'cut-leader-reset',
  'cut-leader-blackhole',
  'leader-db-latency',
  'crash-after-commit',
  'crash-grant-unrecorded',
  'leadership-a-b-a',
  'second-failover-in-grace',
  'postgres-restart',
  'kill-standby',
] as const;

export type FaultKind = (typeof FAULT_KINDS)[number];

/**
 * Latency added each way between the leader and PostgreSQL (one drawn per fault), and for how
 * long. With the 1.5 s lease renewed every 250 ms, the smaller ones slow every commit, the largest
 * makes a renewal's round trip about as long as the leader's margin, so it may step down.
 */
const LATENCY_MS = [100, 250, 500] as const;
const LATENCY_FOR_MS = 3_000;
/** A fault that waits for traffic (a commit, a grant) gives up after this: the run is stuck. */
const TRIGGER_BOUND_MS = 10_000;

export interface FaultContext {
  cluster: WorkloadCluster;
  log: AgentLog;
  rng: () => number;
}

export interface FaultNote {
  kind: FaultKind;
  startedAt: number;
  healedAt: number;
  /** What the fault did, for the printed run. */
  detail: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function takeoverAway(ctx: FaultContext, from: Member, epoch: number) {
  return ctx.cluster.leader(
    epoch + 1,
    ctx.cluster.members.filter((m) => m !== from),
  );
}

async function cut(ctx: FaultContext, kind: 'reset' | 'blackhole'): Promise<string> {
  const { member, epoch } = await ctx.cluster.leader();
  member.proxy.mode({ kind });
  const next = await takeoverAway(ctx, member, epoch);
  member.proxy.mode({ kind: 'pass' });
  return `node ${member.index} cut (${kind}) at epoch ${epoch}, node ${next.member.index} leads at ${next.epoch}`;
}

const faults: Record<FaultKind, (ctx: FaultContext) => Promise<string>> = {
  async 'kill-leader'(ctx) {
    const { member, epoch } = await ctx.cluster.leader();
    await ctx.cluster.crash(member);
    const next = await ctx.cluster.leader(epoch + 1);
    return `node ${member.index} killed at epoch ${epoch}, node ${next.member.index} leads at ${next.epoch}`;
  },

  async 'pause-leader'(ctx) {
    const { member, epoch } = await ctx.cluster.leader();
    member.process.child.kill('SIGSTOP');
    const next = await takeoverAway(ctx, member, epoch);
    member.process.child.kill('SIGCONT');
    return `node ${member.index} paused at epoch ${epoch} until node ${next.member.index} led at ${next.epoch}`;
  },

  'cut-leader-reset': (ctx) => cut(ctx, 'reset'),
  'cut-leader-blackhole': (ctx) => cut(ctx, 'blackhole'),

  async 'leader-db-latency'(ctx) {
    const { member, epoch } = await ctx.cluster.leader();
    const ms = LATENCY_MS[Math.floor(ctx.rng() * LATENCY_MS.length)]!;
    member.proxy.mode({ kind: 'latency', upMs: ms, downMs: ms });
    await sleep(LATENCY_FOR_MS);
    member.proxy.mode({ kind: 'pass' });
    const after = await ctx.cluster.leader(epoch);
    return `node ${member.index} +${ms} ms each way for ${LATENCY_FOR_MS} ms at epoch ${epoch}; node ${after.member.index} leads at ${after.epoch} after`;
  },

  async 'crash-after-commit'(ctx) {
    const { member, epoch } = await ctx.cluster.leader();
    const [{ r: before }] = await sql(ctx.cluster.db, "SELECT revision AS r FROM programs WHERE name = 'main'");
    const held = member.proxy.holdRepliesAfterCommitOf('INSERT INTO revisions');
    await Promise.race([
      held,
      sleep(TRIGGER_BOUND_MS).then(() => {
        throw new Error('no edit committed through the leader');
      }),
    ]);
    // The COMMIT has gone to the database and its reply is held: wait until it is visible there.
    const committed = await until('the held commit is visible in PostgreSQL', TRIGGER_BOUND_MS, async () => {
      const [{ r }] = await sql(ctx.cluster.db, "SELECT revision AS r FROM programs WHERE name = 'main'");
      return r > before ? r : undefined;
    });
    await kill(member.process);
    member.proxy.mode({ kind: 'pass' });
    await ctx.cluster.restart(member);
    const next = await ctx.cluster.leader(epoch + 1);
    return `revision ${committed} committed, reply held, node ${member.index} killed; node ${next.member.index} leads at ${next.epoch}`;
  },

  async 'crash-grant-unrecorded'(ctx) {
    const { member, epoch } = await ctx.cluster.leader();
    // Sessions of its own, recorded before the cut (a hello waits for its record): a probe that
    // asks for a lock, and a viewer that sees it granted (lock.status shows the state in memory).
    const probe = await FaultClient.open(member.url, 'probe');
    const viewer = await FaultClient.open(member.url, 'viewer', 'observer');
    try {
      // Nothing the leader writes reaches the database from here: the grant's record never lands,
      // so nobody may be told of it.
      member.proxy.mode({ kind: 'holdUp' });
      // Agents never lock the structure: granted at once, in memory.
      const reply = probe.call('lock.acquire', { structure: true, mode: 'write' });
      const fence = await until('the probe granted in memory', TRIGGER_BOUND_MS, async () => {
        const status = await viewer.call('lock.status', {});
        if (status.kind !== 'ok') throw new Error(`lock.status failed: ${JSON.stringify(status)}`);
        const held = status.result.resources.find((r: any) => r.resource.structure === true)?.holders[0];
        return held?.sessionId === probe.sessionId ? (held.fence as number) : undefined;
      });
      await kill(member.process);
      const told = await reply;
      if (told.kind !== 'unknown') throw new Error(`the probe heard of its grant unrecorded: ${JSON.stringify(told)}`);
      member.proxy.mode({ kind: 'pass' });
      await ctx.cluster.restart(member);
      const next = await ctx.cluster.leader(epoch + 1);
      return `the probe granted the structure lock in memory (fence ${fence}), never answered; node ${member.index} killed before its record; node ${next.member.index} leads at ${next.epoch}`;
    } finally {
      await probe.close();
      await viewer.close();
    }
  },

  async 'leadership-a-b-a'(ctx) {
    const a = await ctx.cluster.leader();
    a.member.process.child.kill('SIGSTOP');
    const b = await takeoverAway(ctx, a.member, a.epoch);
    a.member.process.child.kill('SIGCONT');
    // Only A may take over next: the others are paused past their lease.
    const others = ctx.cluster.members.filter((m) => m !== a.member);
    for (const m of others) m.process.child.kill('SIGSTOP');
    const back = await ctx.cluster.leader(b.epoch + 1, [a.member]);
    for (const m of others) m.process.child.kill('SIGCONT');
    return `node ${a.member.index} (epoch ${a.epoch}) -> node ${b.member.index} (${b.epoch}) -> node ${a.member.index} (${back.epoch})`;
  },

  async 'second-failover-in-grace'(ctx) {
    const a = await ctx.cluster.leader();
    await ctx.cluster.crash(a.member);
    const b = await ctx.cluster.leader(a.epoch + 1);
    // At once: its grace window began when it first served.
    await ctx.cluster.crash(b.member);
    const c = await ctx.cluster.leader(b.epoch + 1);
    return `node ${a.member.index} (epoch ${a.epoch}) killed, node ${b.member.index} killed as soon as it led (${b.epoch}), node ${c.member.index} leads at ${c.epoch}`;
  },

  async 'postgres-restart'(ctx) {
    const before = await ctx.cluster.leader();
    await ctx.cluster.postgres.restart();
    const after = await ctx.cluster.leader(before.epoch);
    return `restarted under node ${before.member.index} (epoch ${before.epoch}); node ${after.member.index} leads at ${after.epoch}`;
  },

  async 'kill-standby'(ctx) {
    const { member: leader, epoch } = await ctx.cluster.leader();
    const standbys = ctx.cluster.members.filter((m) => m !== leader);
    const victim = standbys[Math.floor(ctx.rng() * standbys.length)]!;
    await ctx.cluster.crash(victim);
    const after = await ctx.cluster.leader(epoch);
    return `standby node ${victim.index} killed and restarted; node ${after.member.index} leads at ${after.epoch}`;
  },
};

export async function inject(kind: FaultKind, ctx: FaultContext): Promise<FaultNote> {
  const startedAt = now();
  const detail = await faults[kind](ctx);
  return { kind, startedAt, healedAt: now(), detail };
}
