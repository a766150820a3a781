#!/usr/bin/env node
import { ConfigError } from './config.ts';
import { LockstepClientError } from './client/index.ts';
import { UsageError } from './cli/common.ts';
import { demo } from './cli/demo.ts';
import { mcp } from './cli/mcp.ts';
import { serve } from './cli/serve.ts';
import { status } from './cli/status.ts';
import { StoreError } from './service/index.ts';

const USAGE = `Usage: lockstep <command> [options]

Commands:
  serve     run the coordination server
  status    show the sessions, locks and queues of a running server
  demo      run simulated agents against a running server
  mcp       an MCP server on stdio for one agent (docs/mcp.md)
  help      show this text

Run "lockstep <command> --help" for a command's options.`;

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(rest);
    case 'status':
      return status(rest);
    case 'demo':
      return demo(rest);
    case 'mcp':
      return mcp(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return;
    default:
      throw new UsageError(`unknown command "${command}"\n\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  // Expected failures get one clear line, not a stack: 2 for a bad command line or start-up, 1 for
  // a server that cannot be reached or refuses.
  const usage =
    err instanceof ConfigError ||
    err instanceof UsageError ||
    err instanceof StoreError ||
    (err instanceof Error &&
      'code' in err &&
      (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ||
        err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' ||
        err.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL' ||
        err.code === 'EADDRINUSE' ||
        err.code === 'EACCES'));
  const remote = err instanceof LockstepClientError;
  console.error(`lockstep: ${usage || remote ? (err as Error).message : String((err as Error)?.stack ?? err)}`);
  process.exit(remote ? 1 : 2);
});
