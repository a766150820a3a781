import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, inject, it } from 'vitest';
import { FENCE_BLOCK } from '../../src/service/fences.ts';
import { FaultClient, type Outcome } from '../helpers/fault-client.ts';
import { freshDatabase } from '../helpers/postgres.ts';

// The server process is SIGKILLed under edit load and started again on the same database. Clients
// keep their own record of what was acknowledged; the restarted server must have all of it, hand
// out fences above every fence issued before, and take the clients back as new sessions.

const BIN = fileURLToPath(new URL('../../bin/lockstep.js', import.meta.url));
const EDITORS = 3;
/** Acknowledged edits before the kill. */
const KILL_AFTER_ACKS = 40;
/** Acknowledged edits each editor must make on the restarted server. */
const ACKS_AFTER_RESTART = 5;
const CHURN_AFTER_RESTART = 5;
/** Functions the churner locks in one request: one fence each. */
const CHURN_BATCH = 50;
const NODE_BASE = 100_000;

interface Served {
  child: ChildProcess;
  url: Promise<string>;
  exited: Promise<NodeJS.Signals | null>;
}

function serve(db: string): Served {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--db', db, '--log-level', 'silent'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    child.once('exit', (_code, signal) => resolve(signal)),
  );
  const url = new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = /^lockstep listening on (ws:\/\/\S+)$/.exec(line);
      if (m !== null) resolve(m[1]!);
    });
    void exited.then((signal) => reject(new Error(`server exited (${signal}) before listening`)));
  });
  return { child, url, exited };
}

interface EditRecord {
  agent: number;
  nodeId: number;
  fn: number;
  generation: number;
  sessionId: string;
  outcome: Outcome;
}

