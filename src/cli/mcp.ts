import { parseArgs } from 'node:util';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { createBridge } from '../mcp/bridge.ts';
import { LockstepClient, publishSession, sessionDir } from '../client/index.ts';
import { ServerLink } from '../mcp/server-link.ts';
import { DEFAULT_PROGRAM } from '../protocol/limits.ts';
import {
  CLI_TIMEOUTS,
  CONNECTION_OPTIONS,
  connectionHelp,
  connectionOf,
  docPath,
  explained,
  intOption,
} from './common.ts';

const DEFAULT_IDLE_RELEASE_MS = 15 * 60_000;
// Well inside the 60 s request timeout MCP clients default to (docs/mcp.md, "Waiting for a lock").
const DEFAULT_PROGRESS_EVERY_MS = 15_000;

export const MCP_HELP = `Usage: lockstep mcp [options]

An MCP server on stdio for one agent: its tools lock, read and edit through one Lockstep session,
held for the agent's lifetime (when the agent exits, its locks are released at once). See
${docPath('mcp.md')}.

Options:
${connectionHelp(25)}
  --name <name>             the agent's name, shown to the others (env LOCKSTEP_NAME)
  --program <name>          the program the path tools lock in when the agent names none: the
                            repository's namespace (env LOCKSTEP_PROGRAM, default ${DEFAULT_PROGRAM})
  --repo <dir>              the git working tree the agent works in, for the path tools and the
                            session file \`lockstep guard\` reads (default: the current directory)
  --idle-release-ms <ms>    renew the agent's leases only while it called a tool within this
                            long; after that they run out (default ${DEFAULT_IDLE_RELEASE_MS})
  --progress-every-ms <ms>  while a lock tool waits, tell its queue position again this often
                            (default ${DEFAULT_PROGRESS_EVERY_MS})
  --help                    show this text`;

export async function mcp(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...CONNECTION_OPTIONS,
      name: { type: 'string' },
      repo: { type: 'string' },
      program: { type: 'string' },
      'idle-release-ms': { type: 'string' },
      'progress-every-ms': { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help === true) {
    console.log(MCP_HELP);
    return;
  }
  const connection = connectionOf(values);
  const idleReleaseMs = intOption(
    'idle-release-ms',
    values['idle-release-ms'],
    DEFAULT_IDLE_RELEASE_MS,
    0,
    2 ** 31 - 1,
  );
  const progressEveryMs = intOption(
    'progress-every-ms',
    values['progress-every-ms'],
    DEFAULT_PROGRESS_EVERY_MS,
    1,
    2 ** 31 - 1,
  );
  const name = values.name ?? process.env.LOCKSTEP_NAME;
  // stdout carries the MCP protocol alone.
  const log = (line: string) => process.stderr.write(`lockstep mcp: ${line}\n`);
  const client = new LockstepClient({
    ...CLI_TIMEOUTS,
    ...connection,
    role: 'agent',
    ...(name === undefined ? {} : { name }),
  });
  // The tools are served at once; the session comes when the server answers (it may start later).
  const link = new ServerLink(client, { explain: (err) => explained(err, connection.urls), log });
  const cwd = values.repo ?? process.cwd();
  // Outside a git working tree the path tools still lock; nothing is recorded and no guard is told.
  const repo = sessionDir(cwd) === undefined ? undefined : cwd;
  const pathProgram = values.program ?? process.env.LOCKSTEP_PROGRAM ?? DEFAULT_PROGRAM;
  const server = createBridge(link, { idleReleaseMs, progressEveryMs, log, repo, pathProgram });
  // Where `lockstep guard` finds this agent's session (docs/mcp.md, "Which session commits").
  const published = repo === undefined ? undefined : publishSession(client, { cwd: repo });
  await server.connect(new StdioServerTransport());
  void link.start();
  // The agent went away (its end of stdin closed) or we are told to stop: end the session, which
  // releases every lock it held at once.
  await new Promise<void>((resolve) => {
    process.stdin.once('end', resolve);
    process.stdin.once('close', resolve);
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  link.stop();
  published?.stop();
  await server.close();
  await client.close();
  log('session closed');
  process.exit(0);
}
