#!/usr/bin/env node
import { LockstepClientError } from './client/errors.ts';
import { CommandFailed, docPath, nearest, UsageError, WithReport } from './cli/common.ts';
import { ConfigError } from './config.ts';
import { StoreError } from './service/store.ts';
import { VERSION } from './version.ts';

const USAGE = `Usage: lockstep <command> [options]

Commands:
  serve     run the coordination server
  status    show a server's (or every cluster node's) health, sessions, locks and queues
  demo      run simulated agents against a running server
  mcp       an MCP server on stdio for one agent
  guard     a git pre-commit hook: refuses a commit of paths the agent's session does not hold
  export    write a program of a running server to a JSON file
  import    write a program from such a file into a running server (one revision)
  help      show this text

  --version, -v   print the version

Run "lockstep <command> --help" for a command's options. The docs are in
${docPath('')} (README.md one level up).`;

// Each command's module loads when it runs: a command pays only for what it uses (status needs no
// store driver, the guard, which git runs before every commit, no server): a third off their start.
const COMMANDS = {
  serve: async (argv: string[]) => (await import('./cli/serve.ts')).serve(argv),
  status: async (argv: string[]) => (await import('./cli/status.ts')).status(argv),
  demo: async (argv: string[]) => (await import('./cli/demo.ts')).demo(argv),
  mcp: async (argv: string[]) => (await import('./cli/mcp.ts')).mcp(argv),
  guard: async (argv: string[]) => (await import('./cli/guard.ts')).guard(argv),
  export: async (argv: string[]) => (await import('./cli/export.ts')).exportCommand(argv),
  import: async (argv: string[]) => (await import('./cli/import.ts')).importCommand(argv),
} as const;

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command !== undefined && Object.hasOwn(COMMANDS, command))
    return COMMANDS[command as keyof typeof COMMANDS](rest);
  if (command === undefined || ['help', '--help', '-h'].includes(command)) {
    console.log(USAGE);
    return;
  }
  if (command === '--version' || command === '-v') {
    console.log(`lockstep ${VERSION}`);
    return;
  }
  const guess = nearest(command, Object.keys(COMMANDS));
  throw new UsageError(
    `unknown command "${command}"${guess === undefined ? '' : ` (did you mean "${guess}"?)`}\n\n${USAGE}`,
  );
}

interface Failure {
  /** 2 for a bad command line or start-up, 1 for a server that cannot be reached or refuses. */
  exitCode: 1 | 2;
  type: string;
  /** One clear line for expected failures, the stack for anything else. */
  message: string;
}

function failureOf(err: unknown): Failure {
  if (err instanceof WithReport) return failureOf(err.failure);
  if (err instanceof LockstepClientError) return { exitCode: 1, type: err.type, message: err.message };
  if (err instanceof CommandFailed) return { exitCode: 1, type: err.name, message: err.message };
  if (err instanceof UsageError || err instanceof ConfigError || err instanceof StoreError)
    return { exitCode: 2, type: err.name, message: err.message };
  if (err instanceof Error && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS_'))
    return { exitCode: 2, type: 'UsageError', message: err.message };
  return { exitCode: 2, type: 'Error', message: String((err as Error)?.stack ?? err) };
}

const argv = process.argv.slice(2);
main(argv).catch((err: unknown) => {
  const failure = failureOf(err);
  // A script reading `status --json` gets its failure as JSON on stdout too.
  if (argv[0] === 'status' && argv.includes('--json')) {
    const report = err instanceof WithReport ? err.report : {};
    console.log(JSON.stringify({ ...report, error: { type: failure.type, message: failure.message } }));
  } else console.error(`lockstep: ${failure.message}`);
  process.exit(failure.exitCode);
});
