import { randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { start } from '../../src/server.ts';
import { EventObserver, FaultClient, seededRandom, type Outcome } from '../helpers/fault-client.ts';

// A lock-set workload in the manner of Jepsen: agents lock a function, read it, append a node
// with the hash they read and the fence they were given, and release, while a seeded injector
// kills sockets from both sides, stops clients reading past their leases and withdraws waits.
// Nothing is asserted during the run; afterwards the clients' records, the sequenced event stream
// and the store's history are checked against each other.

const SEED = process.env.FAULT_SEED === undefined ? randomInt(2 ** 31) : Number(process.env.FAULT_SEED);
const AGENTS = 5;
const FUNCTIONS = 2;
const MAX_CYCLES = 700;
/** Bounds the run on a slow machine; no assertion depends on it. */
const RUN_MS = 10_000;
/** Short, so a client that stops reading is cut off by the server after 2-3 beats. */
const HEARTBEAT_MS = 300;
/** Node ids encode who appended them: agent * NODE_BASE + cycle. */
const NODE_BASE = 100_000;
/** What an edit relying on a lapsed lease may be refused with (docs/protocol.md, "Resources, modes, fences and leases"). */
const LAPSED_REFUSALS = ['STALE_FENCE', 'LOCK_REQUIRED', 'CONFLICT'];

type Side = 'client' | 'server';
type KillPoint = 'queued' | 'granted' | 'inflight' | 'afterEdit';

interface Plan {
  fn: number;
  ttlMs: number;
  waitTimeoutMs: number | undefined;
  kill: { side: Side; at: KillPoint } | undefined;
  lapse: 'plain' | 'reacquire' | undefined;
  cancel: boolean;
}

interface EditRecord {
  agent: number;
  nodeId: number;
  fn: number;
  sessionId: string;
  fence: number;
  lapsed: 'plain' | 'reacquire' | undefined;
  outcome: Outcome;
}

interface Agent {
  index: number;
  rng: () => number;
  client: FaultClient;
  cycle: number;
}

function pick<T>(rng: () => number, items: readonly T[]): T {
  return items[Math.floor(rng() * items.length)]!;
}

/** Every cycle draws the same number of values, so an agent's schedule depends on the seed alone. */
function plan(rng: () => number, fns: readonly number[]): Plan {
  const fn = pick(rng, fns);
  const r = rng();
  const side: Side = rng() < 0.5 ? 'client' : 'server';
  const clientPoint = pick(rng, ['queued', 'granted', 'inflight', 'afterEdit'] as const);
  const serverPoint = pick(rng, ['queued', 'granted'] as const);
  const shortTtl = 200 + Math.floor(rng() * 200);
  const lapseTtl = 100 + Math.floor(rng() * 50);
  const longTtl = rng() < 0.5;
  const timeout = rng() < 0.08 ? 20 + Math.floor(rng() * 80) : undefined;
  const kill = r < 0.07 ? (side === 'client' ? { side, at: clientPoint } : { side, at: serverPoint }) : undefined;
  const lapse = r >= 0.07 && r < 0.12 ? 'plain' : r >= 0.12 && r < 0.16 ? 'reacquire' : undefined;
  return {
    fn,
    ttlMs: lapse !== undefined ? lapseTtl : longTtl ? 5_000 : shortTtl,
    waitTimeoutMs: lapse === undefined && kill === undefined ? timeout : undefined,
    kill,
    lapse,
    cancel: r >= 0.16 && r < 0.24,
  };
}

const key = (program: string, r: { function?: number; structure?: boolean }) =>
  `${program}/${r.structure === true ? 'structure' : String(r.function)}`;

describe('lock-set workload under faults', () => {
  it('loses no acknowledged edit, applies none without the lock, refuses lapsed leases, never grants conflicting locks', async () => {
    console.log(`lockset FAULT_SEED=${SEED}`);
    const dir = mkdtempSync(join(tmpdir(), 'lockstep-lockset-'));
    const server = await start({
      port: 0,
      db: join(dir, 'lockset.db'),
      logLevel: 'silent',
      heartbeatMs: HEARTBEAT_MS,
      eventBuffer: 1_000_000,
    });
    const observer = new EventObserver(server.url, ['agents', 'locks', 'edits']);
    const seed = `FAULT_SEED=${SEED}`;
    try {
      await observer.start();
      const allSessions: string[] = [];
      const setup = await FaultClient.open(server.url, 'setup');
      allSessions.push(setup.sessionId);
      await setup.call('lock.acquire', { structure: true, mode: 'write' });
      const names = Array.from({ length: FUNCTIONS }, (_, i) => `f${i}`);
      const created = await setup.call('edit.apply', { ops: names.map((name) => ({ op: 'addFunction', name })) });
      if (created.kind !== 'ok') throw new Error(`setup failed: ${JSON.stringify(created)}`);
      const fns: number[] = created.result.created.map((c: { id: number }) => c.id);
      const setupRevision: number = created.result.revision;
      await setup.close();

      const edits: EditRecord[] = [];
      const calls = new Map<string, number>();
      const faults = new Map<string, number>();
      const count = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);

      const connect = async (index: number) => {
        const client = await FaultClient.open(server.url, `agent-${index}`);
        allSessions.push(client.sessionId);
        return client;
      };

      const call = async (a: Agent, method: string, params: unknown): Promise<Outcome> => {
        const out = await a.client.call(method, params);
        count(calls, `${method} ${out.kind === 'error' ? out.type : out.kind}`);
        return out;
      };

      const kill = async (a: Agent, side: Side, at: string) => {
        count(faults, `${side} kill @${at}`);
        if (side === 'client') {
          await a.client.terminate();
          return;
        }
        // The server takes a socket that stops answering pings for dead: that is its own kill.
        const sessionId = a.client.sessionId;
        a.client.pause();
        await observer.waitFor((e) => e.topic === 'agents' && e.type === 'left' && e.data.sessionId === sessionId);
        a.client.resume();
        await a.client.closed;
      };

      /** Waits out a queued ticket: its grant, or undefined (wait timeout, socket gone). */
      const awaitTicket = async (a: Agent, ticket: string): Promise<{ fence: number } | undefined> => {
        const note = await a.client.next(
          (n) => (n.method === 'lock.granted' || n.method === 'lock.waitTimeout') && n.params.ticket === ticket,
        );
        if (note === undefined) return undefined;
        if (note.method === 'lock.waitTimeout') {
          count(faults, 'wait timeout (natural)');
          return undefined;
        }
        return note.params.grants[0];
      };

      const runCycle = async (a: Agent, p: Plan): Promise<void> => {
        const c = a.client;
        const acquired = await call(a, 'lock.acquire', {
          functions: [p.fn],
          mode: 'write',
          wait: true,
          ttlMs: p.ttlMs,
          ...(p.waitTimeoutMs === undefined ? {} : { waitTimeoutMs: p.waitTimeoutMs }),
        });
        if (acquired.kind !== 'ok') return;
        let grant: { fence: number } | undefined;
        if (acquired.result.status === 'queued') {
          const ticket: string = acquired.result.ticket;
          if (p.cancel) {
            count(faults, 'cancel wait');
            // NOT_FOUND means the ticket was granted or timed out first; that notification came
            // before this reply and is waiting in the client.
            if ((await call(a, 'lock.cancel', { ticket })).kind === 'ok') return;
          }
          if (p.kill?.at === 'queued') return kill(a, p.kill.side, 'queued');
          grant = await awaitTicket(a, ticket);
        } else {
          grant = acquired.result.grants[0];
        }
        if (grant === undefined) return;
        if (p.kill?.at === 'granted') return kill(a, p.kill.side, 'granted');

        const read = await call(a, 'function.get', { function: p.fn });
        if (read.kind !== 'ok') return;
        const fence = grant.fence;
        if (p.lapse !== undefined) {
          // Stop reading until the server has ended the lease, as a paused process would.
          const sessionId = c.sessionId;
          c.pause();
          const ended = await observer.waitFor(
            (e) =>
              e.type === 'released' &&
              e.data.sessionId === sessionId &&
              e.data.locks.some((l: { fence: number }) => l.fence === fence),
          );
          c.resume();
          if (ended.data.reason !== 'expired') {
            // The pause outlasted the heartbeat: the server cut the session first.
            count(faults, 'lapse turned server kill');
            await c.closed;
            return;
          }
          count(faults, `lapse (${p.lapse})`);
          if (p.lapse === 'reacquire') {
            // The woken client takes the lock again but still sends the edit it prepared before.
            const again = await call(a, 'lock.acquire', { functions: [p.fn], mode: 'write', wait: true, ttlMs: 5_000 });
            if (again.kind !== 'ok') return;
            const regrant =
              again.result.status === 'queued' ? await awaitTicket(a, again.result.ticket) : again.result.grants[0];
            if (regrant === undefined) return;
          }
        }

        const nodeId = a.index * NODE_BASE + a.cycle;
        const record: EditRecord = {
          agent: a.index,
          nodeId,
          fn: p.fn,
          sessionId: c.sessionId,
          fence,
          lapsed: p.lapse,
          outcome: { kind: 'unknown' },
        };
        edits.push(record);
        const pending = call(a, 'edit.apply', {
          ops: [
            {
              op: 'addNode',
              function: p.fn,
              node: { id: nodeId, op: 'const', attrs: { agent: a.index, cycle: a.cycle } },
            },
          ],
          // Without an expected hash the re-locking client's old fence is all that can stop its
          // stale edit, so that check cannot hide behind a CONFLICT.
          ...(p.lapse === 'reacquire' ? {} : { expectedHashes: { [p.fn]: read.result.hash } }),
          fences: { [p.fn]: fence },
        });
        if (p.kill?.at === 'inflight') {
          count(faults, `${p.kill.side} kill @inflight`);
          void c.terminate();
        }
        record.outcome = await pending;
        if (record.outcome.kind === 'unknown') return;
        if (p.kill?.at === 'afterEdit') return kill(a, p.kill.side, 'afterEdit');
        await call(a, 'lock.release', { functions: [p.fn] });
      };

      const agents: Agent[] = [];
      for (let i = 0; i < AGENTS; i++)
        agents.push({ index: i, rng: seededRandom(SEED * 31 + i), client: await connect(i), cycle: 0 });

      const started = Date.now();
      let cycles = 0;
      await Promise.all(
        agents.map(async (a) => {
          while (cycles < MAX_CYCLES && Date.now() - started < RUN_MS) {
            cycles++;
            a.cycle++;
            await runCycle(a, plan(a.rng, fns));
            if (a.client.isClosed) a.client = await connect(a.index);
          }
        }),
      );
      const runMs = Date.now() - started;
      await Promise.all(agents.map((a) => a.client.close()));
      // Every session's end is on the stream once its left event is: nothing of it can follow.
      await Promise.all(allSessions.map((id) => observer.waitFor((e) => e.type === 'left' && e.data.sessionId === id)));
      await observer.stop();

      const violations: string[] = [];
      const events = observer.events;

      // The stream itself: every sequence number from the first on, once, in order.
      expect(observer.truncated, `${seed}: the observer's replay was truncated`).toBe(false);
      events.forEach((e, i) => {
        if (e.seq !== i + 1) violations.push(`event #${i} has seq ${e.seq}, expected ${i + 1}`);
      });

      // Holders over time, from the sequenced lock events; each commit checked against them.
      const holders = new Map<string, Map<string, { mode: string; fence: number }>>();
      const holdersOf = (k: string) => holders.get(k) ?? holders.set(k, new Map()).get(k)!;
      const lastFence = new Map<string, number>();
      const commitFence = new Map<number, { sessionId: string; fence: number }>();
      let grantsChecked = 0;
      for (const e of events) {
        const d = e.data;
        if (e.topic === 'locks' && e.type === 'granted') {
          for (const g of d.grants as Array<{
            resource: { program: string; function?: number; structure?: boolean };
            mode: string;
            fence: number;
          }>) {
            const hs = holdersOf(key(g.resource.program, g.resource));
            const mine = hs.get(d.sessionId);
            if (mine !== undefined && mine.fence === g.fence) {
              mine.mode = g.mode;
              continue;
            }
            grantsChecked++;
            const before = lastFence.get(g.resource.program) ?? 0;
            if (g.fence <= before) violations.push(`seq ${e.seq}: fence ${g.fence} not above ${before}`);
            lastFence.set(g.resource.program, g.fence);
            for (const [other, h] of hs) {
              if (other !== d.sessionId && (g.mode === 'write' || h.mode === 'write')) {
                violations.push(
                  `seq ${e.seq}: ${g.mode} grant to ${d.name} on ${key(g.resource.program, g.resource)} while ${other} holds ${h.mode}`,
                );
              }
            }
            hs.set(d.sessionId, { mode: g.mode, fence: g.fence });
          }
        } else if (e.topic === 'locks' && e.type === 'released') {
          for (const l of d.locks as Array<{
            resource: { program: string; function?: number; structure?: boolean };
            fence: number;
          }>) {
            const hs = holdersOf(key(l.resource.program, l.resource));
            if (hs.get(d.sessionId)?.fence !== l.fence)
              violations.push(`seq ${e.seq}: ${d.name} released fence ${l.fence} it did not hold`);
            hs.delete(d.sessionId);
          }
        } else if (e.topic === 'locks' && e.type === 'downgraded') {
          for (const l of d.locks as Array<{ resource: { program: string; function?: number } }>) {
            const h = holdersOf(key(l.resource.program, l.resource)).get(d.sessionId);
            if (h !== undefined) h.mode = 'read';
          }
        } else if (e.topic === 'edits' && e.type === 'committed') {
          const createdIds = new Set((d.created as Array<{ id: number }>).map((x) => x.id));
          const needs = (d.functions as Array<{ id: number }>)
            .filter((f) => !createdIds.has(f.id))
            .map((f) => key(d.program, { function: f.id }));
          if (createdIds.size > 0) needs.push(key(d.program, { structure: true }));
          for (const k of needs) {
            const h = holdersOf(k).get(d.sessionId);
            if (h?.mode !== 'write')
              violations.push(
                `seq ${e.seq}: revision ${d.revision} committed by ${d.name} without the write lock on ${k}`,
              );
            else if (!k.endsWith('/structure')) commitFence.set(d.revision, { sessionId: d.sessionId, fence: h.fence });
          }
        }
      }

      // The store: which revision added which node, and what each function holds in the end.
      const checker = await FaultClient.open(server.url, 'checker', 'observer');
      const revisions: Array<{ revision: number; by: { sessionId: string }; functions: number[] }> = [];
      for (;;) {
        const page = await checker.call('history.list', { after: revisions.at(-1)?.revision ?? 0, limit: 1000 });
        if (page.kind !== 'ok') throw new Error(`history.list failed: ${JSON.stringify(page)}`);
        revisions.push(...page.result.revisions);
        if (page.result.revisions.length < 1000) break;
      }
      revisions.forEach((r, i) => {
        if (r.revision !== i + 1) violations.push(`history has revision ${r.revision} at position ${i + 1}`);
      });
      const addedIn = new Map<number, number[]>();
      const revisionBy = new Map<number, string>();
      const touches = new Map<number, number>();
      for (const r of revisions) {
        if (r.revision <= setupRevision) continue;
        revisionBy.set(r.revision, r.by.sessionId);
        const diff = await checker.call('history.diff', { from: r.revision - 1, to: r.revision });
        if (diff.kind !== 'ok') throw new Error(`history.diff failed: ${JSON.stringify(diff)}`);
        for (const f of diff.result.functions) {
          touches.set(f.id, (touches.get(f.id) ?? 0) + 1);
          for (const n of f.diff.nodes.added as Array<{ id: number }>)
            addedIn.set(n.id, [...(addedIn.get(n.id) ?? []), r.revision]);
        }
      }
      const finalNodes = new Map<number, number>();
      for (const fn of fns) {
        const got = await checker.call('function.get', { function: fn });
        if (got.kind !== 'ok') throw new Error(`function.get failed: ${JSON.stringify(got)}`);
        for (const n of got.result.function.nodes as Array<{ id: number }>)
          finalNodes.set(n.id, (finalNodes.get(n.id) ?? 0) + 1);
        if (got.result.version !== 1 + (touches.get(fn) ?? 0)) {
          violations.push(`function ${fn} is at version ${got.result.version} after ${touches.get(fn) ?? 0} edits`);
        }
      }
      await checker.close();

      const byNode = new Map(edits.map((r) => [r.nodeId, r]));
      const tally = new Map<string, number>();
      for (const r of edits) {
        const revs = addedIn.get(r.nodeId) ?? [];
        const inStore = finalNodes.get(r.nodeId) ?? 0;
        const what = `agent ${r.agent} node ${r.nodeId}`;
        count(
          tally,
          `${r.lapsed === undefined ? '' : `lapsed (${r.lapsed}) `}${r.outcome.kind === 'error' ? r.outcome.type : r.outcome.kind}${r.outcome.kind === 'unknown' ? (revs.length > 0 ? ' (applied)' : ' (not applied)') : ''}`,
        );
        if (r.outcome.kind === 'ok') {
          const revision: number = r.outcome.result.revision;
          if (revs.length !== 1 || revs[0] !== revision)
            violations.push(`${what}: acknowledged as revision ${revision}, added in [${revs.join(', ')}]`);
          if (inStore !== 1) violations.push(`${what}: acknowledged, present ${inStore} times`);
        } else if (r.outcome.kind === 'error') {
          if (revs.length > 0 || inStore > 0)
            violations.push(`${what}: refused with ${r.outcome.type} but added in [${revs.join(', ')}]`);
        } else if (revs.length > 1 || inStore > 1) {
          violations.push(`${what}: unknown outcome, added ${revs.length} times, present ${inStore} times`);
        }
        if (r.lapsed !== undefined) {
          if (revs.length > 0)
            violations.push(`${what}: sent after its lease lapsed, yet applied in revision ${revs.join(', ')}`);
          if (r.outcome.kind === 'ok' || (r.outcome.kind === 'error' && !LAPSED_REFUSALS.includes(r.outcome.type))) {
            violations.push(`${what}: sent after its lease lapsed, answered ${JSON.stringify(r.outcome)}`);
          }
        }
        for (const revision of revs) {
          const holder = commitFence.get(revision);
          if (revisionBy.get(revision) !== r.sessionId)
            violations.push(`${what}: revision ${revision} is by ${revisionBy.get(revision)}, not ${r.sessionId}`);
          if (holder === undefined || holder.sessionId !== r.sessionId || holder.fence !== r.fence) {
            violations.push(
              `${what}: sent with fence ${r.fence}, committed in revision ${revision} under ${JSON.stringify(holder)}`,
            );
          }
        }
      }
      for (const [nodeId, revs] of addedIn) {
        const r = byNode.get(nodeId);
        if (r === undefined || (r.outcome.kind === 'error' && revs.length > 0))
          violations.push(`node ${nodeId} in revisions [${revs.join(', ')}] matches no edit that may have applied`);
      }
      for (const [nodeId, n] of finalNodes) {
        if (!addedIn.has(nodeId))
          violations.push(`node ${nodeId} is in a function (${n} times) but no revision added it`);
      }

      const acked = edits.filter((r) => r.outcome.kind === 'ok').length;
      const lapsed = edits.filter((r) => r.lapsed !== undefined).length;
      const fmt = (m: Map<string, number>) =>
        [...m]
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([k, v]) => `    ${k}: ${v}`)
          .join('\n');
      const totalCalls = [...calls.values()].reduce((s, v) => s + v, 0);
      console.log(
        [
          `lockset ${seed}: ${cycles} cycles by ${AGENTS} agents on ${FUNCTIONS} functions in ${runMs} ms, ${allSessions.length - 1} agent sessions`,
          `  operations (calls by outcome): ${totalCalls}`,
          fmt(calls),
          `  faults injected: ${[...faults.values()].reduce((s, v) => s + v, 0)}`,
          fmt(faults),
          `  edits checked: ${edits.length} (acknowledged ${acked}, after a lapsed lease ${lapsed})`,
          fmt(tally),
          `  events checked: ${events.length} (new grants ${grantsChecked}, commits ${commitFence.size}), observer reconnects ${observer.reconnects}`,
          `  revisions checked: ${revisions.length}, nodes in the store: ${finalNodes.size}`,
        ].join('\n'),
      );

      expect(violations, `${seed}: guarantees broken`).toEqual([]);
      expect(acked, `${seed}: no edit was acknowledged`).toBeGreaterThan(0);
      expect(commitFence.size, `${seed}: commits on the stream vs revisions`).toBe(revisions.length - setupRevision);
    } finally {
      await server.stop('test over');
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
