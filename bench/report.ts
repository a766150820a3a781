import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { EtcdSystem, ETCD_NOTE } from './etcd.ts';
import { POLL_MS, RedisSystem, REDIS_ARGS } from './redis.ts';
import type { MemoryPoint } from './scale.ts';
import { fmtMs, fmtRate, fmtRatio, type Summary } from './stats.ts';
import { latencyChart, type Group } from './svg.ts';
import type { Result, Timing } from './workloads.ts';

export interface Row {
  workload: string;
  system: string;
  r: Result;
}

export interface Results {
  rows: Row[];
  skipped: string[];
  memory: MemoryPoint[];
  open: Summary & { late: number };
  quick: boolean;
  seconds: number;
  loadBefore: number[];
  loadAfter: number[];
  plan: {
    handoverAgents: number;
    holdMs: number;
    batchAgents: number;
    mixAgents: number;
    mixResources: number;
    openLoopAgents: number;
    openLoopRate: number;
    editAgents: number;
  };
  timing: Timing;
}

const DOC = new URL('../docs/benchmarks.md', import.meta.url);
const SVG = new URL('../docs/bench-latency.svg', import.meta.url);
/** Hand-written findings of the profiling session (bench/profile.ts), kept across regenerations. */
const NOTES = new URL('./profile-notes.md', import.meta.url);

const LS = 'Lockstep';

function cpuModel(): string {
  const info = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
  return /model name\s*:\s*(.+)/.exec(info)?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
}

