import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { freePathLabel, type LockstepClient, type PathNode, pathTree, pathTreeLines } from '../client/index.ts';
import type { ResultOf } from '../protocol/methods.ts';
import { formatResource, isFunction, isPath, type Resource } from '../protocol/resource.ts';
import { VERSION } from '../version.ts';
import {
  type Connection,
  CONNECTION_OPTIONS,
  connectClient,
  connectionHelp,
  connectionOf,
  rejectUnknownOptions,
  UsageError,
  WithReport,
} from './common.ts';
import { type NodeHealth, nodesHealth } from './node-health.ts';
import { duration, table } from './table.ts';

/** How often --watch asks, in seconds, when not told. */
const DEFAULT_WATCH_S = 2;

export const STATUS_HELP = `Usage: lockstep status [options]

Shows its version and the server's, every node given (role, epoch, leader, health, sessions,
uptime and version, from its /healthz), then the sessions, locks and queues of the server (of a
cluster: its leader's).

Options:
${connectionHelp(18)}
  --program <name>   only the locks of this program
  --json             print one JSON object instead of tables; a failure too, as {"error": {type, message}}
  --watch[=SECONDS]  show it again every SECONDS (default ${DEFAULT_WATCH_S}) until interrupted (Ctrl-C)
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
    watch: { type: 'string' },
    help: { type: 'boolean' },
  } as const;
  // --watch takes its value only after "=": a bare one is the default interval.
  const args = argv.map((a) => (a === '--watch' ? `--watch=${DEFAULT_WATCH_S}` : a));
  rejectUnknownOptions('status', args, Object.keys(options));
  const { values } = parseArgs({ args, options, strict: true });
  if (values.help === true) {
    console.log(STATUS_HELP);
    return;
  }
  const connection = connectionOf(values);
  if (values.watch === undefined) return once(connection, values.program, values.json === true);
  if (values.json === true)
    throw new UsageError('--watch repeats the tables; for JSON, run lockstep status --json in a loop of your own');
  const seconds = Number(values.watch);
  if (!(seconds >= 0.1 && seconds <= 3600))
    throw new UsageError(`--watch: expected a number of seconds in [0.1, 3600] (got ${JSON.stringify(values.watch)})`);
  await watch(connection, values.program, seconds);
}

/** One look: the nodes' /healthz and the leader's state, printed; a failure still shows the nodes. */
async function once(connection: Connection, program: string | undefined, json: boolean): Promise<void> {
  const health = nodesHealth(connection.urls);
  const client = await connectClient({
    ...connection,
    name: 'lockstep-status',
    role: 'observer',
    reconnect: false,
  }).catch(async (err: unknown) => {
    // No leader to ask: what each node says is what there is to show (a --json failure carries it too).
    const nodes = await health;
    if (!json) console.log(`${versionLine(serverVersionOf(nodes))}\n\n${renderNodes(nodes)}`);
    throw new WithReport(err, { version: VERSION, nodes });
  });
  try {
    const snap = await snapshot(client, program);
    let nodes = await health;
    // Asked while the node was taking over, and it leads by now: its row is asked again, so that
    // the table and the heading below it agree.
    if (!leadsIn(nodes, snap.url)) nodes = await nodesHealth(connection.urls);
    const full = { version: VERSION, nodes, ...snap };
    console.log(json ? JSON.stringify(full, null, 2) : render(full));
  } finally {
    await client.close();
  }
}

/** `once` every `seconds` until SIGINT; a failure is shown and the next look made all the same. */
async function watch(connection: Connection, program: string | undefined, seconds: number): Promise<void> {
  const interrupted = new AbortController();
  const stop = () => interrupted.abort();
  process.once('SIGINT', stop);
  try {
    while (!interrupted.signal.aborted) {
      // A terminal shows the latest look alone; a file or pipe gets one after the other.
      if (process.stdout.isTTY) process.stdout.write('\x1b[2J\x1b[H');
      console.log(`every ${seconds} s until interrupted (Ctrl-C); ${new Date().toISOString()}\n`);
      await once(connection, program, false).catch((err: unknown) => {
        console.log(`\nlockstep: ${err instanceof Error ? err.message : String(err)}`);
      });
      console.log('');
      await sleep(seconds * 1000, undefined, { signal: interrupted.signal }).catch(() => undefined);
    }
  } finally {
    process.off('SIGINT', stop);
  }
}

/** Whether the node at `url` says it serves (a leader, or one server), or is not among those given. */
function leadsIn(nodes: readonly NodeHealth[], url: string): boolean {
  const row = nodes.find((n) => n.url === url);
  return row?.health == null || row.health.role === undefined || row.health.role === 'leader';
}

/** The version a node's /healthz gave, when one answered. */
function serverVersionOf(nodes: readonly NodeHealth[]): string | undefined {
  const v = nodes.find((n) => typeof n.health?.version === 'string')?.health?.version;
  return v as string | undefined;
}

function versionLine(server: string | undefined): string {
  return `version: lockstep ${VERSION} (this command), server ${server ?? 'unknown (no node answered)'}`;
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

/**
 * "alice write #12 (29m59s); queue: 1. bob write, 2. carol read (upgrade)"; a lock nobody holds is
 * `free` unless the caller says more (a path held above or below it).
 */
function lockLine(l: LockStatus, now: number, free = 'free'): string {
  const holders = l.holders.map((h) => `${h.name ?? h.sessionId.slice(0, 8)} ${h.mode} #${h.fence}`).join(', ');
  const expires =
    l.holders.length === 0 ? '' : ` (${duration(Math.min(...l.holders.map((h) => Date.parse(h.expiresAt))) - now)})`;
  const queue = l.queue
    .map((q) => `${q.position}. ${q.name ?? q.sessionId.slice(0, 8)} ${q.mode}${q.upgrade ? ' (upgrade)' : ''}`)
    .join(', ');
  return `${holders === '' ? free : holders}${expires}${queue === '' ? '' : `; queue: ${queue}`}`;
}

export function render(s: StatusSnapshot): string {
  const now = Date.parse(s.time);
  const label = (l: StatusSnapshot['locks'][number]) =>
    l.name === undefined ? formatResource(l.resource) : `${formatResource(l.resource)} ${l.name}`;
  // One server (SQLite) has no leader (docs/cluster.md): its /healthz has no role.
  const single = s.nodes.some((n) => n.url === s.url && n.health !== null && n.health.role === undefined);
  const out = [
    versionLine(s.server.version),
    '',
    renderNodes(s.nodes),
    '',
    `The ${single ? 'server' : 'leader'}, ${s.url}:`,
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
  for (const { program, tree } of s.pathTrees) {
    const held = s.locks.flatMap((l) =>
      isPath(l.resource) && l.resource.program === program && l.holders.length > 0 ? [l.resource.path] : [],
    );
    const line = (l: LockStatus) =>
      lockLine(l, now, isPath(l.resource) ? freePathLabel(l.resource.path, held) : 'free');
    out.push(`  ${program}:`, ...pathTreeLines(tree, line, '    '));
  }
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
