// Takeover time of a Lockstep cluster (docs/cluster.md): three nodes on one PostgreSQL 15 (a
// throwaway cluster, fsync on), default lease timing unless given. Each round faults the leader
// and times from the fault to the first lock granted by the new leader:
//   kill   - SIGKILL of the leader (the node is started again afterwards, as a standby);
//   pause  - SIGSTOP of the leader (SIGCONT afterwards: it finds itself deposed and follows).
// A prober asks every other node for a session every 20 ms (NOT_LEADER comes back at once from a
// standby), so the figures are the cluster's, not a client's backoff.
//   npm run bench:takeover -- [--rounds=10] [--lease-ttl-ms=3000 --lease-renew-ms=1000 --lease-drift-ms=500]
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import { freshDatabase, postgresInstalled, startPostgres } from '../test/helpers/postgres.ts';
import { fmtMs, percentile } from './stats.ts';

const BIN = fileURLToPath(new URL('../bin/lockstep.js', import.meta.url));
const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const ROUNDS = Number(arg('rounds') ?? 10);
const TIMING = ['lease-ttl-ms', 'lease-renew-ms', 'lease-drift-ms'].flatMap((k) =>
  arg(k) === undefined ? [] : [`--${k}`, arg(k) as string],
);
const PROBE_EVERY_MS = 20;

interface Node {
  child: ChildProcess;
  url: string;
  exited: Promise<void>;
}

async function spawnNode(db: string): Promise<Node> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--db', db, '--log-level', 'silent', ...TIMING], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = /^lockstep listening on (ws:\/\/\S+)$/.exec(line);
      if (m !== null) resolve(m[1]!);
    });
    void exited.then(() => reject(new Error('node exited before listening')));
  });
  return { child, url, exited };
}

/** One attempt: hello and a write lock on the program's structure; true if granted. */
function tryGrant(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    const done = (ok: boolean) => {
      ws.terminate();
      resolve(ok);
    };
    ws.once('error', () => done(false));
    ws.once('close', () => done(false));
    ws.once('open', () =>
      ws.send(
        JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'session.hello', params: { protocol: 1, name: 'probe' } }),
      ),
    );
    ws.on('message', (data) => {
      const f = JSON.parse(data.toString()) as { id?: number; error?: unknown; result?: { status?: string } };
      if (f.error !== undefined) done(false);
      else if (f.id === 1)
        ws.send(
          JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'lock.acquire', params: { structure: true, mode: 'write' } }),
        );
      else if (f.id === 2) done(f.result?.status === 'granted');
    });
  });
}

/** Index of the node that grants, asking them all every PROBE_EVERY_MS. */
async function firstGrant(nodes: readonly Node[]): Promise<number> {
  for (;;) {
    const got = await Promise.all(nodes.map((n) => tryGrant(n.url)));
    const i = got.indexOf(true);
    if (i >= 0) return i;
    await sleep(PROBE_EVERY_MS);
  }
}

async function main(): Promise<void> {
  if (!postgresInstalled()) throw new Error('PostgreSQL 15 is not installed (/usr/lib/postgresql/15/bin)');
  const pgCluster = await startPostgres({ durable: true });
  const db = await freshDatabase(pgCluster.url);
  const nodes: Node[] = [];
  try {
    for (let i = 0; i < 3; i++) nodes.push(await spawnNode(db));
    let leader = await firstGrant(nodes);
    const figures: Record<'kill' | 'pause', number[]> = { kill: [], pause: [] };
    for (const fault of ['kill', 'pause'] as const) {
      for (let round = 0; round < ROUNDS; round++) {
        const victim = nodes[leader]!;
        const others = nodes.filter((n) => n !== victim);
        const at = performance.now();
        victim.child.kill(fault === 'kill' ? 'SIGKILL' : 'SIGSTOP');
        const next = await firstGrant(others);
        const ms = performance.now() - at;
        figures[fault].push(ms);
        console.log(`${fault} ${round + 1}/${ROUNDS}: ${fmtMs(ms)}`);
        if (fault === 'kill') {
          await victim.exited;
          nodes[nodes.indexOf(victim)] = await spawnNode(db);
        } else {
          victim.child.kill('SIGCONT');
        }
        leader = nodes.indexOf(others[next]!);
        // Let the resumed or restarted node settle as a standby before the next fault.
        await sleep(500);
      }
    }
    const args = TIMING.length === 0 ? 'default timing (lease 3000 ms, renew 1000 ms, drift 500 ms)' : TIMING.join(' ');
    console.log(`\ntakeover: fault to first grant on the new leader, ${ROUNDS} rounds each, ${args}`);
    for (const [fault, ms] of Object.entries(figures)) {
      const sorted = [...ms].sort((a, b) => a - b);
      console.log(
        `  ${fault.padEnd(6)} p50 ${fmtMs(percentile(sorted, 0.5))}  max ${fmtMs(sorted.at(-1) ?? Number.NaN)}`,
      );
    }
  } finally {
    for (const n of nodes) {
      n.child.kill('SIGCONT');
      n.child.kill('SIGKILL');
    }
    await Promise.all(nodes.map((n) => n.exited));
    await pgCluster.stop();
  }
}

await main();
