import pg from 'pg';
import pino from 'pino';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { ClusterNode } from '../../src/cluster/index.ts';
import { systemClock } from '../../src/concurrency/index.ts';
import type { LeaderState } from '../../src/leader-state.ts';
import { nodeEndpoints } from '../../src/node-status.ts';
import { CloseCode } from '../../src/protocol/close-codes.ts';
import { type LockstepServer, start } from '../../src/server.ts';
import { TestClient } from '../helpers/client.ts';
import { freshDatabase } from '../helpers/postgres.ts';
import { health, TIMING } from './leader-nodes.ts';
import { until } from '../helpers/until.ts';

// Several nodes in this process on one database: exactly one leads, the others answer as
// standbys (NOT_LEADER naming the leader, then 4002; /healthz 503), and a leader that stops gives
// its lease up so that a standby leads at once, one epoch later.

const servers: LockstepServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop('test over')));
});

async function node(db: string): Promise<LockstepServer> {
  const s = await start({ port: 0, db, logLevel: 'silent', ...TIMING });
  servers.push(s);
  return s;
}

const http = (s: LockstepServer) => `http://127.0.0.1:${s.port}`;

describe('cluster: leader and standbys', () => {
  it('has exactly one leader; standbys answer NOT_LEADER with the leader, close with 4002, and say standby on /healthz', async () => {
    const db = await freshDatabase(inject('postgresUrl'));
    const first = await node(db);
    const others = [await node(db), await node(db)];

    const lead = await health(http(first));
    expect(lead.status).toBe(200);
    expect(lead.body).toMatchObject({ status: 'ok', role: 'leader', epoch: 1, leader: first.url, store: true });
    for (const s of others) {
      const h = await health(http(s));
      expect(h.status).toBe(503);
      expect(h.body).toMatchObject({ status: 'standby', role: 'standby', epoch: 1, leader: first.url, sessions: 0 });
      expect(typeof h.body.version).toBe('string');
    }

    const c = await TestClient.connect(others[0]!.url);
    const refused = await c.fail('session.hello', { protocol: 1, name: 'a' });
    expect(refused).toMatchObject({ code: 421, data: { type: 'NOT_LEADER', retryable: true, leader: first.url } });
    expect(refused.data?.retryAfterMs).toBeGreaterThan(0);
    expect(refused.data?.retryAfterMs).toBeLessThanOrEqual(TIMING.leaseTtlMs);
    expect((await c.closed).code).toBe(CloseCode.NOT_LEADER);

    // The leader serves as one node does.
    const agent = await TestClient.open(first.url, 'agent');
    expect((await agent.call('lock.acquire', { structure: true, mode: 'write' })).status).toBe('granted');
    await agent.call('edit.apply', { ops: [{ op: 'addFunction', name: 'f' }] });
    await agent.close();
    // Its lease connection and every store connection it used are in the row, for the next leader
    // to end: all of them live backends.
    const sql = new pg.Client({ connectionString: db });
    await sql.connect();
    try {
      const { rows } = await sql.query(
        `SELECT cardinality(pids) AS listed,
           (SELECT count(*)::int FROM pg_stat_activity a JOIN unnest(l.pids, l.pid_starts) AS b(pid, started)
              ON a.pid = b.pid AND a.backend_start = b.started) AS live,
           (SELECT count(*)::int FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()) AS all
         FROM lockstep_lease l`,
      );
      expect(rows[0].listed).toBeGreaterThanOrEqual(2);
      expect(rows[0].live).toBe(rows[0].listed);
      // The other backends are the standbys' lease connections, one each.
      expect(rows[0].all - rows[0].live).toBe(others.length);
    } finally {
      await sql.end();
    }
  });

  it('shows role, epoch and takeovers in /metrics on every node', async () => {
    const db = await freshDatabase(inject('postgresUrl'));
    const leader = await node(db);
    const standby = await node(db);
    const text = async (s: LockstepServer) => (await fetch(`${http(s)}/metrics`)).text();
    const lead = await text(leader);
    expect(lead).toMatch(/^lockstep_cluster_role\{role="leader"\} 1$/m);
    expect(lead).toMatch(/^lockstep_cluster_epoch 1$/m);
    expect(lead).toMatch(/^lockstep_cluster_takeovers_total 1$/m);
    expect(lead).toMatch(/^# TYPE lockstep_lock_grants_total counter$/m);
    const stand = await text(standby);
    expect(stand).toMatch(/^lockstep_cluster_role\{role="standby"\} 1$/m);
    expect(stand).toMatch(/^lockstep_cluster_takeovers_total 0$/m);
    expect(stand).toMatch(/^lockstep_process_cpu_user_seconds_total/m);
    expect(stand).not.toMatch(/lockstep_lock_grants_total/);
    // Renewals are timed once the leader has made one.
    await until('a renewal', 5_000, async () =>
      /^lockstep_cluster_lease_renewal_seconds_count\{outcome="ok"\} [1-9]/m.test(await text(leader))
        ? true
        : undefined,
    );
  });

  it('a node that holds the lease while it builds its leader state says taking-over (503), naming itself, until it leads', async () => {
    const db = await freshDatabase(inject('postgresUrl'));
    let build: () => void = () => undefined;
    const building = new Promise<void>((resolve) => {
      build = resolve;
    });
    const cluster = new ClusterNode<LeaderState>({
      db,
      advertise: 'ws://node-b:7420/ws',
      ttlMs: TIMING.leaseTtlMs,
      renewMs: TIMING.leaseRenewMs,
      driftMs: TIMING.leaseDriftMs,
      logger: pino({ level: 'silent' }),
      states: {
        // Held until the test has seen the state; then it fails, which leaves no state to close.
        open: async () => {
          await building;
          throw new Error('not built in this test');
        },
        discard: async () => undefined,
      },
    });
    const started = cluster.start();
    const endpoints = nodeEndpoints({ leader: () => cluster.current(), cluster, startedAt: 0, clock: systemClock });
    const seen = await until('the lease taken', 10_000, async () => {
      const h = await endpoints.health();
      return h.body.role === 'taking-over' ? h : undefined;
    });
    expect(seen).toMatchObject({
      ok: false,
      body: { status: 'taking-over', role: 'taking-over', epoch: 1, leader: 'ws://node-b:7420/ws', sessions: 0 },
    });
    expect(seen.body).not.toHaveProperty('leadingForMs');
    expect((await endpoints.metrics()).text).toMatch(/^lockstep_cluster_role\{role="taking-over"\} 1$/m);
    build();
    await started;
    await cluster.stop(async () => undefined);
  });

  it('hands the lease over at once when the leader stops, one epoch later, fences above the old ones', async () => {
    const db = await freshDatabase(inject('postgresUrl'));
    const a = await node(db);
    const b = await node(db);
    const agent = await TestClient.open(a.url, 'agent');
    const before = await agent.call('lock.acquire', { structure: true, mode: 'write' });
    await agent.close();
    await a.stop('test: leader leaves');
    servers.splice(servers.indexOf(a), 1);
    // The resigned lease is taken at the next look, within a renewal interval or so.
    const h = await until('b leads', 10_000, async () => {
      const got = await health(http(b));
      return got.status === 200 ? got : undefined;
    });
    expect(h.body).toMatchObject({ role: 'leader', epoch: 2, leader: b.url });
    const again = await TestClient.open(b.url, 'agent');
    const after = await again.call('lock.acquire', { structure: true, mode: 'write' });
    expect(after.grants[0].fence).toBeGreaterThan(before.grants[0].fence);
    await again.close();
  });
});
