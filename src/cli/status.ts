import { parseArgs } from 'node:util';
import { type LockstepClient, type PathNode, pathTree, pathTreeLines } from '../client/index.ts';
import type { ResultOf } from '../protocol/methods.ts';
import { formatResource, isFunction, isPath, type Resource } from '../protocol/resource.ts';
import { VERSION } from '../version.ts';
import {
  CONNECTION_OPTIONS,
  connectClient,
  connectionHelp,
  connectionOf,
  rejectUnknownOptions,
  WithReport,
} from './common.ts';
import { type NodeHealth, nodesHealth } from './node-health.ts';
import { duration, table } from './table.ts';

export const STATUS_HELP = `Usage: lockstep status [options]

Shows every node given (role, epoch, leader and health, from its /healthz), then the sessions,
locks and queues of the server (of a cluster: its leader's).

Options:
${connectionHelp(18)}
  --program <name>   only the locks of this program
  --json             print one JSON object instead of tables; a failure too, as {"error": {type, message}}
  --help             show this text`;

type LockStatus = ResultOf<'lock.status'>['resources'][number];

export interface StatusSnapshot {
  /** This command's version (the server's is under `server`). */
  version: string;
  /** Every node given, as its /healthz answered. */
  nodes: NodeHealth[];
  /** The node whose sessions and locks are shown: the leader. */
  url: string;
  server: { name: string; version: string };
  time: string;
  programs: ResultOf<'program.list'>['programs'];
  /** Every session but the one asking. */
  agents: ResultOf<'agent.list'>['agents'];
  /** Held or awaited resources, each with the function's name when it has one. */
  locks: Array<LockStatus & { name?: string }>;
  /** The path locks among them, per program, as the tree of their paths. */
  pathTrees: Array<{ program: string; tree: PathNode<LockStatus>[] }>;
}

export async function status(argv: string[]): Promise<void> {
  const options = {
    ...CONNECTION_OPTIONS,
    program: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean' },
  } as const;
  rejectUnknownOptions('status', argv, Object.keys(options));
  const { values } = parseArgs({ args: argv, options, strict: true });
  if (values.help === true) {
    console.log(STATUS_HELP);
    return;
  }
  const connection = connectionOf(values);
  const health = nodesHealth(connection.urls);
  const client = await connectClient({
    ...connection,
    name: 'lockstep-status',
    role: 'observer',
    reconnect: false,
  }).catch(async (err: unknown) => {
    // No leader to ask: what each node says is what there is to show (a --json failure carries it too).
    const nodes = await health;
    if (values.json !== true) console.log(renderNodes(nodes));
    throw new WithReport(err, { version: VERSION, nodes });
  });
  try {
    const snap = { version: VERSION, nodes: await health, ...(await snapshot(client, values.program)) };
    console.log(values.json === true ? JSON.stringify(snap, null, 2) : render(snap));
  } finally {
    await client.close();
  }
}

export async function snapshot(
  client: LockstepClient,
  program?: string,
): Promise<Omit<StatusSnapshot, 'version' | 'nodes'>> {
  const [{ agents }, { resources }, { programs }] = await Promise.all([
    client.agent.list(),
    client.lock.status(program === undefined ? {} : { program }),
    client.program.list(),
  ]);
  const names = new Map<string, string>();
  for (const p of new Set(resources.map((r) => r.resource.program))) {
    const { functions } = await client.program.get({ program: p });
    for (const f of functions) names.set(`${p}/${f.id}`, f.name);
  }
  const nameOf = (r: Resource) => (isFunction(r) ? names.get(`${r.program}/${r.function}`) : undefined);
  return {
    url: client.url,
    server: client.hello?.server ?? { name: 'lockstep', version: '?' },
    time: new Date().toISOString(),
    programs: program === undefined ? programs : programs.filter((p) => p.name === program),
    agents: agents.filter((a) => a.sessionId !== client.sessionId),
    locks: resources.map((r) => {
      const name = nameOf(r.resource);
      return name === undefined ? r : { ...r, name };
    }),
    pathTrees: pathTrees(resources),
  };
}

function pathTrees(resources: readonly LockStatus[]): StatusSnapshot['pathTrees'] {
  const byProgram = new Map<string, Array<{ path: string; lock: LockStatus }>>();
  for (const r of resources) {
    if (!isPath(r.resource)) continue;
    const list = byProgram.get(r.resource.program) ?? [];
    list.push({ path: r.resource.path, lock: r });
    byProgram.set(r.resource.program, list);
  }
  return [...byProgram].map(([program, locks]) => ({ program, tree: pathTree(locks) }));
}

