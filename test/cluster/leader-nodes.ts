import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { until } from '../helpers/until.ts';

// Cluster nodes as child processes (so that they can be SIGKILLed and SIGSTOPped) on one
// database, with short timing options.

const BIN = fileURLToPath(new URL('../../bin/lockstep.js', import.meta.url));

/**
 * Short leases so that takeovers are quick, with five renewals per lease so that a leader on a
 * loaded 2-core machine does not fence itself by accident.
 */
export const TIMING = { leaseTtlMs: 1500, leaseRenewMs: 250, leaseDriftMs: 250 } as const;

export interface Health {
  status: number;
  body: {
    role: 'leader' | 'taking-over' | 'standby';
    epoch: number;
    leader: string | null;
    status: string;
    [k: string]: unknown;
  };
}

export interface Node {
  readonly child: ChildProcess;
  /** ws://127.0.0.1:PORT/ws */
  readonly url: string;
  readonly http: string;
  readonly exited: Promise<NodeJS.Signals | null>;
  health(): Promise<Health>;
}

/** `lockstep serve` on `db`, resolved once it listens (as leader or standby); `timing` {} for the defaults. */
export async function spawnNode(
  db: string,
  extra: readonly string[] = [],
  timing: Partial<typeof TIMING> = TIMING,
): Promise<Node> {
  const args = [BIN, 'serve', '--port', '0', '--db', db, '--log-level', 'silent'];
  for (const [k, v] of Object.entries(timing))
    args.push(`--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`, String(v));
  const child = spawn(process.execPath, [...args, ...extra], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_c, signal) => resolve(signal)));
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = /^lockstep listening on (wss?:\/\/\S+)$/.exec(line);
      if (m !== null) resolve(m[1]!);
    });
    void exited.then((signal) => reject(new Error(`node exited (${signal}) before listening`)));
  });
  const http = url.replace(/^ws/, 'http').replace(/\/ws$/, '');
  return { child, url, http, exited, health: () => health(http) };
}

export async function health(http: string): Promise<Health> {
  // A paused node accepts the connection but never answers: bounded, like a load balancer's probe.
  const res = await fetch(`${http}/healthz`, { signal: AbortSignal.timeout(1_000) });
  return { status: res.status, body: (await res.json()) as Health['body'] };
}

/** Kills the node (SIGKILL) if it still runs, and waits for it to be gone. */
export async function kill(node: Node): Promise<void> {
  if (node.child.exitCode === null && node.child.signalCode === null) {
    node.child.kill('SIGCONT');
    node.child.kill('SIGKILL');
  }
  await node.exited;
}

/** The one node that answers /healthz as leader, once exactly one does. */
export function leaderOf(
  nodes: readonly Node[],
  withinMs: number,
  minEpoch = 1,
): Promise<{ node: Node; epoch: number }> {
  return until(`one leader at epoch >= ${minEpoch}`, withinMs, async () => {
    const found = await Promise.all(
      nodes.map(async (node) => ({ node, h: await node.health().catch(() => undefined) })),
    );
    const leaders = found.filter((f) => f.h?.status === 200 && f.h.body.role === 'leader');
    if (leaders.length !== 1 || leaders[0]!.h!.body.epoch < minEpoch) return undefined;
    return { node: leaders[0]!.node, epoch: leaders[0]!.h!.body.epoch };
  });
}