function table(rows: Row[], extraHeader?: string): string[] {
  const ls = rows.find((x) => x.system === LS)?.r;
  const head = [
    'system',
    'p50',
    'p99',
    'max',
    'per second',
    ...(extraHeader === undefined ? [] : [extraHeader]),
    'Lockstep ÷ this: p50',
    'p99',
    'per second',
  ];
  const out = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`];
  for (const { system, r } of rows) {
    const ratios =
      system === LS || ls === undefined
        ? ['', '', '']
        : [fmtRatio(ls.p50, r.p50), fmtRatio(ls.p99, r.p99), fmtRatio(ls.rate, r.rate)];
    const spread = r.rates.length > 1 ? ` (${fmtRate(Math.min(...r.rates))}–${fmtRate(Math.max(...r.rates))})` : '';
    const cells = [
      system === LS ? `**${system}**` : system,
      fmtMs(r.p50),
      fmtMs(r.p99),
      fmtMs(r.max),
      `${fmtRate(r.rate)}${spread}`,
      ...(extraHeader === undefined ? [] : [fmtMs(r.extra ?? Number.NaN)]),
      ...ratios,
    ];
    out.push(`| ${cells.join(' | ')} |`);
  }
  return out;
}

function verdict(ok: boolean): string {
  return ok ? 'met' : '**not met**';
}

export function writeReport(res: Results): void {
  const by = (w: string) => res.rows.filter((x) => x.workload === w);
  const get = (w: string, s: string) => res.rows.find((x) => x.workload === w && x.system === s)?.r;
  const workloads = [...new Set(res.rows.map((x) => x.workload))];
  const floor = 'ws echo (floor)';
  const p = res.plan;
  const hand = `hand-over x${p.handoverAgents}`;

  const groups: Group[] = workloads
    .filter((w) => !w.startsWith('open loop') && !w.startsWith('edits'))
    .map((w) => ({ label: w, bars: by(w).map(({ system, r }) => ({ system, p50: r.p50, p99: r.p99 })) }));
  writeFileSync(
    SVG,
    `${latencyChart('Lockstep and its peers: latency per round trip (hand-over: release → next grant)', groups)}\n`,
  );

  const targets: string[] = ['| target | measured | |', '|---|---|---|'];
  for (const n of [1, 10, 100]) {
    const ls = get(`uncontended x${n}`, LS);
    const fl = get(`uncontended x${n}`, floor);
    if (ls !== undefined && fl !== undefined) {
      targets.push(
        `| uncontended acquire/release within 1.5x of the echo floor, ${n} agent${n > 1 ? 's' : ''} | p50 ${fmtRatio(ls.p50, fl.p50)}, p99 ${fmtRatio(ls.p99, fl.p99)} of the floor (${fmtMs(ls.p50)} vs ${fmtMs(fl.p50)}) | ${verdict(ls.p50 <= 1.5 * fl.p50)} |`,
      );
    }
  }
  const lh = get(hand, LS);
  if (lh !== undefined) {
    const peers = by(hand).filter((x) => x.system !== LS);
    const beats = peers.every((x) => lh.p99 < x.r.p99);
    targets.push(
      `| hand-over p99 under 2 ms with ${p.handoverAgents} waiters | ${fmtMs(lh.p99)} | ${verdict(lh.p99 < 2)} |`,
    );
    targets.push(
      `| hand-over p99 better than every peer | ${peers.map((x) => `${x.system} ${fmtMs(x.r.p99)}`).join(', ') || 'no peer ran'} | ${peers.length === 0 ? 'not measured' : verdict(beats)} |`,
    );
  }
  const l100 = get('uncontended x100', LS);
  if (l100 !== undefined)
    targets.push(
      `| ≥ 20,000 lock operations/s with 100 agents | ${fmtRate(l100.rate)} acquires + releases per second | ${verdict(l100.rate >= 20_000)} |`,
    );
  const mem = res.memory[res.memory.length - 1];
  if (mem !== undefined)
    targets.push(
      `| < 50 KiB per idle session | ${(mem.perSession / 1024).toFixed(1)} KiB at ${mem.sessions.toLocaleString('en-US')} sessions | ${verdict(mem.perSession < 50 * 1024)} |`,
    );

  const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(' / ');
  const t = res.timing;
  const md: string[] = [
    '# Benchmarks',
    '',
    '<!-- Generated by `npm run bench` (bench/run.ts); the profiling section comes from bench/profile-notes.md. -->',
    '',
    ...(res.quick ? ['> **Quick run (`--quick`): one short repetition; not figures to quote.**', ''] : []),
    `Lockstep against the physical limit of its stack and against the lock services a user would pick instead, measured side by side on one machine in one run (${res.seconds.toFixed(0)} s), on loopback only.`,
    '',
    '```sh',
    'bash bench/setup-peers.sh   # once per machine: Debian redis-server and etcd-server',
    'npm run bench               # add -- --wait-quiet to wait for an idle machine first',
    '```',
    '',
    '## Machine',
    '',
    `- CPU: ${cpuModel()}, ${cpus().length} cores; ${(totalmem() / 2 ** 30).toFixed(0)} GiB memory`,
    `- Node ${process.version}; ${RedisSystem.available() ? RedisSystem.version() : 'redis-server: not installed'}; ${EtcdSystem.available() ? EtcdSystem.version() : 'etcd: not installed'}`,
    `- load average (1/5/15 min) before: ${load(res.loadBefore)}, after: ${load(res.loadAfter)}. The machine is shared with other work; figures move by tens of percent between runs, ratios within one run much less.`,
    `- ${new Date().toISOString().slice(0, 10)}`,
    '',
    '## Targets',
    '',
    ...targets,
    '',
    '![latency per workload: p50 solid, p99 pale, log scale](bench-latency.svg)',
    '',
    '## Method',
    '',
    `- Every server runs in its own process (Lockstep and the echo floor are forked Node processes; Redis and etcd are their own binaries); all clients run in the bench process, so one clock times every request. With 2 cores, client and server each have about one.`,
    `- Each workload: ${t.reps} repetitions of ${t.warmMs} ms warm-up (discarded) then ${t.runMs} ms measured, each capped at ${t.maxOps.toLocaleString('en-US')} operations. Percentiles pool the repetitions' samples; "per second" is the median repetition, with the range in brackets.`,
    "- An operation is one round trip (an acquire or a release), except in the hand-over (a turn) and edits (a committed edit). Latency is from the request leaving the client to the reply arriving; the hand-over's is from the holder's release leaving its client to the next holder's grant arriving.",
    '- Closed loop: each agent has one request outstanding at a time. The open-loop row keeps a fixed schedule instead.',
    '- Ratio columns divide Lockstep\'s figure by the row\'s: for latency under 1.00x means Lockstep is faster, for "per second" over 1.00x does.',
    '- Lockstep clients are bare `ws` JSON-RPC sockets (bench/rpc-socket.ts), the same code that drives the floor, so the client side costs the same on both; Redis uses ioredis, etcd @grpc/grpc-js.',
    '',
    '### How each system was configured',
    '',
    `- **ws echo (floor)**: a \`ws\` server (no compression) that parses each request and answers with a JSON-RPC result of the same shape and size as Lockstep's answer (bench/echo-server.ts). The physical limit of one request in this stack.`,
    `- **Lockstep**: \`start()\` in a child process, \`--db :memory:\`, log level silent, the per-session rate limit lifted (1,000,000/s; the default 2,000/s is a policy a single closed-loop agent exceeds). The lock path does no disk I/O at all: locks, queues and leases live in memory; only edits are durable (the edits row uses a file store). Acquires are sent with \`wait: true\`.`,
    `- **Redis**: \`redis-server --port P --bind 127.0.0.1 ${REDIS_ARGS.map((a) => (a === '' ? "''" : a)).join(' ')}\`: no RDB snapshots and no append-only file, so no disk I/O and no fsync. The usual recipe: \`SET key token NX PX ttl\` to take, a Lua compare-and-delete to give back; a batch is one Lua script taking all four keys or none; the read/write mix uses a Lua read-write lock (Redisson's layout: a hash with the mode and one field per holder). Waiting two ways: retry polling every ${POLL_MS} ms (redis-semaphore's default retryInterval), or pub/sub (the release script publishes on the key's channel; waiters, each with a subscriber connection, retry on every message). Where nobody waits (uncontended, batch) the two are the same and one row shows them.`,
    `- **etcd**: etcd's own v3 lock service (v3lockpb \`Lock\`/\`Unlock\` over gRPC, each agent its own connection and lease): ${ETCD_NOTE}. Lock waits server-side, FIFO by revision: the closest push-based peer. It has no shared mode and no multi-name lock: reads take the exclusive lock, and a batch locks its four names one after another in sorted order.`,
    '',
    '## Results',
    '',
  ];
  const notes: Record<string, string> = {
    'uncontended x1': 'Each agent locks and releases its own function: no waiting, the cost of the request path.',
    [hand]: `${p.handoverAgents} agents queue on one function; the holder keeps it ${p.holdMs} ms, releases, and queues again. Latency: release sent → next grant received. Per second: turns. "Longest wait": the longest any agent waited for a turn (a wait still open at the end counts up to the end): FIFO bounds it near ${p.handoverAgents} turns, a free-for-all does not (a longest wait equal to the run's ${t.runMs} ms is an agent that never got a turn). Redis polling's short hand-over is not a fast wake-up: with ${p.handoverAgents} waiters each polling every ${POLL_MS} ms, a \`SET NX\` reaches Redis about every ${((POLL_MS * 1000) / p.handoverAgents).toFixed(0)} µs, so one usually lands just after the release, at the price of that constant load and of starving whoever is unlucky.`,
    [`batch of 4 x${p.batchAgents}`]: `${p.batchAgents} agents each lock their own 4 functions in one request, then release them.`,
    [`90% read x${p.mixAgents}`]: `${p.mixAgents} agents over ${p.mixResources} shared functions; 90% of acquires read, 10% write (same seeded sequence for every system); released at once. Latency of the acquire includes any wait.`,
  };
  for (const w of workloads) {
    if (w.startsWith('open loop') || w.startsWith('edits')) continue;
    md.push(`### ${w}`, '');
    if (notes[w] !== undefined) md.push(notes[w] ?? '', '');
    md.push(...table(by(w), w === hand ? 'longest wait' : undefined), '');
  }
  md.push('### Scale', '');
  md.push(
    'Idle sessions (connected and past `session.hello`), opened in waves of 500 so that connections without a session stay under `--max-pending` (1,000). Resident memory of the server process after a full GC, over the server with one session:',
    '',
  );
  md.push('| sessions | server RSS | per session |', '|---:|---:|---:|');
  for (const m of res.memory)
    md.push(
      `| ${m.sessions.toLocaleString('en-US')} | ${m.rssMiB.toFixed(0)} MiB | ${(m.perSession / 1024).toFixed(1)} KiB |`,
    );
  md.push('');
  const o = res.open;
  md.push(
    `Open loop: ${p.openLoopAgents.toLocaleString('en-US')} connected agents, each with its own function, offered ${p.openLoopRate.toLocaleString('en-US')} acquires per second in all (each followed by its release) on a fixed schedule. Latency of the acquire counts from its scheduled time, so queueing behind a slow server is charged to it.`,
    '',
    '| acquires | p50 | p99 | max | achieved per second | started late |',
    '|---:|---:|---:|---:|---:|---:|',
    `| ${o.n.toLocaleString('en-US')} | ${fmtMs(o.p50)} | ${fmtMs(o.p99)} | ${fmtMs(o.max)} | ${fmtRate(o.rate)} | ${o.late} |`,
    '',
  );
  const e = get(`edits x${p.editAgents}`, LS);
  if (e !== undefined) {
    md.push(
      '### Edits committed',
      '',
      `${p.editAgents} agents, each holding the write lock on its own function, send one-node edits (\`updateNode\`) in a closed loop. The store is a SQLite file in a temporary directory on the machine's disk (WAL, \`synchronous=FULL\`): every edit is fsynced before it is answered, so this measures the disk as much as Lockstep.`,
      '',
      '| edits | p50 | p99 | max | edits per second |',
      '|---:|---:|---:|---:|---:|',
      `| ${e.n.toLocaleString('en-US')} | ${fmtMs(e.p50)} | ${fmtMs(e.p99)} | ${fmtMs(e.max)} | ${fmtRate(e.rate)} |`,
      '',
    );
  }
  if (res.skipped.length > 0) md.push('### Not run', '', ...res.skipped.map((s) => `- ${s}`), '');
  if (existsSync(NOTES)) md.push(readFileSync(NOTES, 'utf8').trimEnd(), '');
  writeFileSync(DOC, md.join('\n'));
}