/** "alice write #12 (29m59s); queue: 1. bob write, 2. carol read (upgrade)" */
function lockLine(l: LockStatus, now: number): string {
  const holders = l.holders.map((h) => `${h.name ?? h.sessionId.slice(0, 8)} ${h.mode} #${h.fence}`).join(', ');
  const expires =
    l.holders.length === 0 ? '' : ` (${duration(Math.min(...l.holders.map((h) => Date.parse(h.expiresAt))) - now)})`;
  const queue = l.queue
    .map((q) => `${q.position}. ${q.name ?? q.sessionId.slice(0, 8)} ${q.mode}${q.upgrade ? ' (upgrade)' : ''}`)
    .join(', ');
  return `${holders === '' ? 'free' : holders}${expires}${queue === '' ? '' : `; queue: ${queue}`}`;
}

export function render(s: StatusSnapshot): string {
  const now = Date.parse(s.time);
  const label = (l: StatusSnapshot['locks'][number]) =>
    l.name === undefined ? formatResource(l.resource) : `${formatResource(l.resource)} ${l.name}`;
  const out = [
    `version: lockstep ${s.version} (this command), server ${s.server.version}`,
    '',
    renderNodes(s.nodes),
    '',
    `The leader, ${s.url}:`,
    '',
  ];
  out.push(
    `PROGRAMS (${s.programs.length})`,
    table(
      ['NAME', 'REVISION', 'FUNCTIONS'],
      s.programs.map((p) => [p.name, String(p.revision), String(p.functions)]),
    ),
    '',
  );
  out.push(
    `SESSIONS (${s.agents.length})`,
    s.agents.length === 0
      ? '  none'
      : table(
          ['NAME', 'ROLE', 'STATE', 'LOCKS', 'WAITING', 'IDLE', 'SESSION'],
          s.agents.map((a) => [
            a.name,
            a.role,
            a.state,
            String(a.locks.length),
            String(a.waiting.length),
            duration(now - Date.parse(a.lastActiveAt)),
            a.sessionId.slice(0, 8),
          ]),
        ),
    '',
  );
  const locks = s.locks.filter((l) => !isPath(l.resource));
  out.push(
    `LOCKS (${locks.length})`,
    locks.length === 0
      ? '  none'
      : table(
          ['RESOURCE', 'HELD BY', 'EXPIRES IN', 'QUEUE'],
          locks.map((l) => [
            label(l),
            l.holders.map((h) => `${h.name ?? h.sessionId.slice(0, 8)} ${h.mode} #${h.fence}`).join(', ') || '-',
            l.holders.length === 0 ? '-' : duration(Math.min(...l.holders.map((h) => Date.parse(h.expiresAt))) - now),
            l.queue
              .map(
                (q) => `${q.position}. ${q.name ?? q.sessionId.slice(0, 8)} ${q.mode}${q.upgrade ? ' (upgrade)' : ''}`,
              )
              .join(', ') || '-',
          ]),
        ),
  );
  const paths = s.locks.length - locks.length;
  out.push('', `PATH LOCKS (${paths})`);
  if (paths === 0) out.push('  none');
  for (const { program, tree } of s.pathTrees)
    out.push(`  ${program}:`, ...pathTreeLines(tree, (l) => lockLine(l, now), '    '));
  return out.join('\n');
}

/** One row per node given: what its /healthz says, or why it could not be asked. */
export function renderNodes(nodes: readonly NodeHealth[]): string {
  const cell = (v: unknown) => (v === undefined || v === null ? '-' : String(v));
  const rows = nodes.map((n) => {
    const h = n.health ?? {};
    return [
      n.url,
      // One server on SQLite has no cluster role: it is always the one that serves.
      n.health === null ? '-' : cell(h.role ?? 'single'),
      cell(h.epoch),
      cell(h.leader),
      n.error === undefined ? `${cell(h.status)} (${n.http})` : `unreachable: ${n.error}`,
      cell(h.sessions),
      typeof h.uptimeMs === 'number' ? duration(h.uptimeMs) : '-',
      cell(h.version),
    ];
  });
  return [
    `NODES (${nodes.length})`,
    table(['URL', 'ROLE', 'EPOCH', 'LEADER', 'HEALTH', 'SESSIONS', 'UP', 'VERSION'], rows),
  ].join('\n');
}
