// A node of a bench cluster: `lockstep serve` (bin/lockstep.js, as an operator starts it) on a
// PostgreSQL store, in its own process so that it can be killed or paused like a real one.
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../bin/lockstep.js', import.meta.url));

export interface ClusterNode {
  child: ChildProcess;
  url: string;
  exited: Promise<void>;
}

/** Starts a node on `db` with extra `serve` flags; resolves once it listens (as leader or standby). */
export async function spawnNode(db: string, flags: readonly string[] = []): Promise<ClusterNode> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--db', db, '--log-level', 'silent', ...flags], {
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

/** Ends every node, paused ones included (a stopped process only dies once continued). */
export async function stopNodes(nodes: readonly ClusterNode[]): Promise<void> {
  for (const n of nodes) {
    n.child.kill('SIGCONT');
    n.child.kill('SIGKILL');
  }
  await Promise.all(nodes.map((n) => n.exited));
}

/** Whether the node whose HTTP port this is leads: /healthz answers 200 on the leader only. */
export async function leads(port: number): Promise<boolean> {
  return (await fetch(`http://127.0.0.1:${port}/healthz`)).status === 200;
}
