import { parseArgs } from 'node:util';
import { type AgentContext, type AgentStats, runAgent } from './demo-agent.ts';
import { DEFAULT_PROGRAM } from '../protocol/limits.ts';
import { type DemoFunction, prepareProgram } from './demo-program.ts';
import {
  CONNECTION_OPTIONS,
  connectClient,
  connectionHelp,
  connectionOf,
  intOption,
  rejectUnknownOptions,
} from './common.ts';
import { Random } from './random.ts';
import { table } from './table.ts';

export const DEMO_HELP = `Usage: lockstep demo [options]

Runs simulated agents against a running server for a while, so the dashboard shows life: they
lock functions (alone and in batches), read them, edit them with expected hashes and fences, and
release them, with pauses, queueing, refused try-locks and the occasional conflict. Some hold a
lock for a long think, so others queue; with two or more agents the first is a straggler that
holds short leases and stops renewing them, so leases warn and expire, and its locks are
reported lost. Every state the dashboard shows appears within about 20 seconds. Missing demo
functions are created first. Prints what happened and a summary.

Options:
${connectionHelp(20)}
  --agents <n>         number of agents, 1..32 (default 4)
  --seconds <s>        how long to run, 1..86400 (default 30)
  --seed <n>           random seed, to repeat a run (default: random, printed)
  --program <name>     program to work on, created if missing (default ${DEFAULT_PROGRAM})
  --quiet              print only the summary
  --help               show this text`;

const NAMES = ['ada', 'grace', 'linus', 'barbara', 'ken', 'edsger', 'margaret', 'dennis'];

export async function demo(argv: string[]): Promise<void> {
  const options = {
    ...CONNECTION_OPTIONS,
    agents: { type: 'string' },
    seconds: { type: 'string' },
    seed: { type: 'string' },
    program: { type: 'string' },
    quiet: { type: 'boolean' },
    help: { type: 'boolean' },
  } as const;
  rejectUnknownOptions('demo', argv, Object.keys(options));
  const { values } = parseArgs({ args: argv, options, strict: true });
  if (values.help === true) {
    console.log(DEMO_HELP);
    return;
  }
  const connection = connectionOf(values);
  const agents = intOption('agents', values.agents, 4, 1, 32);
  const seconds = intOption('seconds', values.seconds, 30, 1, 86_400);
  const seed = intOption('seed', values.seed, Math.floor(Math.random() * 2 ** 31), 0, 2 ** 32 - 1);
  const program = values.program ?? DEFAULT_PROGRAM;
  const started = Date.now();
  const log =
    values.quiet === true
      ? () => undefined
      : (line: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${line}`);

  // Given a cluster's nodes it follows the leader through a failover, and says so when one happens.
  const cluster = connection.urls.length > 1;
  const observer = await connectClient({ ...connection, name: 'demo-setup', ...(cluster ? {} : { reconnect: false }) });
  let failovers = 0;
  observer.on('disconnected', () => log(`lost the connection to ${observer.url}; looking for the leader`));
  observer.on('failover', ({ from, to }) => {
    failovers++;
    log(`failover: the leader is now ${to} (was ${from}); the agents resume there`);
  });
  try {
    const functions = await prepareProgram(observer, program);
    const before = (await observer.program.get({ program })).revision;
    console.log(
      `demo: ${agents} agents for ${seconds}s on ${observer.url}, program ${program} (${functions.length} functions), seed ${seed}`,
    );

    const stop = new AbortController();
    const timer = setTimeout(() => stop.abort(), seconds * 1000);
    const onSignal = () => stop.abort();
    process.once('SIGINT', onSignal);
    const root = new Random(seed);
    const names = Array.from(
      { length: agents },
      (_, i) =>
        (i < NAMES.length ? NAMES[i] : `${NAMES[i % NAMES.length]}-${Math.floor(i / NAMES.length) + 1}`) as string,
    );
    const runs = await Promise.allSettled(
      names.map((name, i) =>
        runAgent(name, {
          connection,
          program,
          functions,
          rnd: new Random(root.int(0, 2 ** 31)),
          straggler: i === 0 && agents > 1,
          opening: opening(i, agents, functions),
          deadline: started + seconds * 1000,
          signal: stop.signal,
          log,
        }),
      ),
    );
    clearTimeout(timer);
    process.off('SIGINT', onSignal);

    const stats = runs.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    for (const r of runs)
      if (r.status === 'rejected')
        console.error(
          `demo: an agent failed to start: ${r.reason instanceof Error ? r.reason.message : String(r.reason)}`,
        );
    if (stats.length === 0) throw new Error('no agent could start');
    const after = (await observer.program.get({ program })).revision;
    console.log(summary(stats, program, before, after, Date.now() - started));
    if (cluster) console.log(`failovers: ${failovers}${failovers === 0 ? '' : ` (now on ${observer.url})`}`);
  } finally {
    await observer.close();
  }
}

/**
 * The first moves that make a short run show what a long one would: the straggler stalls on one
 * function, the next agent hogs another, and the one after asks for that one and queues.
 */
function opening(i: number, agents: number, functions: readonly DemoFunction[]): AgentContext['opening'] {
  const [stalled, hogged] = functions;
  if (stalled === undefined || hogged === undefined || agents < 2) return undefined;
  if (i === 0) return { action: 'stall', fn: stalled };
  if (i === 1) return { action: 'hog', fn: hogged };
  if (i === 2) return { action: 'edit', fn: hogged };
  return undefined;
}

function summary(stats: AgentStats[], program: string, before: number, after: number, ms: number): string {
  const cols = [
    'edits',
    'batches',
    'reads',
    'queued',
    'conflicts',
    'denied',
    'expired',
    'timeouts',
    'lost',
    'errors',
  ] as const;
  const total = Object.fromEntries(cols.map((c) => [c, stats.reduce((n, s) => n + s[c], 0)])) as Record<
    (typeof cols)[number],
    number
  >;
  const rows = [
    ...stats.map((s) => [s.name, ...cols.map((c) => String(s[c]))]),
    ['total', ...cols.map((c) => String(total[c]))],
  ];
  return [
    '',
    `summary after ${(ms / 1000).toFixed(1)}s:`,
    table(['AGENT', ...cols.map((c) => c.toUpperCase())], rows),
    `edits committed: ${total.edits} (program ${program} went from revision ${before} to ${after})`,
  ].join('\n');
}
