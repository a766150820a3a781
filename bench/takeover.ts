// Takeover time of a Lockstep cluster (docs/cluster.md): three nodes on one PostgreSQL database.
// Each round faults the leader and times from the fault to the first lock granted by the new
// leader:
//   kill   - SIGKILL of the leader (the node is started again afterwards, as a standby);
//   pause  - SIGSTOP of the leader (SIGCONT afterwards: it finds itself deposed and follows).
// A prober asks every other node for a session every 20 ms (NOT_LEADER comes back at once from a
// standby), so the figures are the cluster's, not a client's backoff. Run by bench/cluster.ts.
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import { kill, type Node as ClusterNode, spawnNode } from '../test/cluster/leader-nodes.ts';
import { fmtMs } from './stats.ts';

export const PROBE_EVERY_MS = 20;
/** How long a resumed or restarted node gets to settle as a standby before the next fault. */
const SETTLE_MS = 500;

export const FAULTS = ['kill', 'pause'] as const;
export type Fault = (typeof FAULTS)[number];

/**
 * One attempt: hello and a write lock on the program's structure; the time of the grant, if
 * granted. A granted probe then releases the lock and waits for the reply before it says goodbye
 * (close 1000): a release's reply waits for the journal (docs/cluster.md, "What is durable when"),
 * a goodbye does not. A lock still in the journal when the leader is killed, because the fault
 * came before the commit that records the goodbye, is restored by the next leader and held
 * through the resume grace for the absent probe, and the takeover after it would time the grace.
 */
function tryGrant(url: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    let grantedAt: number | undefined;
    ws.once('close', () => resolve(grantedAt));
    ws.once('error', () => ws.terminate());
    ws.once('open', () =>
      ws.send(
        JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'session.hello', params: { protocol: 1, name: 'probe' } }),
      ),
    );
    ws.on('message', (data) => {
      const f = JSON.parse(data.toString()) as { id?: number; error?: unknown; result?: { status?: string } };
      if (f.error !== undefined) ws.terminate();
      else if (f.id === 1)
        ws.send(
          JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'lock.acquire', params: { structure: true, mode: 'write' } }),
        );
      else if (f.id === 2 && f.result?.status === 'granted') {
        grantedAt = performance.now();
        ws.send(JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'lock.releaseAll', params: {} }));
      } else if (f.id === 2 || f.id === 3) ws.close(1000);
    });
  });
}

/** The node that grants first, asking them all every PROBE_EVERY_MS, and when it granted. */
async function firstGrant(nodes: readonly ClusterNode[]): Promise<{ node: ClusterNode; at: number }> {
  for (;;) {
    const got = await Promise.all(nodes.map((n) => tryGrant(n.url)));
    const i = got.findIndex((at) => at !== undefined);
    if (i >= 0) return { node: nodes[i]!, at: got[i]! };
    await sleep(PROBE_EVERY_MS);
  }
}

/**
 * `rounds` takeovers of each fault on three nodes of `db` started with `flags` (lease timing),
 * each in ms, logging each as it comes.
 */
export async function takeovers(
  db: string,
  rounds: number,
  flags: readonly string[],
): Promise<Record<Fault, number[]>> {
  const nodes: ClusterNode[] = [];
  try {
    for (let i = 0; i < 3; i++) nodes.push(await spawnNode(db, flags, {}));
    let leader = (await firstGrant(nodes)).node;
    const figures: Record<Fault, number[]> = { kill: [], pause: [] };
    for (const fault of FAULTS) {
      for (let round = 0; round < rounds; round++) {
        const victim = leader;
        const faultAt = performance.now();
        victim.child.kill(fault === 'kill' ? 'SIGKILL' : 'SIGSTOP');
        const next = await firstGrant(nodes.filter((n) => n !== victim));
        figures[fault].push(next.at - faultAt);
        console.log(`takeover after ${fault} ${round + 1}/${rounds}: ${fmtMs(next.at - faultAt)}`);
        if (fault === 'kill') {
          await victim.exited;
          nodes[nodes.indexOf(victim)] = await spawnNode(db, flags, {});
        } else {
          victim.child.kill('SIGCONT');
        }
        leader = next.node;
        await sleep(SETTLE_MS);
      }
    }
    return figures;
  } finally {
    await Promise.all(nodes.map(kill));
  }
}
