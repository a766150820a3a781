import { afterEach, describe, expect, inject, it } from 'vitest';
import { CloseCode } from '../../src/protocol/close-codes.ts';
import { TestClient } from '../helpers/client.ts';
import { freshDatabase } from '../helpers/postgres.ts';
import { addFunctions } from '../helpers/server.ts';
import { kill, leaderOf, type Node, spawnNode, TIMING } from './leader-nodes.ts';
import { until } from '../helpers/until.ts';

// Takeovers with real processes: a leader killed with SIGKILL, and one paused with SIGSTOP past
// its lease and resumed. Bounds are generous (a loaded 2-core machine); the lease is 1 s.

/** From the fault to a new leader serving: a lease, a look, a takeover and a store load. */
const TAKEOVER_BOUND_MS = 15_000;
/** Each test starts up to three node processes and waits for up to three takeovers. */
const TEST_TIMEOUT_MS = 120_000;

/**
 * These tests are about leadership alone: resume grace off, so that a new leader holds no lock
 * for a deposed leader's sessions (failover.test.ts and window.test.ts test that).
 */
const NO_GRACE = ['--session-grace-ms', '0'];

const nodes: Node[] = [];
const clients: TestClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(nodes.splice(0).map(kill));
});

async function cluster(size: number): Promise<Node[]> {
  const db = await freshDatabase(inject('postgresUrl'));
  const made: Node[] = [];
  for (let i = 0; i < size; i++) {
    const node = await spawnNode(db, NO_GRACE);
    nodes.push(node);
    made.push(node);
  }
  return made;
}

async function agent(node: Node, name: string): Promise<TestClient> {
  const c = await TestClient.open(node.url, name);
  clients.push(c);
  return c;
}

async function writeFence(c: TestClient, fn: number): Promise<number> {
  const g = await c.call('lock.acquire', { functions: [fn], mode: 'write' });
  expect(g.status).toBe('granted');
  return g.grants[0].fence;
}

describe('cluster: failover', () => {
  it('after kill -9 of the leader a standby leads within the bound, one epoch later, with the store and higher fences', {
    timeout: TEST_TIMEOUT_MS,
  }, async () => {
    const all = await cluster(3);
    const first = await leaderOf(all, TAKEOVER_BOUND_MS);
    expect(first.epoch).toBe(1);
    const a = await agent(first.node, 'a');
    const [fn] = await addFunctions(a, ['f'] as const);
    const before = await writeFence(a, fn);

    const killedAt = Date.now();
    await kill(first.node);
    const rest = all.filter((n) => n !== first.node);
    const next = await leaderOf(rest, TAKEOVER_BOUND_MS, 2);
    const tookMs = Date.now() - killedAt;
    expect(next.epoch).toBe(2);
    expect(tookMs).toBeGreaterThan(TIMING.leaseTtlMs - TIMING.leaseDriftMs);
    // Its uptime is the node's, from before the kill: the takeover did not reset it.
    const { body } = await next.node.health();
    expect(body.uptimeMs as number).toBeGreaterThan(
      (body.leadingForMs as number) + TIMING.leaseTtlMs - TIMING.leaseDriftMs,
    );

    const b = await agent(next.node, 'b');
    const program = await b.call('program.get', {});
    expect(program.functions.map((f: { name: string }) => f.name)).toEqual(['f']);
    expect(await writeFence(b, fn)).toBeGreaterThan(before);
    // The other standby names the new leader from its next look at the lease.
    const standby = rest.find((n) => n !== next.node)!;
    const seen = await until('the standby names the new leader', 10_000, async () => {
      const h = await standby.health();
      return h.body.epoch === 2 ? h : undefined;
    });
    expect(seen).toMatchObject({ status: 503, body: { role: 'standby', leader: next.node.url } });
  });

  it('a leader paused past its lease grants nothing when resumed, closes its sockets with 4002 and follows; A -> B -> A keeps fences increasing', {
    timeout: TEST_TIMEOUT_MS,
  }, async () => {
    const [a, b] = await cluster(2);
    const first = await leaderOf([a!, b!], TAKEOVER_BOUND_MS);
    expect(first.node).toBe(a);
    const holder = await agent(a!, 'holder');
    const waiter = await agent(a!, 'waiter');
    const [fn] = await addFunctions(holder, ['f'] as const);
    const fenceA = await writeFence(holder, fn);
    expect((await waiter.call('lock.acquire', { functions: [fn], mode: 'write', wait: true })).status).toBe('queued');

    a!.child.kill('SIGSTOP');
    const second = await leaderOf([b!], TAKEOVER_BOUND_MS, 2);
    expect(second.epoch).toBe(2);
    const onB = await agent(b!, 'on-b');
    const fenceB = await writeFence(onB, fn);
    expect(fenceB).toBeGreaterThan(fenceA);

    // Sent to the paused leader, read when it resumes: a release that would grant the waiter, and
    // a late edit.
    let answered = false;
    void holder.request('lock.release', { functions: [fn] }).then(() => {
      answered = true;
    });
    void holder.request('edit.apply', { ops: [{ op: 'addFunction', name: 'late' }] }).then(() => {
      answered = true;
    });
    a!.child.kill('SIGCONT');
    expect((await holder.closed).code).toBe(CloseCode.NOT_LEADER);
    expect((await waiter.closed).code).toBe(CloseCode.NOT_LEADER);
    expect(answered).toBe(false);
    expect(waiter.pending('lock.granted')).toEqual([]);

    const follows = await until('a is a standby that names b', TAKEOVER_BOUND_MS, async () => {
      const h = await a!.health();
      return h.body.role === 'standby' && h.body.leader === b!.url ? h : undefined;
    });
    expect(follows).toMatchObject({ status: 503, body: { epoch: 2 } });
    // The late edit was never committed.
    const program = await onB.call('program.get', {});
    expect(program.functions.map((f: { name: string }) => f.name)).toEqual(['f']);

    // B dies; A leads again, above every fence B gave.
    await kill(b!);
    const third = await leaderOf([a!], TAKEOVER_BOUND_MS, 3);
    expect(third.epoch).toBe(3);
    const again = await agent(a!, 'again');
    expect(await writeFence(again, fn)).toBeGreaterThan(fenceB);
  });
});
