import { afterEach, describe, expect, inject, it } from 'vitest';
import { CloseCode } from '../../src/protocol/close-codes.ts';
import { type LockstepServer, start } from '../../src/server.ts';
import { TestClient } from '../helpers/client.ts';
import { freshDatabase } from '../helpers/postgres.ts';
import { health, TIMING } from './leader-nodes.ts';
import { until } from '../helpers/until.ts';

// docs/cluster.md rule 2 at its narrowest: the leader runs in this process, whose event loop is held
// (as SIGSTOP would) past the lease deadline and past a lock's lease. When it runs again, the
// first thing due is that lock's expiry, which hands the lock to a waiter: the grant is the
// first check past the deadline, and the waiter must never hear of it.

const servers: LockstepServer[] = [];
const clients: TestClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.stop('test over')));
});

/** Holds this process's event loop: no timer, no socket, no renewal runs meanwhile. */
function stall(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // busy: a paused process
  }
}

describe('cluster: a leader stalled past its deadline', () => {
  it('grants nothing when it runs again: the waiter sees 4002 and no lock.granted; it steps down for the deadline', async () => {
    const db = await freshDatabase(inject('postgresUrl'));
    const s = await start({ port: 0, db, logLevel: 'silent', ...TIMING });
    servers.push(s);
    const holder = await TestClient.open(s.url, 'holder');
    const waiter = await TestClient.open(s.url, 'waiter');
    clients.push(holder, waiter);
    await holder.call('lock.acquire', { structure: true, mode: 'write' });
    expect((await waiter.call('lock.acquire', { structure: true, mode: 'write', wait: true })).status).toBe('queued');
    // The shortest lease, set right before the stall: it ends inside it, before the node's deadline
    // (at least a renewal interval later), so its expiry is the first thing due when the loop runs.
    await holder.call('lock.renew', { structure: true, ttlMs: 100 });

    stall(TIMING.leaseTtlMs + 500);

    expect((await waiter.closed).code).toBe(CloseCode.NOT_LEADER);
    expect((await holder.closed).code).toBe(CloseCode.NOT_LEADER);
    expect(waiter.pending('lock.granted')).toEqual([]);
    expect(holder.pending('lock.expired')).toEqual([]);
    const metrics = await (await fetch(`http://127.0.0.1:${s.port}/metrics`)).text();
    expect(metrics).toMatch(/^lockstep_cluster_step_downs_total\{reason="deadline"\} 1$/m);
    // Alone on its database, it takes the expired lease again: a new epoch, a fresh state, in
    // which the two sessions it journaled are held for their owners through the grace window.
    const back = await until('leads again', 10_000, async () => {
      const h = await health(`http://127.0.0.1:${s.port}`);
      return h.status === 200 ? h : undefined;
    });
    expect(back.body).toMatchObject({ role: 'leader', epoch: 2, sessions: 2 });
  });
});