describe('crash and restart', () => {
  it('keeps every acknowledged edit across a SIGKILL, continues fences above the old ones, and takes the clients back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lockstep-crash-'));
    // The same workload against the run's PostgreSQL in the "postgres" project.
    const db =
      process.env.LOCKSTEP_TEST_DB === 'postgres' ? await freshDatabase(inject('postgresUrl')) : join(dir, 'x.db');
    const started = Date.now();
    const first = serve(db);
    let second: Served | undefined;
    try {
      let generation = 1;
      let restart!: (url: string) => void;
      const restarted = new Promise<string>((resolve) => (restart = resolve));
      const firstUrl = await first.url;

      const setup = await FaultClient.open(firstUrl, 'setup');
      await setup.call('lock.acquire', { structure: true, mode: 'write' });
      const names = ['f0', 'f1', ...Array.from({ length: CHURN_BATCH }, (_, i) => `churn${i}`)];
      const made = await setup.call('edit.apply', { ops: names.map((name) => ({ op: 'addFunction', name })) });
      if (made.kind !== 'ok') throw new Error(`setup failed: ${JSON.stringify(made)}`);
      const [f0, f1, ...churnFns] = made.result.created.map((c: { id: number }) => c.id) as [
        number,
        number,
        ...number[],
      ];
      await setup.close();

      const edits: EditRecord[] = [];
      const fences: Array<{ generation: number; fence: number }> = [];
      const sessions: Array<{ generation: number; sessionId: string }> = [];
      let acksBeforeKill = 0;

      const connect = async (name: string): Promise<{ client: FaultClient; generation: number }> => {
        const gen = generation;
        const client = await FaultClient.open(gen === 1 ? firstUrl : await restarted, name);
        sessions.push({ generation: gen, sessionId: client.sessionId });
        return { client, generation: gen };
      };
      /** After the crash a client waits for the new server; it never retries against the dead one. */
      const reconnect = async (name: string, was: number) => {
        if (was === 1) await restarted;
        return connect(name);
      };

      const maybeKill = () => {
        const maxFence = Math.max(0, ...fences.map((f) => f.fence));
        // Past the first reserved block, so the kill also covers a ceiling written mid-run.
        if (generation === 1 && acksBeforeKill >= KILL_AFTER_ACKS && maxFence > FENCE_BLOCK) {
          generation = 2;
          first.child.kill('SIGKILL');
        }
      };

      /** The fences of the grants, in function order, once the whole request is granted. */
      const lockWrite = async (c: FaultClient, gen: number, fns: number[]): Promise<number[] | undefined> => {
        const r = await c.call('lock.acquire', { functions: fns, mode: 'write', wait: true });
        if (r.kind !== 'ok') return undefined;
        let grants: Array<{ fence: number }> | undefined = r.result.grants;
        if (r.result.status === 'queued') {
          const note = await c.next((n) => n.method === 'lock.granted' && n.params.ticket === r.result.ticket);
          grants = note?.params.grants;
        }
        if (grants === undefined) return undefined;
        for (const g of grants) fences.push({ generation: gen, fence: g.fence });
        return grants.map((g) => g.fence);
      };

      const editor = async (agent: number) => {
        let { client, generation: gen } = await connect(`editor-${agent}`);
        let acksAfter = 0;
        for (let n = 1; acksAfter < ACKS_AFTER_RESTART; n++) {
          if (client.isClosed) ({ client, generation: gen } = await reconnect(`editor-${agent}`, gen));
          const fn = n % 2 === 0 ? f0 : f1;
          const fence = (await lockWrite(client, gen, [fn]))?.[0];
          if (fence === undefined) continue;
          const read = await client.call('function.get', { function: fn });
          if (read.kind !== 'ok') continue;
          const nodeId = agent * NODE_BASE + n;
          const record: EditRecord = {
            agent,
            nodeId,
            fn,
            generation: gen,
            sessionId: client.sessionId,
            outcome: { kind: 'unknown' },
          };
          edits.push(record);
          record.outcome = await client.call('edit.apply', {
            ops: [{ op: 'addNode', function: fn, node: { id: nodeId, op: 'const', attrs: { agent, n } } }],
            expectedHashes: { [fn]: read.result.hash },
            fences: { [fn]: fence },
          });
          if (record.outcome.kind === 'ok') {
            if (gen === 1) acksBeforeKill++;
            else acksAfter++;
            maybeKill();
          }
          await client.call('lock.release', { functions: [fn] });
        }
        await client.close();
      };

      // Batches of grants without edits push the fence counter past its first reserved block
      // before the kill.
      const churner = async () => {
        let { client, generation: gen } = await connect('churner');
        let after = 0;
        while (after < CHURN_AFTER_RESTART) {
          if (client.isClosed) ({ client, generation: gen } = await reconnect('churner', gen));
          if ((await lockWrite(client, gen, churnFns)) === undefined) continue;
          if (gen === 2) after++;
          maybeKill();
          await client.call('lock.release', { functions: churnFns });
        }
        await client.close();
      };

      const load = Promise.all([...Array.from({ length: EDITORS }, (_, i) => editor(i)), churner()]);
      expect(await first.exited).toBe('SIGKILL');
      second = serve(db);
      restart(await second.url);
      await load;

      const checker = await FaultClient.open(await second.url, 'checker', 'observer');
      const listed = await checker.call('history.list', { limit: 1000 });
      if (listed.kind !== 'ok') throw new Error(`history.list failed: ${JSON.stringify(listed)}`);
      const revisions: Array<{ revision: number; by: { sessionId: string } }> = listed.result.revisions;
      expect(revisions.map((r) => r.revision)).toEqual(revisions.map((_, i) => i + 1));
      const byRevision = new Map(revisions.map((r) => [r.revision, r.by.sessionId]));

      const nodesOf = new Map<number, number>();
      for (const fn of [f0, f1]) {
        const got = await checker.call('function.get', { function: fn });
        if (got.kind !== 'ok') throw new Error(`function.get failed: ${JSON.stringify(got)}`);
        for (const node of got.result.function.nodes as Array<{ id: number }>)
          nodesOf.set(node.id, (nodesOf.get(node.id) ?? 0) + 1);
      }

      const acked = edits.filter(
        (r): r is EditRecord & { outcome: { kind: 'ok'; result: any } } => r.outcome.kind === 'ok',
      );
      for (const r of acked) {
        const revision: number = r.outcome.result.revision;
        const what = `${r.generation === 1 ? 'before' : 'after'} the crash, editor ${r.agent} node ${r.nodeId} (revision ${revision})`;
        expect(nodesOf.get(r.nodeId), `${what}: copies in the function`).toBe(1);
        expect(byRevision.get(revision), `${what}: author in history`).toBe(r.sessionId);
        const diff = await checker.call('history.diff', { from: revision - 1, to: revision });
        if (diff.kind !== 'ok') throw new Error(`history.diff failed: ${JSON.stringify(diff)}`);
        const added = diff.result.functions.flatMap((f: { diff: { nodes: { added: Array<{ id: number }> } } }) =>
          f.diff.nodes.added.map((n) => n.id),
        );
        expect(added, `${what}: what that revision added`).toEqual([r.nodeId]);
      }
      const inFlight = edits.filter((r) => r.outcome.kind === 'unknown');
      for (const r of inFlight) expect(nodesOf.get(r.nodeId) ?? 0, `in-flight node ${r.nodeId}`).toBeLessThanOrEqual(1);
      const known = new Set([...acked, ...inFlight].map((r) => r.nodeId));
      expect(
        [...nodesOf.keys()].filter((id) => !known.has(id)),
        'nodes no acknowledged or in-flight edit added',
      ).toEqual([]);
      await checker.close();

      const before = fences.filter((f) => f.generation === 1).map((f) => f.fence);
      const after = fences.filter((f) => f.generation === 2).map((f) => f.fence);
      const lastBefore = Math.max(...before);
      expect(after.length).toBeGreaterThan(0);
      expect(Math.min(...after), 'first fence after the restart').toBeGreaterThan(lastBefore);

      const oldSessions = new Set(sessions.filter((s) => s.generation === 1).map((s) => s.sessionId));
      const newSessions = sessions.filter((s) => s.generation === 2).map((s) => s.sessionId);
      expect(newSessions.length).toBe(EDITORS + 1);
      expect(newSessions.filter((id) => oldSessions.has(id))).toEqual([]);
      const lastAckBefore = Math.max(
        ...acked.filter((r) => r.generation === 1).map((r) => r.outcome.result.revision as number),
      );
      const firstAckAfter = Math.min(
        ...acked.filter((r) => r.generation === 2).map((r) => r.outcome.result.revision as number),
      );
      expect(firstAckAfter).toBeGreaterThan(lastAckBefore);

      console.log(
        [
          `crash: ${edits.length} edits (acknowledged ${acked.filter((r) => r.generation === 1).length} before the kill, ${acked.filter((r) => r.generation === 2).length} after; ` +
            `in flight at the kill ${inFlight.length}, of which applied ${inFlight.filter((r) => nodesOf.has(r.nodeId)).length})`,
          `  grants: ${before.length} before (last fence ${lastBefore}), ${after.length} after (first fence ${Math.min(...after)})`,
          `  revisions after restart: ${revisions.length}; sessions ${oldSessions.size} before, ${newSessions.length} after; ${Date.now() - started} ms`,
        ].join('\n'),
      );
    } finally {
      first.child.kill('SIGKILL');
      if (second !== undefined) {
        second.child.kill('SIGTERM');
        await second.exited;
      }
      rmSync(dir, { recursive: true, force: true });
    }
  }, 45_000);
});
